"""Who works on a referral: an officer takes it, gives it back, or a lead (an admin) hands it on.

One officer per referral. Taking is a conditional UPDATE (`... WHERE assigned_to_id IS NULL`):
two officers taking the same referral at once both read it free, but only the first UPDATE
matches a row; the second waits for the first to commit (PostgreSQL's row lock, SQLite's write
lock), then matches none and is told who has it. The referral's version is left alone: taking a
referral must not make a colleague's open decision form stale.
"""

from __future__ import annotations

from sqlalchemy import select, update

from models import Referral, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, branches
from .errors import Forbidden, StateConflict, ValidationFailed
from .queue import QUEUE_STATES

# Who works the queue: the roles that make the officer's decisions (services/lifecycle.py).
WORKERS = frozenset({"credit_officer", "admin"})
# Who may hand a referral to someone else, or take one back from its officer.
LEADS = frozenset({"admin"})


def may_take(user: User) -> bool:
    return user.role in WORKERS


def may_assign(user: User) -> bool:
    return user.role in LEADS


def may_release(user: User, referral: Referral) -> bool:
    return referral.assigned_to_id is not None and (
        referral.assigned_to_id == user.id or may_assign(user))


def officers(referral: Referral | None = None) -> list[User]:
    """The people a referral may be given to: active officers and admins, by name; for one
    referral, those whose branch's tree holds its partner."""
    found = db.session.scalars(select(User).where(User.role.in_(WORKERS), User.active.is_(True))
                               .order_by(User.name, User.id))
    return [user for user in found
            if referral is None or branches.may_see_org(user, referral.org)]


def _set(referral: Referral, holder_id: int | None, seen: int | None) -> bool:
    """Give the referral to `holder_id` if it is still held by `seen`; False if someone else
    got there first."""
    held = (Referral.assigned_to_id.is_(None) if seen is None
            else Referral.assigned_to_id == seen)
    result = db.session.execute(
        update(Referral).where(Referral.id == referral.id, held)
        .values(assigned_to_id=holder_id, assigned_at=utcnow() if holder_id else None)
        .execution_options(synchronize_session=False))
    # Read back what is there now: ours, or the winner's (committed before our UPDATE ran).
    db.session.expire(referral, ["assigned_to_id", "assigned_at", "assigned_to"])
    return result.rowcount == 1


def _taken(referral: Referral) -> StateConflict:
    holder = referral.assigned_to
    return StateConflict(_l("Referral #%(id)d is already being worked on by %(name)s.",
                            id=referral.id, name=holder.name if holder else "—"))


def _waiting_on_bank(referral: Referral) -> None:
    if referral.clock != "bank" or referral.status not in QUEUE_STATES:
        raise StateConflict(_l("Only a referral waiting in the officers' queue can be taken."))


def take(ctx: Ctx, referral: Referral) -> None:
    """The acting officer takes a referral nobody works on."""
    if not may_take(ctx.user):
        raise Forbidden(_l("Only credit officers take referrals from the queue."))
    if referral.assigned_to_id == ctx.user.id:
        return
    if referral.assigned_to_id is not None:
        raise _taken(referral)
    _waiting_on_bank(referral)
    if not _set(referral, ctx.user.id, None):
        raise _taken(referral)
    audit.record(ctx, "referral.take", referral)


def assign(ctx: Ctx, referral: Referral, officer_id: int | None, *,
           seen: int | None) -> User:
    """A lead gives the referral to an officer. `seen` is the officer the lead's page showed: if
    someone took or moved it since, the lead is told instead of overriding them unseen."""
    if not may_assign(ctx.user):
        raise Forbidden(_l("Only an administrator hands referrals to other officers."))
    officer = db.session.get(User, officer_id) if officer_id else None
    if (officer is None or officer.role not in WORKERS or not officer.active
            or not branches.may_see_org(officer, referral.org)):
        raise ValidationFailed({"officer": _l("Choose an active credit officer.")})
    if referral.assigned_to_id == officer.id:
        return officer
    _waiting_on_bank(referral)
    if not _set(referral, officer.id, seen):
        raise StateConflict(_l("Someone else changed who works on referral #%(id)d. "
                               "Reload it and try again.", id=referral.id))
    audit.record(ctx, "referral.assign", referral, to=officer.id, **{"from": seen})
    return officer


def release(ctx: Ctx, referral: Referral) -> None:
    """Give the referral back to the queue: its officer, or a lead."""
    if not may_release(ctx.user, referral):
        raise Forbidden(_l("Only the officer working on a referral, or an administrator, can "
                           "give it back."))
    holder = referral.assigned_to_id
    if not _set(referral, None, holder):
        raise StateConflict(_l("Someone else changed who works on referral #%(id)d. "
                               "Reload it and try again.", id=referral.id))
    audit.record(ctx, "referral.release", referral, **{"from": holder})
