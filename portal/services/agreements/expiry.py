"""Agreements about to end: the warnings on the dashboards and the partners' notices.

The notices are the agreements' business, so they live here and call the notifications service;
notifications knows nothing of agreements (that dependency once ran both ways).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from models import Agreement, AgreementStatus, Organization, Role, User

from ...bank_time import bank_today
from ...extensions import db
from .. import branches, notifications

AS = AgreementStatus
EXPIRY_NOTICE_DAYS = 30


def expiring_soon(subject, days: int = 30, *, today: date | None = None) -> list[Agreement]:
    """Agreements in force that end within `days` and have no accepted renewal yet.

    `subject`: an Organization, or a User (partner: their organisation's; channel manager: the
    partners they look after; admin: all).
    """
    today = today or bank_today()
    renewal = aliased(Agreement)
    query = (select(Agreement).join(Agreement.org)
             .where(Agreement.status == AS.active.value, Agreement.expires_on >= today,
                    Agreement.expires_on <= today + timedelta(days=days),
                    ~exists().where(renewal.supersedes_id == Agreement.id,
                                    renewal.status.in_([AS.accepted.value, AS.active.value])))
             .order_by(Agreement.expires_on, Agreement.id))
    if isinstance(subject, Organization):
        query = query.where(Agreement.org_id == subject.id)
    elif isinstance(subject, User):
        if subject.is_partner:
            query = query.where(Agreement.org_id == subject.org_id)
        elif subject.role == Role.channel_manager.value:
            query = query.where(Organization.channel_manager_id == subject.id)
        elif subject.role != Role.admin.value:
            return []
        else:
            query = query.where(branches.in_scope(subject, Agreement.org_id))
    else:
        return []
    return list(db.session.scalars(query))


def send_expiry_notices(today: date | None = None, days: int = EXPIRY_NOTICE_DAYS) -> int:
    """Notify each partner once per agreement in force that ends within `days` with no
    accepted renewal (the rule of `expiring_soon`); returns the notifications made."""
    today = today or bank_today()
    org_ids = db.session.scalars(select(Agreement.org_id).distinct().where(
        Agreement.status == AS.active.value, Agreement.expires_on >= today,
        Agreement.expires_on <= today + timedelta(days=days)))
    made = 0
    for org_id in list(org_ids):
        org = db.session.get(Organization, org_id)
        for agreement in expiring_soon(org, days, today=today):
            made += len(notifications.notify_org(
                agreement.org_id, "agreement_expiring",
                {"agreement_id": agreement.id, "number": agreement.number,
                 "version": agreement.version, "expires_on": agreement.expires_on.isoformat()},
                dedupe_key=f"agreement-expiring:{agreement.id}"))
    return made
