"""Agreements about to end: the warnings on the dashboards and the partners' notices."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from models import Agreement, AgreementStatus, Organization, Role, User

from ...extensions import db
from .bank_calendar import local_today

AS = AgreementStatus


def expiring_soon(subject, days: int = 30, *, today: date | None = None) -> list[Agreement]:
    """Agreements in force that end within `days` and have no accepted renewal yet.

    `subject`: an Organization, or a User (partner: their organisation's; channel manager: the
    partners they look after; admin: all).
    """
    today = today or local_today()
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
        return []
    return list(db.session.scalars(query))
