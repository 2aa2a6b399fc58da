"""Referral gating: a partner refers only for products an agreement in force covers.

"In force" is read from the status and the dates together, so an agreement whose day has come or
gone counts rightly before the scheduled roll has moved its status: reading never has to write.
"""

from __future__ import annotations

from datetime import date

from flask_babel import get_locale
from sqlalchemy import and_, bindparam, select

from models import Agreement, AgreementStatus, Organization, Product
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_today
from ...extensions import db
from ..errors import Forbidden

AS = AgreementStatus


def in_force(today: date):
    """An agreement in force today: active (or accepted and due, before the daily roll)."""
    return and_(Agreement.status.in_([AS.active.value, AS.accepted.value]),
                Agreement.effective_from <= today, Agreement.expires_on >= today)


# Built once: every intake asks.
_COVERED = select(Agreement.products).where(Agreement.org_id == bindparam("org_id"),
                                            in_force(bindparam("today")))


def covered_products(org: Organization, today: date | None = None) -> set[str]:
    rows = db.session.scalars(_COVERED, {"org_id": org.id, "today": today or bank_today()})
    return {code for products in rows for code in (products or [])}


def check_product_covered(org: Organization, product, *, today: date | None = None) -> None:
    """Refuse a referral for a product no agreement of the organisation in force covers."""
    code = product.code if isinstance(product, Product) else str(product)
    covered = covered_products(org, today)
    if code in covered:
        return
    if not isinstance(product, Product):
        product = db.session.get(Product, code)
    name = product.display_name(str(get_locale() or "zh_CN")) if product else code
    if not covered:
        raise Forbidden(_l("Your organisation has no cooperation agreement in force, so it "
                           "cannot submit referrals. Please contact your channel manager."))
    raise Forbidden(_l("Your cooperation agreement does not cover %(product)s. Please contact "
                       "your channel manager to add it.", product=name))
