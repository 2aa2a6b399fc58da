"""Disputes: a partner administrator flags a figure on its scorecard or one of its own loans with
a note; a channel manager answers, and may correct the loan's statement (audited). The partner
reads its note, the status and the answer, nothing else: the internal note stays in the bank,
and a partner names only its own loans (anything else is not found)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, case, select
from sqlalchemy.orm import selectinload

from models import Dispute, LoanPerformance, Organization, Referral, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, branches
from .errors import Forbidden, NotFound
from .import_rows import LOAN_STATUSES
from .lifecycle import State
from .scoring import KPI_BY_NAME
from .scoring.staleness import mark_stale
from .validation import checked, refusal

STATUSES = {"open": _l("Open"), "answered": _l("Answered")}


def _text(value, message):
    value = (value or "").strip()
    if not value:
        raise refusal(message)
    return value


class OpenInput(BaseModel):
    """What a partner sends: a KPI name ("kpi:<name>") or one of its loans ("loan:<id>")."""

    model_config = ConfigDict(str_strip_whitespace=True)
    subject: str = Field(max_length=60)
    note: str = Field("", max_length=2000)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value):
        kind, _, rest = value.partition(":")
        if kind == "kpi" and rest in KPI_BY_NAME and KPI_BY_NAME[rest].partner_visible:
            return value
        if kind == "loan" and rest.isdigit() and len(rest) <= 9:
            return value
        raise refusal(_l("Choose the figure or the loan you dispute."))

    @field_validator("note")
    @classmethod
    def _note(cls, value):
        return _text(value, _l("Say what you believe is wrong."))


class AnswerInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    answer: str = Field("", max_length=4000)
    internal_note: str | None = Field(None, max_length=4000)

    @field_validator("answer")
    @classmethod
    def _answer(cls, value):
        return _text(value, _l("Write the answer the partner will read."))


class CorrectionInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    statement_id: int = Field(ge=1, le=2_147_483_647)
    outstanding: Decimal = Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)
    days_past_due: int = Field(ge=0, le=10_000)
    status: Literal[LOAN_STATUSES]  # type: ignore[valid-type]
    reason: str = Field("", max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value):
        return _text(value, _l("Say why the record is corrected."))


def loans_of(org_id: int) -> list[Referral]:
    """The partner's own disbursed loans, the ones it may dispute."""
    return list(db.session.scalars(
        select(Referral).where(Referral.org_id == org_id,
                               Referral.status == State.disbursed.value)
        .order_by(Referral.disbursed_at.desc(), Referral.id.desc()).limit(500)))


def open_dispute(ctx: Ctx, org: Organization, data: dict) -> Dispute:
    user = ctx.user
    if user is None or user.role != "partner_admin" or user.org_id != org.id:
        raise Forbidden(_l("Only your organisation's administrators can dispute its figures."))
    clean = checked(OpenInput, data)
    kind, _, rest = clean.subject.partition(":")
    dispute = Dispute(org_id=org.id, subject=kind, note=clean.note, opened_by_id=user.id,
                      opened_at=utcnow(), status="open")
    if kind == "kpi":
        dispute.kpi_name, dispute.period_key = rest, "current"
    else:
        referral = db.session.get(Referral, int(rest))
        # Another organisation's loan, or no loan at all: simply not found.
        if (referral is None or referral.org_id != org.id
                or referral.status != State.disbursed.value):
            raise NotFound()
        dispute.referral_id = referral.id
    db.session.add(dispute)
    db.session.flush()
    audit.record(ctx, "dispute.open", dispute, subject=clean.subject)
    return dispute


def for_org(org_id: int) -> list[Dispute]:
    return list(db.session.scalars(
        select(Dispute).where(Dispute.org_id == org_id)
        .order_by(Dispute.opened_at.desc(), Dispute.id.desc()).limit(100)))


def bank_list(status: str | None = "open", user: User | None = None) -> Select:
    """Disputes for the channel managers (of the user's branch): open ones first, oldest
    first."""
    query = (select(Dispute).options(selectinload(Dispute.org), selectinload(Dispute.referral))
             .where(branches.in_scope(user, Dispute.org_id)))
    if status in STATUSES:
        query = query.where(Dispute.status == status)
    return query.order_by(case((Dispute.status == "open", 0), else_=1), Dispute.opened_at,
                          Dispute.id)


def get(dispute_id: int, user: User | None = None) -> Dispute:
    dispute = db.session.get(Dispute, dispute_id)
    if dispute is None or not branches.may_see_org(user, dispute.org):
        raise NotFound()
    return dispute


def _bank_manager(ctx: Ctx) -> None:
    if ctx.user is None or ctx.user.role not in ("channel_manager", "admin"):
        raise Forbidden(_l("Only channel managers answer disputes."))


def answer(ctx: Ctx, dispute: Dispute, data: dict) -> Dispute:
    _bank_manager(ctx)
    clean = checked(AnswerInput, data)
    dispute.answer = clean.answer
    dispute.internal_note = clean.internal_note or None
    dispute.status = "answered"
    dispute.answered_by_id = ctx.user.id
    dispute.answered_at = utcnow()
    db.session.flush()
    audit.record(ctx, "dispute.answer", dispute)
    return dispute


def statements(dispute: Dispute) -> list[LoanPerformance]:
    if dispute.referral_id is None:
        return []
    return list(db.session.scalars(
        select(LoanPerformance).where(LoanPerformance.referral_id == dispute.referral_id)
        .order_by(LoanPerformance.as_of.desc())))


def correct(ctx: Ctx, dispute: Dispute, data: dict) -> LoanPerformance:
    """Correct one statement of the disputed loan; the audit trail keeps what it said before,
    and the partner's cards are recomputed with the next run."""
    _bank_manager(ctx)
    clean = checked(CorrectionInput, data)
    statement = db.session.get(LoanPerformance, clean.statement_id)
    if statement is None or dispute.referral_id is None or \
            statement.referral_id != dispute.referral_id:
        raise NotFound()
    before = {"outstanding": str(statement.outstanding),
              "days_past_due": statement.days_past_due, "status": statement.status}
    statement.outstanding = clean.outstanding
    statement.days_past_due = clean.days_past_due
    statement.status = clean.status
    statement.imported_at = utcnow()
    db.session.flush()
    audit.record(ctx, "loan.correct", statement, dispute=dispute.id,
                 referral=statement.referral_id, as_of=statement.as_of.isoformat(),
                 before=before, after={"outstanding": str(clean.outstanding),
                                       "days_past_due": clean.days_past_due,
                                       "status": clean.status},
                 reason=clean.reason)
    mark_stale(statement.org_id)
    return statement
