"""The agreement's lifecycle: draft -> issued -> accepted -> active -> expired | superseded;
draft, issued, accepted and active may be terminated. Nothing is deleted or rewritten: an issued
agreement keeps the content and PDF it was issued with, and every move is in the audit log.

The calendar moves statuses too (`roll_statuses`): the scheduled housekeeping runs it, never a
page. Whoever reads an agreement meanwhile goes by its dates (see `gating`).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from models import (
    AGREEMENT_TRANSITIONS,
    Agreement,
    AgreementAcceptance,
    AgreementStatus,
    Organization,
    OrgStatus,
    Role,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_date, bank_today, day_start
from ...extensions import db
from .. import Ctx, audit, events
from ..errors import Forbidden, NotFound, StateConflict, ValidationFailed
from . import pdf
from .access import SYSTEM, require_manager
from .content import build_content

AS = AgreementStatus


def _move(ctx: Ctx, agreement: Agreement, to: AgreementStatus, **detail) -> None:
    if (AS(agreement.status), to) not in AGREEMENT_TRANSITIONS:
        raise StateConflict(_l("An agreement that is %(from)s cannot become %(to)s.",
                               **{"from": agreement.status, "to": to.value}))
    before = agreement.status
    agreement.status = to.value
    try:
        db.session.flush()
    except StaleDataError:
        raise StateConflict(_l("Someone else changed this agreement at the same moment. "
                               "Reload it and try again.")) from None
    audit.record(ctx, f"agreement.{to.value}", agreement, number=agreement.number,
                 version=agreement.version, **{"from": before}, **detail)



def issue(ctx: Ctx, agreement: Agreement, *, at: datetime | None = None) -> Agreement:
    """Freeze the content, render the PDF once and keep it: this is the document to accept."""
    require_manager(ctx)
    if agreement.status != AS.draft.value:
        raise StateConflict(_l("Only a draft can be issued."))
    now = at or utcnow()
    if agreement.expires_on < (bank_date(at) if at else bank_today()):
        raise StateConflict(_l("This agreement's expiry date has passed."))
    agreement.issued_at = now
    agreement.issued_by_id = ctx.user.id if ctx.user else None
    content = build_content(agreement, draft=False, dated=now)
    rendered = pdf.render(content)
    agreement.content = content
    agreement.content_sha256 = pdf.content_hash(content)
    agreement.pdf_sha256 = rendered.sha256
    agreement.pdf_data = rendered.data
    _move(ctx, agreement, AS.issued, pdf_sha256=rendered.sha256)
    events.agreement_issued(ctx, agreement)  # webhook and partner notifications, same txn
    return agreement


def accept(ctx: Ctx, agreement: Agreement, *, pdf_sha256: str | None = None,
           user_agent: str | None = None, at: datetime | None = None) -> AgreementAcceptance:
    """A partner admin of the agreement's organisation accepts the issued PDF; the proof is
    who, when, from which address and the SHA-256 of that PDF. Effective today -> active."""
    user = ctx.user
    if user is None or not user.is_partner or user.org_id != agreement.org_id:
        raise NotFound()
    if user.role != Role.partner_admin.value:
        raise Forbidden(_l("Only your organisation's partner administrator can accept an "
                           "agreement."))
    if agreement.status != AS.issued.value:
        raise StateConflict(_l("Only an issued agreement can be accepted."))
    if pdf_sha256 is not None and pdf_sha256.strip().lower() != agreement.pdf_sha256:
        raise StateConflict(_l("The agreement is not the one you read. Reload it, read it "
                               "again and accept."))
    if agreement.expires_on < (bank_date(at) if at else bank_today()):
        raise StateConflict(_l("This agreement's expiry date has passed."))
    acceptance = AgreementAcceptance(agreement=agreement, user_id=user.id,
                                     accepted_at=at or utcnow(), ip=ctx.ip,
                                     user_agent=(user_agent or "")[:300] or None,
                                     pdf_sha256=agreement.pdf_sha256)
    db.session.add(acceptance)
    _move(ctx, agreement, AS.accepted, pdf_sha256=agreement.pdf_sha256)
    _admit(ctx, agreement.org)
    if agreement.effective_from <= bank_today():
        # Backdated (demo data): in force from the later of acceptance and the effective day.
        start = day_start(agreement.effective_from)
        activate(ctx, agreement, at=max(at, start) if at else None)
    return acceptance


def _admit(ctx: Ctx, org: Organization) -> None:
    """A partner admitted through an application (services/admission.py) is pending until it
    accepts its first agreement: from then on it is active and may refer."""
    if org.status == OrgStatus.pending.value:
        org.status = OrgStatus.active.value
        db.session.flush()
        audit.record(ctx, "org.activate", org, code=org.code, reason="first_agreement_accepted")


def activate(ctx: Ctx, agreement: Agreement, *, at: datetime | None = None,
             today: date | None = None) -> Agreement:
    """An accepted agreement comes into force on its effective date; the version it renews
    is superseded at the same moment."""
    if agreement.status != AS.accepted.value:
        raise StateConflict(_l("Only an accepted agreement can become active."))
    if agreement.effective_from > (today or bank_today()):
        raise StateConflict(_l("This agreement is not yet effective."))
    now = at or utcnow()
    agreement.activated_at = now
    _move(ctx, agreement, AS.active)
    old = agreement.supersedes
    if old is not None and old.status == AS.active.value:
        old.ended_at = now
        _move(ctx, old, AS.superseded, by_version=agreement.version)
    return agreement


def terminate(ctx: Ctx, agreement: Agreement, reason: str, *, notice: str | None = None,
              at: datetime | None = None) -> Agreement:
    """`reason` is the bank's own record; `notice`, if given, is what the partner reads."""
    require_manager(ctx)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationFailed({"reason": _l("Write the reason for the termination.")})
    if not agreement.can_move(AS.terminated):
        raise StateConflict(_l("An agreement that is %(from)s cannot be terminated.",
                               **{"from": agreement.status}))
    agreement.terminated_at = at or utcnow()
    agreement.terminated_by_id = ctx.user.id if ctx.user else None
    agreement.termination_reason = reason[:2000]
    agreement.termination_notice = (notice or "").strip()[:2000] or None
    _move(ctx, agreement, AS.terminated, reason=reason[:200])
    return agreement


