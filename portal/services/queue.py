"""Bank-side referral lists: the officers' work queue, the search over everything, conflicts.

Queries only: they return SQLAlchemy selects the views paginate, plus small look-ups the filter
forms need. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import aliased, selectinload

from models import Document, Organization, Product, Referral, User

from ..extensions import db
from . import referral_search, referrals
from .errors import NotFound
from .lifecycle import State

# What an officer works on: the bank's clock runs, and the referral is not an attribution
# conflict (those belong to the channel managers' conflict queue).
QUEUE_STATES = (State.submitted.value, State.under_review.value, State.approved.value,
                State.contract_signed.value)


@dataclass(frozen=True)
class ReferralFilters:
    q: str | None = None
    status: str | None = None
    product: str | None = None
    org_id: int | None = None
    partner_type: str | None = None
    customer_class: int | None = None


def _filtered(query: Select, f: ReferralFilters) -> Select:
    query = referrals.search(query, status=f.status, product=f.product, org_id=f.org_id)
    # Bank staff's search box also names partners (referral_search: partners first, then
    # org_id IN their ids, every part through an index).
    condition = referral_search.matching(f.q, partners=True)
    if condition is not None:
        query = query.where(condition)
    if f.partner_type:
        query = query.where(Referral.org_id.in_(
            select(Organization.id).where(Organization.kind == f.partner_type)))
    if f.customer_class:
        query = query.where(Referral.customer_class == f.customer_class)
    return query


def _with_lists(query: Select) -> Select:
    return query.options(selectinload(Referral.org), selectinload(Referral.product))


def work_queue(user: User, f: ReferralFilters) -> Select:
    """Referrals waiting on the bank, the one that has waited longest first."""
    if f.status and f.status not in QUEUE_STATES:
        f = ReferralFilters(q=f.q, product=f.product, org_id=f.org_id, partner_type=f.partner_type,
                            customer_class=f.customer_class)
    query = referrals.visible_referrals(user).where(Referral.clock == "bank",
                                                    Referral.status.in_(QUEUE_STATES))
    return _with_lists(_filtered(query, f)).order_by(Referral.status_changed_at, Referral.id)


def all_referrals(user: User, f: ReferralFilters) -> Select:
    """Every referral the user may see, newest submission first."""
    query = _filtered(referrals.visible_referrals(user), f)
    return _with_lists(query).order_by(Referral.submitted_at.desc(), Referral.id.desc())


def conflict_queue(user: User, *, all_partners: bool) -> Select:
    """Referrals in attribution conflict, oldest first.

    Unless `all_partners`, only conflicts that concern one of the user's partners: the challenger's
    organisation, or the organisation of another referral of the same buyer and product, is
    assigned to them.
    """
    query = referrals.visible_referrals(user).where(Referral.status == State.conflict.value)
    if not all_partners:
        mine = Organization.channel_manager_id == user.id
        other = aliased(Referral)
        query = query.where(or_(
            Referral.org.has(mine),
            exists().where(other.national_id_hash == Referral.national_id_hash,
                           other.product_code == Referral.product_code,
                           other.id != Referral.id,
                           other.org.has(mine)),
        ))
    return _with_lists(query).order_by(Referral.status_changed_at, Referral.id)


def products() -> list[Product]:
    return list(db.session.scalars(select(Product).order_by(Product.code)))


def document_of(referral: Referral, document_id: int) -> Document:
    """A document of this referral, or NotFound (also when it belongs to another referral)."""
    document = db.session.get(Document, document_id)
    if document is None or document.referral_id != referral.id:
        raise NotFound()
    return document
