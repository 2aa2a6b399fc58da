"""The channel managers' review of held submissions (docs/attribution.md).

A held submission is released to the queue — to `submitted`, or to `conflict` when another
partner registered the buyer first, the attribution check running again now — or refused. Both
need a written reason, which stays inside the bank; the partner reads a neutral message.
"""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from models import Organization, Referral, ReferralTally, User
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, branches, referral_counts, referrals
from .errors import StateConflict
from .lifecycle import State

RELEASED_NOTE = _l("The bank has reviewed this referral and will process it.")
REFUSED_NOTE = _l("The bank has reviewed this referral and will not process it.")


def release(ctx: Ctx, referral: Referral, reason: str, *,
            expected_version: int | None = None) -> str:
    """Send a held submission on: to `conflict` if another partner holds the buyer now, else to
    `submitted`. Returns the state it went to."""
    _still_held(referral)
    target = (State.conflict if referrals.conflict_holder(referral) is not None
              else State.submitted)
    referrals.transition(ctx, referral, target.value, note=reason,
                         partner_note=str(RELEASED_NOTE) if target == State.submitted else None,
                         reason_code="already_registered" if target == State.conflict else None,
                         expected_version=expected_version, hold_review=True)
    audit.record(ctx, "referral.hold_release", referral, to=target.value, reason=reason)
    return target.value


def refuse(ctx: Ctx, referral: Referral, reason: str, *,
           expected_version: int | None = None) -> None:
    _still_held(referral)
    referrals.transition(ctx, referral, State.refused.value, note=reason,
                         partner_note=str(REFUSED_NOTE), expected_version=expected_version,
                         hold_review=True)
    audit.record(ctx, "referral.hold_refuse", referral, reason=reason)


def _mine(user: User):
    return Referral.org.has(Organization.channel_manager_id == user.id)


def held_queue(user: User, *, all_partners: bool) -> Select:
    """Held submissions, oldest first; unless `all_partners`, those of the user's partners."""
    query = referrals.visible_referrals(user).where(Referral.status == State.held.value)
    if not all_partners:
        query = query.where(_mine(user))
    return query.options(selectinload(Referral.org), selectinload(Referral.product)).order_by(
        Referral.status_changed_at, Referral.id)


def held_count(user: User) -> int:
    """For the menu badge: held submissions of the user's partners, and of partners without a
    channel manager (whom every channel manager is alerted about)."""
    return int(db.session.scalar(_held_count(user)) or 0)


@branches.per_scope
def _held_count(scope: branches.Scope):
    where = [branches.in_scope(scope, ReferralTally.org_id)]
    if scope.role != "admin":
        where.append(ReferralTally.org_id.in_(select(Organization.id).where(or_(
            Organization.channel_manager_id == scope.id,
            Organization.channel_manager_id.is_(None)))))
    return referral_counts.total_statement(*where, statuses=(State.held.value,))


def _still_held(referral: Referral) -> None:
    if referral.status != State.held.value:
        raise StateConflict(_l("This submission is no longer held."))
