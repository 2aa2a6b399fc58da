"""The follow-up pool (待跟进) and the contact log with partners (定期沟通制度).

The source study: a good customer who was declined or did not proceed is recorded and
approached again later, "mostly as service rather than selling"; key partners are contacted
regularly. Here: referrals of class-1 and class-2 buyers that were declined for a reason other
than credit policy, withdrawn, expired, or stalled are *candidates*; a channel manager puts them
in the pool, assigns them, and records each follow-up. Contacts with partners are logged, and
each tier has a cadence (days between contacts); partners past it are overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from models import (
    ContactCadence,
    ContactLog,
    FollowUp,
    FollowUpNote,
    Organization,
    Referral,
    TierState,
    User,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from .. import labels
from ..extensions import db
from . import Ctx, audit, branches
from .errors import NotFound, ValidationFailed
from .scoring import TIERS

# Display names live with every other label; the codes are this module's.
REASONS, STATUSES, OUTCOMES = (labels.FOLLOW_UP_REASONS, labels.FOLLOW_UP_STATUSES,
                               labels.FOLLOW_UP_OUTCOMES)
NOTE_KINDS, CONTACT_KINDS = labels.FOLLOW_UP_NOTE_KINDS, labels.CONTACT_KINDS
DEFAULT_CADENCE = {"strategic": 14, "core": 30, "watch": 45, "exit": 90}
STALLED_DAYS = 30
# Candidates are looked for among referrals that changed within this many days.
CANDIDATE_DAYS = 180
# Buyers worth another approach: not class 3 (the study's "group to avoid").
GOOD_CLASSES = (1, 2)


def _is_staff(user: User | None) -> bool:
    return user is not None and user.role in ("channel_manager", "admin")


def reason_for(referral: Referral, now: datetime | None = None) -> str | None:
    """Why this referral is a follow-up candidate, or None."""
    if referral.customer_class not in GOOD_CLASSES:
        return None
    if referral.status == "declined":
        return "declined" if referral.decline_reason != "credit_policy" else None
    if referral.status in ("withdrawn", "expired"):
        return referral.status
    stalled_since = (now or utcnow()) - timedelta(days=STALLED_DAYS)
    if referral.clock is not None and referral.status != "conflict" \
            and referral.status_changed_at < stalled_since:
        return "stalled"
    return None


def candidates(now: datetime | None = None, org_id: int | None = None,
               user: User | None = None) -> Select:
    """Referrals that could go into the pool and are not in it yet, newest change first
    (those that changed in the last CANDIDATE_DAYS days)."""
    now = now or utcnow()
    stalled_since = now - timedelta(days=STALLED_DAYS)
    query = select(Referral).where(
        Referral.status.in_(("declined", "withdrawn", "expired", "submitted",
                             "documents_requested", "under_review", "approved",
                             "contract_signed")),
        Referral.status_changed_at >= now - timedelta(days=CANDIDATE_DAYS),
        Referral.customer_class.in_(GOOD_CLASSES),
        or_(and_(Referral.status == "declined",
                 or_(Referral.decline_reason.is_(None),
                     Referral.decline_reason != "credit_policy")),
            Referral.status.in_(("withdrawn", "expired")),
            and_(Referral.clock.is_not(None), Referral.status != "conflict",
                 Referral.status_changed_at < stalled_since)),
        ~exists().where(FollowUp.referral_id == Referral.id),
        branches.in_scope(user, Referral.org_id),
    ).options(selectinload(Referral.org)).order_by(Referral.status_changed_at.desc())
    if org_id:
        query = query.where(Referral.org_id == org_id)
    return query


def pool(*, status: str | None = None, assigned_to: int | None = None,
         unassigned: bool = False, org_id: int | None = None, user: User | None = None
         ) -> Select:
    # What each entry has one of, joined in the list's statement (a statement each before).
    query = select(FollowUp).options(joinedload(FollowUp.referral),
                                     joinedload(FollowUp.org),
                                     joinedload(FollowUp.assigned_to)).where(
        branches.in_scope(user, FollowUp.org_id))
    if status == "active":
        query = query.where(FollowUp.status != "closed")
    elif status:
        query = query.where(FollowUp.status == status)
    if assigned_to:
        query = query.where(FollowUp.assigned_to_id == assigned_to)
    if unassigned:
        query = query.where(FollowUp.assigned_to_id.is_(None))
    if org_id:
        query = query.where(FollowUp.org_id == org_id)
    # Due first (no date last), then the oldest.
    return query.order_by(FollowUp.next_action_at.is_(None), FollowUp.next_action_at,
                          FollowUp.id)


def get(follow_up_id: int, user: User | None = None) -> FollowUp:
    entry = db.session.get(FollowUp, follow_up_id)
    if entry is None or not branches.may_see_org(user, entry.org):
        raise NotFound()
    return entry


def _assignee(user_id, org: Organization | None = None) -> User | None:
    if user_id in (None, "", 0):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_bank or not user.active:
        raise ValidationFailed({"assigned_to": _l("Choose a member of the bank's staff.")})
    if org is not None and not branches.may_see_org(user, org):
        raise ValidationFailed({"assigned_to": _l("%(name)s works in another branch and cannot "
                                                  "see this partner.", name=user.name)})
    return user


def add(ctx: Ctx, referral: Referral, *, assigned_to=None, next_action_at=None,
        note: str | None = None, reason: str | None = None) -> FollowUp:
    """Put a referral into the pool (once)."""
    if db.session.scalar(select(FollowUp.id).where(FollowUp.referral_id == referral.id)):
        raise ValidationFailed({"referral": _l("This buyer is already in the follow-up pool.")})
    reason = reason or reason_for(referral) or "other"
    if reason not in REASONS:
        raise ValidationFailed({"reason": _l("Unknown reason.")})
    assignee = _assignee(assigned_to, referral.org)
    entry = FollowUp(referral_id=referral.id, org_id=referral.org_id, reason=reason,
                     assigned_to_id=assignee.id if assignee else None,
                     next_action_at=next_action_at,
                     created_by_id=ctx.user.id if ctx.user else None)
    db.session.add(entry)
    if note and note.strip():
        entry.notes.append(FollowUpNote(user_id=ctx.user.id if ctx.user else None, kind="note",
                                        body=note.strip()))
    db.session.flush()
    audit.record(ctx, "followup.add", entry, referral=referral.id, reason=reason)
    return entry


def assign(ctx: Ctx, entry: FollowUp, user_id, next_action_at=None) -> FollowUp:
    assignee = _assignee(user_id, entry.org)
    entry.assigned_to_id = assignee.id if assignee else None
    if next_action_at is not None:
        entry.next_action_at = next_action_at
    entry.updated_at = utcnow()
    audit.record(ctx, "followup.assign", entry, to=entry.assigned_to_id)
    return entry


def add_note(ctx: Ctx, entry: FollowUp, kind: str, body: str,
             next_action_at: datetime | None = None) -> FollowUpNote:
    body = (body or "").strip()
    errors = {}
    if kind not in NOTE_KINDS:
        errors["kind"] = _l("Choose what kind of contact it was.")
    if not body:
        errors["body"] = _l("Write what happened.")
    elif len(body) > 4000:
        errors["body"] = _l("At most %(n)d characters.", n=4000)
    if entry.status == "closed":
        errors["status"] = _l("This entry is closed.")
    if errors:
        raise ValidationFailed(errors)
    note = FollowUpNote(follow_up=entry, user_id=ctx.user.id if ctx.user else None, kind=kind,
                        body=body)
    db.session.add(note)
    if entry.status == "open":
        entry.status = "in_progress"
    entry.next_action_at = next_action_at
    entry.updated_at = utcnow()
    db.session.flush()
    audit.record(ctx, "followup.note", entry, kind=kind)
    return note


def close(ctx: Ctx, entry: FollowUp, outcome: str, note: str | None = None) -> FollowUp:
    if outcome not in OUTCOMES:
        raise ValidationFailed({"outcome": _l("Choose the outcome.")})
    if entry.status == "closed":
        raise ValidationFailed({"status": _l("This entry is closed.")})
    entry.status, entry.outcome = "closed", outcome
    entry.next_action_at = None
    entry.updated_at = utcnow()
    if note and note.strip():
        entry.notes.append(FollowUpNote(user_id=ctx.user.id if ctx.user else None, kind="note",
                                        body=note.strip()))
    db.session.flush()
    audit.record(ctx, "followup.close", entry, outcome=outcome)
    return entry


# --- contacts with partners -------------------------------------------------------------------

def cadence() -> dict[str, int]:
    rows = {c.tier: c.days for c in db.session.scalars(select(ContactCadence))}
    return {tier: rows.get(tier, DEFAULT_CADENCE[tier]) for tier in reversed(TIERS)}


def set_cadence(ctx: Ctx, days: dict) -> None:
    errors = {}
    clean = {}
    for tier in TIERS:
        try:
            value = int(days.get(tier))
            if not 1 <= value <= 366:
                raise ValueError
            clean[tier] = value
        except (TypeError, ValueError):
            errors[f"cadence_{tier}"] = _l("Enter a number of days between 1 and 366.")
    if errors:
        raise ValidationFailed(errors)
    existing = {c.tier: c for c in db.session.scalars(select(ContactCadence))}
    for tier, value in clean.items():
        row = existing.get(tier)
        if row is None:
            db.session.add(ContactCadence(tier=tier, days=value,
                                          updated_by_id=ctx.user.id if ctx.user else None))
        elif row.days != value:
            row.days, row.updated_at = value, utcnow()
            row.updated_by_id = ctx.user.id if ctx.user else None
    db.session.flush()
    audit.record(ctx, "scoring.cadence", None, days=clean)


def log_contact(ctx: Ctx, org: Organization, kind: str, at: datetime | None, summary: str
                ) -> ContactLog:
    summary = (summary or "").strip()
    errors = {}
    if org is None or org.is_bank:
        errors["org"] = _l("Choose a partner.")
    if kind not in CONTACT_KINDS:
        errors["kind"] = _l("Choose visit, call or meeting.")
    if not summary:
        errors["summary"] = _l("Write a short summary.")
    elif len(summary) > 4000:
        errors["summary"] = _l("At most %(n)d characters.", n=4000)
    now = utcnow()
    at = at or now
    if at.tzinfo is None:
        errors["at"] = _l("Give the time with its time zone.")
    elif at > now + timedelta(minutes=5):
        errors["at"] = _l("A contact cannot be in the future.")
    if errors:
        raise ValidationFailed(errors)
    entry = ContactLog(org_id=org.id, user_id=ctx.user.id if ctx.user else None, kind=kind,
                       at=at, summary=summary)
    db.session.add(entry)
    db.session.flush()
    audit.record(ctx, "contact.log", entry, org=org.code, kind=kind)
    return entry


def contacts(org_id: int | None = None, user_id: int | None = None,
             manager_id: int | None = None, viewer: User | None = None) -> Select:
    query = (select(ContactLog).options(joinedload(ContactLog.org),
                                        joinedload(ContactLog.user))
             .where(branches.in_scope(viewer, ContactLog.org_id)))
    if org_id:
        query = query.where(ContactLog.org_id == org_id)
    if user_id:
        query = query.where(ContactLog.user_id == user_id)
    if manager_id:
        query = query.join(Organization, Organization.id == ContactLog.org_id).where(
            Organization.channel_manager_id == manager_id)
    return query.order_by(ContactLog.at.desc(), ContactLog.id.desc())


@dataclass
class Overdue:
    org: Organization
    tier: str | None
    last_contact: datetime | None
    due: datetime | None  # None: never contacted
    days_over: int | None


def overdue(manager_id: int | None = None, now: datetime | None = None,
            viewer: User | None = None) -> list[Overdue]:
    """Active partners whose last contact is older than their tier's cadence (or who were never
    contacted), most overdue first."""
    now = now or utcnow()
    days = cadence()
    last = (select(ContactLog.org_id, func.max(ContactLog.at).label("last_at"))
            .group_by(ContactLog.org_id).subquery())
    query = (select(Organization, TierState.tier, last.c.last_at)
             .outerjoin(TierState, TierState.org_id == Organization.id)
             .outerjoin(last, last.c.org_id == Organization.id)
             .where(Organization.is_partner, Organization.status == "active",
                    branches.in_scope(viewer, Organization.id)))
    if manager_id:
        query = query.where(Organization.channel_manager_id == manager_id)
    out = []
    for org, tier, last_at in db.session.execute(query):
        cadence_days = days.get(tier or "watch")
        if last_at is not None and last_at.tzinfo is None:  # MAX() on SQLite: naive UTC
            last_at = last_at.replace(tzinfo=UTC)
        if last_at is None:
            out.append(Overdue(org, tier, None, None, None))
            continue
        due = last_at + timedelta(days=cadence_days)
        if due < now:
            out.append(Overdue(org, tier, last_at, due, (now - due).days))
    out.sort(key=lambda o: (o.due is not None, -(o.days_over or 0), o.org.code))
    return out
