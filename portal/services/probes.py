"""Probing the attribution answer (docs/attribution.md): counted, and past a threshold held.

A partner that submits a buyer, learns from `conflict` that another partner holds them, and
withdraws, has mined the registration oracle once. Such withdrawals are counted per partner per
bank day; from `PROBE_HOLD_THRESHOLD` of them on, the partner's further submissions that day go
to `held`, where a channel manager releases or refuses them (services/holds.py), and the
partner's channel manager (all channel managers when it has none) is alerted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from models import Organization, Referral, ReferralEvent, Role, User

from ..bank_time import bank_date, day_start
from ..extensions import db
from . import Ctx, audit, branches, notifications
from .lifecycle import State


def _day_bounds(at: datetime) -> tuple[datetime, datetime]:
    day = bank_date(at)
    return day_start(day), day_start(day + timedelta(days=1))


def probe_count(org_id: int, at: datetime) -> int:
    """Submissions of the organisation that went to conflict and that its own users withdrew,
    on the bank day of `at` (the day of the withdrawal)."""
    start, end = _day_bounds(at)
    actor = aliased(User)
    return db.session.scalar(
        select(func.count(ReferralEvent.id))
        .join(Referral, Referral.id == ReferralEvent.referral_id)
        .join(actor, actor.id == ReferralEvent.actor_id)
        .where(Referral.org_id == org_id, actor.org_id == org_id,
               ReferralEvent.from_state == State.conflict.value,
               ReferralEvent.to_state == State.withdrawn.value,
               ReferralEvent.at >= start, ReferralEvent.at < end)) or 0


def threshold() -> int:
    return current_app.config["PROBE_HOLD_THRESHOLD"]


def should_hold(org_id: int, at: datetime) -> bool:
    limit = threshold()
    return limit > 0 and probe_count(org_id, at) >= limit


def managers_to_alert(org: Organization) -> list[User]:
    """The partner's channel manager, or every active channel manager of its branch (or above
    it) when it has none."""
    manager = org.channel_manager
    if manager is not None and manager.active:
        return [manager]
    return [user for user in db.session.scalars(select(User).where(
        User.role == Role.channel_manager.value, User.active.is_(True)).order_by(User.id))
        if branches.may_see_org(user, org)]


def held(ctx: Ctx, referral: Referral, at: datetime) -> None:
    """Record that `referral` was held and alert the channel manager (once a day a partner)."""
    org = referral.org or db.session.get(Organization, referral.org_id)
    count = probe_count(org.id, at)
    audit.record(ctx, "referral.hold", referral, probes_today=count, threshold=threshold())
    day = bank_date(at).isoformat()
    notifications.notify_staff(
        managers_to_alert(org), "probe_hold",
        {"org_id": org.id, "org_code": org.code, "org_name": org.name, "count": count,
         "day": day}, dedupe_key=f"probe-hold:{org.id}:{day}")
