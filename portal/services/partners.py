"""The partner organisations: the one list of them, and one of them by id (never the bank);
given a user, only those of the user's branch subtree (services/branches.py)."""

from __future__ import annotations

from sqlalchemy import or_, select

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


def named(text: str):
    """The condition "a partner whose code or name contains `text`" (a few hundred rows)."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return Organization.is_partner & or_(Organization.code.ilike(like, escape="\\"),
                                         Organization.name.ilike(like, escape="\\"))


def lookup(text: str | None, user: User | None = None, limit: int = 20) -> list[Organization]:
    """Partners of the user's branch subtree whose code or name contains `text`, codes that
    start with it first (the filter bars' type-ahead: never the whole list of partners on a
    page)."""
    text = (text or "").strip()[:100]
    if not text:
        return []
    rows = db.session.scalars(select(Organization).where(
        named(text), branches.in_scope(user, Organization.id))
                              .order_by(Organization.code).limit(200))
    found = sorted(rows, key=lambda o: (not o.code.upper().startswith(text.upper()), o.code))
    return found[:limit]


def by_reference(value: str | None, user: User | None = None) -> Organization | None:
    """The partner a filter names: by its code (what a person types), else by its id (what
    links between pages carry); None when no partner of the user's subtree is so named."""
    value = (value or "").strip()
    if not value:
        return None
    org = db.session.scalar(select(Organization).where(
        Organization.is_partner, Organization.code == value.upper()))
    if org is None and value.isascii() and value.isdigit() and len(value) <= 9:
        org = partner_org(int(value), user)
    return org if org is not None and branches.may_see_org(user, org) else None
