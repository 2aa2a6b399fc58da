"""The rows of the history imports, as pydantic models with the intake schema's mechanism: each
column's rule refuses with its own translatable message (`validation.refusal`), and a row
reports the first column that failed, in the order of the columns below.

What the rules need beyond the row (the partner organisations, the referrals already there,
the time of the import) is the validation context. A rule that depends on an earlier column
passes when that column failed: the earlier column's message is the one reported.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo

from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_date
from .lifecycle import DECLINE_REASONS, State, allowed
from .referral_intake import MAX_AMOUNT, parse_amount, parse_timestamp
from .validation import refusal

LOAN_STATUSES = ("current", "delinquent", "npl", "closed")


def _context(info: ValidationInfo) -> dict:
    return info.context or {}


def timestamp(value: str, what) -> datetime:
    """An ISO-8601 time with its zone, or ValueError naming the column."""
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        raise ValueError(str(_l("%(what)s is not an ISO-8601 time: %(v)s", what=what,
                                v=value[:40]))) from None
    if parsed.tzinfo is None:
        raise ValueError(str(_l("%(what)s needs its time zone (e.g. +08:00): %(v)s", what=what,
                                v=value[:40])))
    return parsed


def _refusing(function):
    """Run a rule that raises ValueError(message) as a column rule."""
    def rule(value, info: ValidationInfo):
        try:
            return function(value, info)
        except ValueError as exc:
            raise refusal(str(exc)) from None
    return PlainValidator(rule)


def _organisation(value: str, info: ValidationInfo):
    org = _context(info)["orgs"].get(value.strip().upper())
    if org is None:
        raise ValueError(str(_l("Unknown partner organisation code %(c)s.", c=value[:40] or "—")))
    return org


# --- referral history ----------------------------------------------------------------------------

def _history_ref(value: str, info: ValidationInfo) -> str:
    if not value:
        raise ValueError(str(_l("external_ref is required (it keys the row).")))
    if len(value) > 64:
        raise ValueError(str(_l("external_ref is longer than 64 characters.")))
    return value


def _submitted_at(value: str, info: ValidationInfo) -> datetime:
    submitted_at = timestamp(value, "submitted_at")
    if submitted_at > _context(info)["now"]:
        raise ValueError(str(_l("submitted_at is in the future.")))
    return submitted_at


def _history(value: str, info: ValidationInfo) -> tuple[str, list] | None:
    """The initial state and the moves of `state@ISO-8601|...`, checked against the lifecycle
    (the system actor's transitions), in order and never in the future."""
    submitted_at = info.data.get("submitted_at")
    if submitted_at is None:
        return None
    now = _context(info)["now"]
    entries = [e.strip() for e in value.split("|") if e.strip()] if value else []
    moves = []
    for entry in entries:
        state, sep, when = entry.partition("@")
        if not sep:
            raise ValueError(str(_l("status_history entry %(e)s is not state@time.",
                                    e=entry[:60])))
        try:
            state = State(state.strip()).value
        except ValueError:
            raise ValueError(str(_l("Unknown state in status_history: %(s)s",
                                    s=state[:40]))) from None
        moves.append((state, timestamp(when.strip(), "status_history")))
    initial = State.submitted.value
    if moves and moves[0][0] in (State.submitted.value, State.conflict.value) \
            and moves[0][1] == submitted_at:
        initial = moves.pop(0)[0]  # the intake itself, written out
    current, previous = initial, submitted_at
    for state, at in moves:
        if at < previous:
            raise ValueError(str(_l("status_history goes back in time at %(s)s@%(t)s.",
                                    s=state, t=at.isoformat())))
        if at > now:
            raise ValueError(str(_l("status_history is in the future at %(s)s@%(t)s.",
                                    s=state, t=at.isoformat())))
        if not allowed(current, state, None):
            raise ValueError(str(_l("The lifecycle does not allow %(a)s → %(b)s.",
                                    a=current, b=state)))
        current, previous = state, at
    return initial, moves


def _decline_reason(value, info: ValidationInfo) -> str:
    reason = (value or "other").strip()
    if reason not in DECLINE_REASONS:
        raise ValueError(str(_l("Unknown decline_reason %(r)s.", r=reason[:40])))
    return reason


class ReferralHistoryRow(BaseModel):
    """The columns of a referral history row beyond the intake; the intake columns go through
    the intake schema (referrals.validate_intake). Context: orgs, now."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    org_code: Annotated[Any, _refusing(_organisation)]
    external_ref: Annotated[str, _refusing(_history_ref)]
    submitted_at: Annotated[datetime, _refusing(_submitted_at)]
    status_history: Annotated[Any, _refusing(_history)]
    decline_reason: Annotated[str, _refusing(_decline_reason)] = Field(
        None, validate_default=True)


# --- loan performance ----------------------------------------------------------------------------

def _loan(value: str, info: ValidationInfo):
    org = info.data.get("org")
    if org is None:
        return None
    referral = _context(info)["referral_ids"].get((org.id, value))
    if referral is None:
        raise ValueError(str(_l("No referral %(r)s of %(o)s: import its history first.",
                                r=value[:64] or "—", o=org.code)))
    if referral.disbursed_at is None:
        raise ValueError(str(_l("Referral %(r)s was never disbursed.", r=value)))
    return referral


def _as_of(value: str, info: ValidationInfo) -> date:
    try:
        as_of = date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(str(_l("as_of is not a date (YYYY-MM-DD): %(v)s",
                                v=value[:20]))) from None
    referral = info.data.get("referral")
    if referral is not None:
        disbursed_on = bank_date(referral.disbursed_at)
        if as_of < disbursed_on:
            raise ValueError(str(_l("as_of %(d)s is before the disbursement (%(on)s).", d=as_of,
                                    on=disbursed_on)))
    if as_of > _context(info)["today"] + timedelta(days=1):
        raise ValueError(str(_l("as_of %(d)s is in the future.", d=as_of)))
    return as_of


def _outstanding(value: str, info: ValidationInfo) -> Decimal:
    try:
        outstanding = parse_amount(value)
        if outstanding < 0 or outstanding > MAX_AMOUNT:
            raise InvalidOperation
    except InvalidOperation:
        raise ValueError(str(_l("outstanding is not an amount: %(v)s", v=value[:20]))) from None
    return outstanding.quantize(Decimal("0.01"))


def _days_past_due(value: str, info: ValidationInfo) -> int:
    try:
        dpd = int(value)
        if not 0 <= dpd <= 36500:
            raise ValueError
    except ValueError:
        raise ValueError(str(_l("days_past_due is not a whole number of days: %(v)s",
                                v=value[:20]))) from None
    return dpd


def _loan_status(value: str, info: ValidationInfo) -> str:
    status = value.strip().lower()
    if status not in LOAN_STATUSES:
        raise ValueError(str(_l("status must be one of %(s)s.", s=", ".join(LOAN_STATUSES))))
    if status == "closed" and info.data.get("outstanding") not in (None, 0):
        raise ValueError(str(_l("A closed loan has nothing outstanding.")))
    return status


class LoanStatementRow(BaseModel):
    """A loan statement row. Context: orgs, referral_ids {(org id, external_ref): Referral},
    and the bank's today."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    org: Annotated[Any, _refusing(_organisation)] = Field(validation_alias="org_code")
    referral: Annotated[Any, _refusing(_loan)] = Field(validation_alias="external_ref")
    as_of: Annotated[date, _refusing(_as_of)]
    outstanding: Annotated[Decimal, _refusing(_outstanding)]
    days_past_due: Annotated[int, _refusing(_days_past_due)]
    status: Annotated[str, _refusing(_loan_status)]
