"""The partner organisations: the one list of them, and one of them by id (never the bank);
given a user, only those of the user's branch subtree (services/branches.py)."""

from __future__ import annotations

from sqlalchemy import select

from models import Organization, User

from ..extensions import db
from . import branches


def partner_orgs(user: User | None = None) -> list[Organization]:
    """Every partner organisation the user may see, by name (for the faces' filter and choice
    lists); every one without a user (the system)."""
    return list(db.session.scalars(
        select(Organization).where(Organization.is_partner,
                                   branches.in_scope(user, Organization.id))
        .order_by(Organization.name)))


def partner_org(org_id: int, user: User | None = None) -> Organization | None:
    """A partner organisation by id; None for the bank itself, an unknown id, or one outside the
    user's branch subtree."""
    org = db.session.get(Organization, org_id)
    if org is None or org.is_bank or not branches.may_see_org(user, org):
        return None
    return org
