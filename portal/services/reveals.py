"""Reveals with a purpose (issue 10): a buyer's full ID number and mobile are shown to bank
staff only with a reason from a short list, at most `REVEAL_LIMIT_PER_HOUR` times an hour per
person, and past that only once per approval by a channel manager or an admin.

Every reveal is a `Reveal` row and an audit entry with its reason; every refusal (no reason, over
the limit) is an audit entry too, written apart from the refused request (audit.record_refusal).
Managers read the reveals per person (`per_person`, `log`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import selectinload

from models import Referral, Reveal, RevealRequest, Role, User, utcnow
from portal.i18n import lazy_gettext as _l

from .. import labels
from ..bank_time import bank_today, day_start
from ..extensions import db
from . import Ctx, audit, branches, pii
from .errors import DomainError, Forbidden, NotFound, StateConflict, ValidationFailed

REASONS = tuple(labels.REVEAL_REASONS)
APPROVERS = frozenset({Role.channel_manager.value, Role.admin.value})
TEXT_MAX = 500


class OverLimit(DomainError):
    """Past the hourly limit without an approval: ask a manager."""

    code = "reveal_limit"
    status = 429


def limit() -> int:
    return current_app.config["REVEAL_LIMIT_PER_HOUR"]


def _reason(code: str | None, text: str | None) -> tuple[str, str | None]:
    text = (text or "").strip()[:TEXT_MAX] or None
    if code not in REASONS:
        raise ValidationFailed({"reason_code": _l("Choose why you need to see the buyer's full "
                                                  "details.")})
    if code == "other" and not text:
        raise ValidationFailed({"reason_text": _l("Say why you need to see the buyer's full "
                                                  "details.")})
    return code, text


def recent_count(user_id: int, now: datetime | None = None) -> int:
    """Reveals this person made in the hour before `now`."""
    since = (now or utcnow()) - timedelta(hours=1)
    return db.session.scalar(select(func.count(Reveal.id)).where(
        Reveal.user_id == user_id, Reveal.at > since)) or 0


def over_limit(user_id: int, now: datetime | None = None) -> bool:
    return recent_count(user_id, now) >= limit()


def _approval(user_id: int, referral_id: int) -> RevealRequest | None:
    return db.session.scalar(select(RevealRequest).where(
        RevealRequest.requested_by_id == user_id, RevealRequest.referral_id == referral_id,
        RevealRequest.status == "approved").order_by(RevealRequest.id).limit(1))


def reveal(ctx: Ctx, referral: Referral, reason_code: str | None, reason_text: str | None, *,
           now: datetime | None = None) -> dict:
    """The buyer's full ID number and mobile, or a refusal (audited either way)."""
    user = ctx.user
    if user is None or not user.is_bank:
        raise NotFound()
    now = now or utcnow()
    try:
        code, text = _reason(reason_code, reason_text)
    except ValidationFailed:
        audit.record_refusal(ctx, "referral.reveal_refused", referral, refusal="no_reason",
                             reason_code=reason_code, reason_text=reason_text)
        raise
    approval = None
    if over_limit(user.id, now):
        approval = _approval(user.id, referral.id)
        if approval is None:
            audit.record_refusal(ctx, "referral.reveal_refused", referral, refusal="over_limit",
                                 limit=limit(), reason_code=code, reason_text=text)
            raise OverLimit(_l("You have revealed %(n)d buyers' details in the past hour. Ask "
                               "a manager to approve this one.", n=limit()))
        approval.status, approval.used_at = "used", now
    db.session.add(Reveal(referral_id=referral.id, user_id=user.id, at=now, reason_code=code,
                          reason_text=text, request_id=approval.id if approval else None))
    audit.record(ctx, "referral.reveal", referral, fields=["national_id", "mobile"],
                 reason_code=code, reason_text=text,
                 approval=approval.id if approval else None)
    return {"national_id": pii.decrypt(referral.national_id_enc),
            "mobile": pii.decrypt(referral.mobile_enc)}


# --- approvals past the limit ------------------------------------------------------------------

def ask(ctx: Ctx, referral: Referral, reason_code: str | None,
        reason_text: str | None) -> RevealRequest:
    """File a request for one more reveal of this buyer; one waiting request is enough."""
    user = ctx.user
    if user is None or not user.is_bank:
        raise NotFound()
    code, text = _reason(reason_code, reason_text)
    waiting = db.session.scalar(select(RevealRequest).where(
        RevealRequest.requested_by_id == user.id, RevealRequest.referral_id == referral.id,
        RevealRequest.status.in_(("pending", "approved"))))
    if waiting is not None:
        raise StateConflict(_l("You have already asked to reveal this buyer's details."))
    request = RevealRequest(referral_id=referral.id, requested_by_id=user.id,
                            requested_at=utcnow(), reason_code=code, reason_text=text,
                            status="pending")
    db.session.add(request)
    db.session.flush()
    audit.record(ctx, "reveal.request", request, referral=referral.id, reason_code=code,
                 reason_text=text)
    return request


