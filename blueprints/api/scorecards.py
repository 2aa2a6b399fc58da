"""API v1: partner scorecards (CONTRACT.md).

GET /api/v1/scorecards (bank roles): every partner's current card, paginated like every list.
GET /api/v1/scorecard (partner roles): the caller's own card; bank callers name the partner
with ?org_code=. Cards are read from the stored snapshots (rolling 90 days); a partner naming
another organisation's code gets 404, as for any object of another organisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import request
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from models import BANK_KIND, Organization, ScorecardSnapshot
from portal.extensions import db
from portal.services import scoring
from portal.services.errors import Forbidden, NotFound

from . import schemas
from .routes import _json, _parse, _user, bp, rate_limited

Tier = Literal[scoring.TIERS]  # type: ignore[valid-type]


class ScorecardQuery(schemas._In):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(25, ge=1, le=100)
    tier: Tier | None = Field(None, description="Only partners in this tier.")
    org_code: schemas.Text | None = Field(None, max_length=32,
                                          description="Only this partner.")


class OwnScorecardQuery(schemas._In):
    org_code: schemas.Text | None = Field(
        None, max_length=32, description="Bank callers: whose card. Partners: their own only.")


class KpiOut(BaseModel):
    value: float | None = Field(description="The value scored: rates shrunk toward the "
                                            "portfolio (fractions 0-1), hours, counts, amounts.")
    raw: float | None = Field(description="As observed, before shrinkage.")
    n: int = Field(description="How many referrals or loans the value rests on.")
    interval: list[float] | None = Field(
        description="Rates: the 90% posterior interval [low, high].")
    contribution: float | None = Field(description="Points this KPI adds to the composite.")
    kind: Literal["rate", "hours", "count", "amount"]


class PeriodOut(BaseModel):
    kind: Literal["rolling90", "month"]
    key: str
    start: datetime
    end: datetime


class ScorecardOut(BaseModel):
    org_code: str
    period: PeriodOut
    computed_at: datetime
    composite: float | None = Field(description="0-100.")
    tier: Tier | None
    sample_size: int = Field(description="Referrals submitted in the period.")
    weights_version: int | None
    kpis: dict[str, KpiOut] = Field(description="By KPI name: approval_rate, pull_through, "
                                                "document_first_pass, class1_share, "
                                                "delinquency_rate, npl_rate, "
                                                "partner_response_hours, bank_turnaround_hours, "
                                                "and more (docs/scoring.md).")


class ScorecardList(BaseModel):
    items: list[ScorecardOut]
    page: int
    per_page: int
    total: int


def _out(snapshot: ScorecardSnapshot, code: str) -> dict:
    return ScorecardOut.model_validate(scoring.card_json(snapshot, code)).model_dump(mode="json")


def _current():
    return (select(ScorecardSnapshot, Organization.code)
            .join(Organization, Organization.id == ScorecardSnapshot.org_id)
            .where(ScorecardSnapshot.period_kind == "rolling90",
                   ScorecardSnapshot.period_key == "current",
                   Organization.kind != BANK_KIND))


@bp.route("/scorecards", methods=["GET"])
@rate_limited
def list_scorecards():
    if not _user().is_bank:
        raise Forbidden(_l("Only bank users can list every partner's scorecard."))
    args = _parse(ScorecardQuery, request.args.to_dict())
    query = _current()
    if args.tier:
        query = query.where(ScorecardSnapshot.tier == args.tier)
    if args.org_code:
        query = query.where(Organization.code == args.org_code.upper())
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(
        query.order_by(ScorecardSnapshot.composite.desc().nulls_last(), Organization.code)
        .limit(args.per_page).offset((args.page - 1) * args.per_page))
    return _json({"items": [_out(s, code) for s, code in rows], "page": args.page,
                  "per_page": args.per_page, "total": total})


@bp.route("/scorecard", methods=["GET"])
@rate_limited
def own_scorecard():
    args = _parse(OwnScorecardQuery, request.args.to_dict())
    user = _user()
    query = _current()
    if user.is_partner:
        if args.org_code and args.org_code.upper() != user.org.code:
            raise NotFound()
        query = query.where(Organization.id == user.org_id)
    elif user.is_bank and args.org_code:
        query = query.where(Organization.code == args.org_code.upper())
    else:
        raise Forbidden(_l("Bank users name the partner: ?org_code=CODE."))
    row = db.session.execute(query).first()
    if row is None:
        raise NotFound(_l("No scorecard yet."))
    return _json(_out(*row))


# --- the OpenAPI document ----------------------------------------------------------------------

schemas.EXTRA_RESPONSE_MODELS.extend([ScorecardOut, ScorecardList])
schemas.EXTRA_PATHS["/scorecards"] = {"get": {
    "operationId": "listScorecards",
    "summary": "Every partner's current scorecard, rolling 90 days (bank roles)",
    "parameters": schemas._query_parameters(ScorecardQuery),
    "responses": {"200": schemas._json(ScorecardList, "A page of scorecards, best first."),
                  **schemas._errors("403", "422")},
}}
schemas.EXTRA_PATHS["/scorecard"] = {"get": {
    "operationId": "getScorecard",
    "summary": "Your organisation's current scorecard (partner roles; bank roles with "
               "org_code)",
    "parameters": schemas._query_parameters(OwnScorecardQuery),
    "responses": {"200": schemas._json(ScorecardOut, "The scorecard."),
                  **schemas._errors("403", "404", "422")},
}}
