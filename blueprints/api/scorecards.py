"""API v1: partner scorecards (docs/contract.md).

GET /api/v1/scorecards (bank roles): every partner's current card, paginated like every list.
GET /api/v1/scorecard (partner roles): the caller's own card; bank callers name the partner
with ?org_code=. Cards are read from the stored snapshots (rolling 90 days); a partner naming
another organisation's code gets 404, as for any object of another organisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import current_app, request
from pydantic import BaseModel, Field, TypeAdapter
from sqlalchemy import func, select

from models import Organization, ScorecardSnapshot
from portal.extensions import db
from portal.i18n import lazy_gettext as _l
from portal.services import branches, scoring
from portal.services.errors import Forbidden, NotFound

from . import schemas
from .common import bp, json_response, parse, rate_limited, user
from .openapi import operation

Tier = Literal[scoring.TIERS]  # type: ignore[valid-type]


class ScorecardQuery(schemas.RequestModel):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(25, ge=1, le=100)
    tier: Tier | None = Field(None, description="Only partners in this tier.")
    org_code: schemas.Text | None = Field(None, max_length=32,
                                          description="Only this partner.")


class OwnScorecardQuery(schemas.RequestModel):
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
    withheld: bool = Field(False, description="On a partner's own card: credit performance on "
                                              "fewer loans than the bank's minimum "
                                              "(SCORING_PARTNER_MIN_LOANS), so its figures are "
                                              "null; such a KPI takes no part in the "
                                              "composite or the tier, for anyone.")
    note: str | None = Field(None, description="Why the figures are withheld (\"not enough "
                                               "loans yet\"), in the caller's language.")


class PeriodOut(BaseModel):
    kind: Literal["rolling90", "month"]
    key: str
    start: datetime
    end: datetime


class ScorecardOut(BaseModel):
    org_code: str
    period: PeriodOut
    computed_at: datetime
    composite: float | None = Field(description="0-100. Null on a partner's own card in the "
                                                "rare case that it still counts a KPI the "
                                                "partner may not read (the loan minimum was "
                                                "raised since the last recompute).")
    tier: Tier | None = Field(description="Null with the composite, as above.")
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


_CARD = TypeAdapter(ScorecardOut)


def _out(snapshot: ScorecardSnapshot, code: str, *, partner_view: bool = False) -> dict:
    card = scoring.card_json(snapshot, code, partner_view=partner_view)
    return ScorecardOut.model_validate(card).model_dump(mode="json")


def _current():
    return (select(ScorecardSnapshot, Organization.code)
            .join(Organization, Organization.id == ScorecardSnapshot.org_id)
            .where(ScorecardSnapshot.period_kind == "rolling90",
                   ScorecardSnapshot.period_key == "current",
                   Organization.is_partner))


@bp.route("/scorecards", methods=["GET"])
@operation("listScorecards", "Every partner's current scorecard, rolling 90 days (bank roles)",
           tag="scorecards", query=ScorecardQuery,
           responses={200: (ScorecardList, "A page of scorecards, best first.")},
           errors=("403", "422"))
@rate_limited
def list_scorecards():
    if not user().is_bank:
        raise Forbidden(_l("Only bank users can list every partner's scorecard."))
    args = parse(ScorecardQuery, request.args.to_dict())
    query = _current().where(branches.in_scope(user(), Organization.id))
    if args.tier:
        query = query.where(ScorecardSnapshot.tier == args.tier)
    if args.org_code:
        query = query.where(Organization.code == args.org_code.upper())
    # The page's ids first, with how many match (a window count over the sorted ids, not a
    # statement of its own): sorting every partner's whole card (its KPIs' JSON) to keep 25
    # of them was most of the statement.
    S = ScorecardSnapshot
    page = db.session.execute(
        query.with_only_columns(S.id, S.computed_at, func.count().over())
        .order_by(S.composite.desc().nulls_last(), Organization.code)
        .limit(args.per_page).offset((args.page - 1) * args.per_page)).all()
    total = page[0][2] if page else db.session.scalar(
        select(func.count()).select_from(query.subquery()))
    written = _written_cards([(i, at) for i, at, _ in page])
    # (A card the job replaced between the two statements is left out of this page.)
    body = ",".join(written[(i, at)] for i, at, _ in page if (i, at) in written)
    return current_app.response_class(
        f'{{"items":[{body}],"page":{args.page},"per_page":{args.per_page},"total":{total}}}',
        mimetype="application/json")


# The cards as this list writes them, by snapshot id and the time the scoring job wrote it: a
# card changes only when the job writes it anew (snapshots.replace), and then it is written
# at another time. Decoding, shaping, validating and writing 25 cards' KPIs was two thirds of
# the request (issue 15). The organisation's code is in the card: codes are never changed.
WRITTEN_CARDS_KEPT = 4096


def _written_cards(keys: list[tuple[int, datetime]]) -> dict[tuple[int, datetime], str]:
    kept = current_app.extensions.setdefault("api_written_cards", {})
    missing = [i for i, at in keys if (i, at) not in kept]
    if missing:
        if len(kept) + len(missing) > WRITTEN_CARDS_KEPT:
            kept.clear()
        # The columns a card shows, as plain rows (card_json reads them by name).
        S = ScorecardSnapshot
        for row in db.session.execute(
                select(S.id, S.period_kind, S.period_key, S.period_start, S.period_end,
                       S.computed_at, S.composite, S.tier, S.sample_size, S.weights_version,
                       S.kpis, Organization.code.label("org_code"))
                .join(Organization, Organization.id == S.org_id).where(S.id.in_(missing))):
            card = scoring.card_json(row, row.org_code)
            kept[(row.id, row.computed_at)] = _CARD.dump_json(
                _CARD.validate_python(card)).decode()
    return {key: kept[key] for key in keys if key in kept}


@bp.route("/scorecard", methods=["GET"])
@operation("getScorecard", "Your organisation's current scorecard (partner roles; bank roles "
                           "with org_code)",
           tag="scorecards", query=OwnScorecardQuery,
           responses={200: (ScorecardOut, "The scorecard.")}, errors=("403", "404", "422"))
@rate_limited
def own_scorecard():
    args = parse(OwnScorecardQuery, request.args.to_dict())
    caller = user()
    query = _current()
    if caller.is_partner:
        if caller.role != "partner_admin":
            # As on the page: the scorecard is for the partner's administrators.
            raise Forbidden(_l("Only your organisation's administrators see its scorecard."))
        if args.org_code and args.org_code.upper() != caller.org.code:
            raise NotFound()
        query = query.where(Organization.id == caller.org_id)
    elif caller.is_bank and args.org_code:
        # Another branch's partner is not found, as another partner's card is for a partner.
        query = query.where(Organization.code == args.org_code.upper(),
                            branches.in_scope(caller, Organization.id))
    else:
        raise Forbidden(_l("Bank users name the partner: ?org_code=CODE."))
    row = db.session.execute(query).first()
    if row is None:
        raise NotFound(_l("No scorecard yet."))
    return json_response(_out(*row, partner_view=caller.is_partner))