def decide(ctx: Ctx, request: RevealRequest, *, approve: bool, note: str | None) -> None:
    """A channel manager or admin (not the requester) approves one reveal, or refuses it."""
    user = ctx.user
    if user is None or user.role not in APPROVERS:
        raise Forbidden()
    if request.requested_by_id == user.id:
        raise Forbidden(_l("Someone else must decide on your own request."))
    if request.status != "pending":
        raise StateConflict(_l("This request has already been decided."))
    note = (note or "").strip()[:TEXT_MAX] or None
    if not approve and not note:
        raise ValidationFailed({"note": _l("Say why the request is refused.")})
    request.status = "approved" if approve else "refused"
    request.decided_by_id, request.decided_at, request.decision_note = user.id, utcnow(), note
    audit.record(ctx, "reveal.approve" if approve else "reveal.refuse", request,
                 referral=request.referral_id, requested_by=request.requested_by_id, note=note)


def _of_visible(user: User | None, referral_id):
    """Reveals and requests about buyers of the user's branch's partners."""
    return referral_id.in_(select(Referral.id).where(branches.in_scope(user, Referral.org_id)))


def request_for(request_id: int, user: User | None = None) -> RevealRequest:
    request = db.session.get(RevealRequest, request_id)
    if request is None or not branches.may_see_org(user, request.referral.org):
        raise NotFound()
    return request


def requests(*, status: str | None = None, user_id: int | None = None,
             viewer: User | None = None) -> Select:
    query = (select(RevealRequest).options(selectinload(RevealRequest.requested_by),
                                           selectinload(RevealRequest.decided_by))
             .where(_of_visible(viewer, RevealRequest.referral_id)))
    if status:
        query = query.where(RevealRequest.status == status)
    if user_id:
        query = query.where(RevealRequest.requested_by_id == user_id)
    return query.order_by((RevealRequest.status == "pending").desc(),
                          RevealRequest.requested_at.desc(), RevealRequest.id.desc())


def pending_count(viewer: User | None = None) -> int:
    return db.session.scalar(_pending_count(viewer) if viewer is not None
                             else _pending_count_statement(None)) or 0


def _pending_count_statement(viewer: branches.Scope | None):
    return select(func.count(RevealRequest.id)).where(
        RevealRequest.status == "pending", _of_visible(viewer, RevealRequest.referral_id))


_pending_count = branches.per_scope(_pending_count_statement)


def open_requests(user_id: int, referral_id: int) -> list[RevealRequest]:
    """This person's requests for this buyer that are waiting or approved and unused."""
    return list(db.session.scalars(select(RevealRequest).where(
        RevealRequest.requested_by_id == user_id, RevealRequest.referral_id == referral_id,
        RevealRequest.status.in_(("pending", "approved"))).order_by(RevealRequest.id)))


# --- what managers see -------------------------------------------------------------------------

@dataclass(frozen=True)
class LogFilters:
    user_id: int | None = None
    reason_code: str | None = None
    since: date | None = None
    until: date | None = None


def per_person(today: date | None = None, viewer: User | None = None) -> list[dict]:
    """Each person who revealed this week: reveals today and this week (the bank's Monday on),
    most first."""
    today = today or bank_today()
    day, week = day_start(today), day_start(today - timedelta(days=today.weekday()))
    rows = db.session.execute(
        select(User, func.sum(case((Reveal.at >= day, 1), else_=0)), func.count(Reveal.id))
        .join(Reveal, Reveal.user_id == User.id)
        .where(Reveal.at >= week, _of_visible(viewer, Reveal.referral_id))
        .group_by(User.id).order_by(func.count(Reveal.id).desc(), User.email)).all()
    return [{"user": user, "today": int(today_n or 0), "week": week_n}
            for user, today_n, week_n in rows]


def log(f: LogFilters, viewer: User | None = None) -> Select:
    query = (select(Reveal).options(selectinload(Reveal.user), selectinload(Reveal.referral))
             .where(_of_visible(viewer, Reveal.referral_id)))
    if f.user_id:
        query = query.where(Reveal.user_id == f.user_id)
    if f.reason_code:
        query = query.where(Reveal.reason_code == f.reason_code)
    if f.since:
        query = query.where(Reveal.at >= day_start(f.since))
    if f.until:
        query = query.where(Reveal.at < day_start(f.until + timedelta(days=1)))
    return query.order_by(Reveal.at.desc(), Reveal.id.desc())


def people() -> list[User]:
    """Bank staff who may reveal, for the log's filter."""
    return list(db.session.scalars(select(User).where(
        User.role.in_((Role.credit_officer.value, Role.channel_manager.value,
                       Role.admin.value))).order_by(User.email)))
