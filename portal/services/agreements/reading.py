"""Reading agreements: who may see which, the managers' search, and a number's versions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, or_, select

from models import Agreement, AgreementStatus, Organization, Product, User

from ...bank_time import bank_today
from ...extensions import db
from .. import branches
from ..errors import NotFound
from .access import MANAGER_ROLES

AS = AgreementStatus


def visible_agreements(user: User) -> Select:
    """Agreements the user may see: their organisation's (not drafts) or, for channel managers
    and admins, all."""
    query = select(Agreement)
    if user.is_partner:
        return query.where(Agreement.org_id == user.org_id, Agreement.status != AS.draft.value)
    if user.role in MANAGER_ROLES:
        return query.where(branches.in_scope(user, Agreement.org_id))
    return query.where(False)


def get_for(user: User, agreement_id: int) -> Agreement:
    """Load an agreement the user may see; another organisation's is simply not found."""
    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound()
    if user.is_partner:
        if agreement.org_id != user.org_id or agreement.status == AS.draft.value:
            raise NotFound()
    elif user.role not in MANAGER_ROLES or not branches.may_see_org(user, agreement.org):
        raise NotFound()
    return agreement


def search(query: Select, *, status: str | None = None, org_id: int | None = None,
           q: str | None = None, manager_id: int | None = None,
           expiring_days: int | None = None) -> Select:
    if status:
        query = query.where(Agreement.status == status)
    if org_id:
        query = query.where(Agreement.org_id == org_id)
    if q:
        like = f"%{q.strip()}%"
        query = query.join(Agreement.org).where(or_(Agreement.number.ilike(like),
                                                    Organization.name.ilike(like),
                                                    Organization.code.ilike(like)))
        if manager_id:
            query = query.where(Organization.channel_manager_id == manager_id)
    elif manager_id:
        query = query.join(Agreement.org).where(Organization.channel_manager_id == manager_id)
    if expiring_days:
        today = bank_today()
        query = query.where(Agreement.status == AS.active.value, Agreement.expires_on >= today,
                            Agreement.expires_on <= today + timedelta(days=expiring_days))
    return query


def product_names(locale: str) -> dict[str, str]:
    return {p.code: p.display_name(locale) for p in db.session.scalars(select(Product))}


def history(agreement: Agreement) -> list[Agreement]:
    """Every version of the agreement's number, newest first."""
    return list(db.session.scalars(select(Agreement).where(Agreement.number == agreement.number)
                                   .order_by(Agreement.version.desc())))