def roll_statuses(ctx: Ctx = SYSTEM, *, today: date | None = None,
                  org: Organization | None = None) -> dict[str, int]:
    """Bring statuses up to date with the calendar: accepted agreements whose day has come
    become active (superseding what they renew), and agreements past expiry expire."""
    today = today or bank_today()
    scope = [Agreement.org_id == org.id] if org is not None else []
    counts = {"activated": 0, "expired": 0}
    due = db.session.scalars(select(Agreement).where(
        Agreement.status == AS.accepted.value, Agreement.effective_from <= today,
        Agreement.expires_on >= today, *scope).order_by(Agreement.id))
    for agreement in list(due):
        if _quietly(lambda a=agreement: activate(ctx, a, today=today)):
            counts["activated"] += 1
    lapsed = db.session.scalars(select(Agreement).where(
        Agreement.status.in_([AS.active.value, AS.issued.value, AS.accepted.value]),
        Agreement.expires_on < today, *scope).order_by(Agreement.id))
    for agreement in list(lapsed):
        if _quietly(lambda a=agreement: _expire(ctx, a)):
            counts["expired"] += 1
    return counts


def _expire(ctx: Ctx, agreement: Agreement) -> None:
    agreement.ended_at = utcnow()
    _move(ctx, agreement, AS.expired)


def _quietly(step) -> bool:
    """Run one roll step in a savepoint: when another roll (the CLI beside the worker) moved the
    same agreement at the same moment, leave it to them instead of failing the whole roll."""
    try:
        with db.session.begin_nested():
            step()
    except StateConflict:
        return False
    return True
