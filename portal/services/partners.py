"""The partner organisations: the one list of them, and one of them by id (never the bank)."""

from __future__ import annotations

from sqlalchemy import select

from models import Organization

from ..extensions import db


def partner_orgs() -> list[Organization]:
    """Every partner organisation, by name (for the faces' filter and choice lists)."""
    return list(db.session.scalars(
        select(Organization).where(Organization.is_partner).order_by(Organization.name)))


def partner_org(org_id: int) -> Organization | None:
    """A partner organisation by id; None for the bank itself or an unknown id."""
    org = db.session.get(Organization, org_id)
    return None if org is None or org.is_bank else org
