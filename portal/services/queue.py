"""Bank-side referral lists: the officers' work queue, the search over everything, conflicts.

Queries only: they return SQLAlchemy selects the views paginate, plus small look-ups the filter
forms need. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import aliased, joinedload

from models import Document, Organization, Product, Referral, User

from ..extensions import db
from . import referral_search, referrals
from .errors import NotFound
from .lifecycle import CLOCK, State

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
    # Each row's partner and product in the page's own statement: left joins on their keys keep
    # the list's index order (SQLite walks a LEFT JOIN's left table first), and save the two
    # statements a selectin load costs, a round trip each on PostgreSQL (issue 15).
    return query.options(joinedload(Referral.org), joinedload(Referral.product))


# The same set said the other way round, as the queue asks for it: with "status IN (the four)"
# PostgreSQL multiplied the clock's and the status's selectivities (they go together), guessed
# 2% of the rows, and sorted 20,000 rows of a million for a page of 25; with "NOT IN (these
# two)" it walks ix_referral_bank_queue in order and stops after the page (0.4 ms).
NOT_QUEUED = tuple(s.value for s, clock in CLOCK.items()
                   if clock == "bank" and s.value not in QUEUE_STATES)

# Whose referrals the queue shows: everyone's, the user's own, or those nobody has taken.
VIEWS = ("all", "mine", "unassigned")


@dataclass(frozen=True)
class QueueOrder:
    """A whitelisted column of the queue and its direction; "wait" "desc" is longest first."""

    key: str = "wait"
    direction: str = "desc"


# The direction a column starts in when its header is first clicked.
SORTS = {"wait": "desc", "submitted": "asc", "amount": "desc", "partner": "asc",
         "status": "asc"}


def queue_order(key: str | None, direction: str | None) -> QueueOrder:
    """The order asked for, or the default one for anything not on the list."""
    if key not in SORTS:
        return QueueOrder()
    return QueueOrder(key, direction if direction in ("asc", "desc") else SORTS[key])


def _queue(user: User, f: ReferralFilters, view: str) -> Select:
    if f.status and f.status not in QUEUE_STATES:
        f = ReferralFilters(q=f.q, product=f.product, org_id=f.org_id, partner_type=f.partner_type,
                            customer_class=f.customer_class)
    query = referrals.visible_referrals(user).where(Referral.clock == "bank",
                                                    Referral.status.not_in(NOT_QUEUED))
    if view == "mine":
        query = query.where(Referral.assigned_to_id == user.id)
    elif view == "unassigned":
        query = query.where(Referral.assigned_to_id.is_(None))
    return _filtered(query, f)


def work_queue(user: User, f: ReferralFilters, *, view: str = "all",
               order: QueueOrder = QueueOrder()) -> Select:
    """Referrals waiting on the bank, by default the one that has waited longest first.

    The wait is the bank's clock (now - bank_clock_origin while it runs, the same figure
    referrals.bank_clock_seconds shows), so the longest wait is the smallest origin."""
    query = _queue(user, f, view)
    ascending = order.direction == "asc"
    if order.key == "wait":
        # A longer wait is an earlier origin: the wait's direction is the origin's reversed.
        keys = [Referral.bank_clock_origin.desc() if ascending else Referral.bank_clock_origin]
    elif order.key == "partner":
        query = query.join(Organization, Organization.id == Referral.org_id)
        keys = [Organization.name.asc() if ascending else Organization.name.desc()]
    else:
        column = {"submitted": Referral.submitted_at, "amount": Referral.amount,
                  "status": Referral.status}[order.key]
        keys = [column.asc() if ascending else column.desc()]
    # Within equal values, the longest wait first.
    tie = [] if order.key == "wait" else [Referral.bank_clock_origin]
    return _with_lists(query).options(joinedload(Referral.assigned_to)).order_by(
        *keys, *tie, Referral.id)


@dataclass(frozen=True)
class SlaCount:
    amber: int
    red: int
    waiting: int = 0  # the whole filtered queue


def sla_thresholds() -> tuple[int, int]:
    """Seconds on the bank's clock from which a wait is amber, and red."""
    cfg = current_app.config
    return cfg["QUEUE_SLA_AMBER_HOURS"] * 3600, cfg["QUEUE_SLA_RED_HOURS"] * 3600


def sla_level(wait_seconds: int) -> str:
    """"red", "amber" or "ok" for a wait on the bank's clock, in whole seconds."""
    amber, red = sla_thresholds()
    return "red" if wait_seconds >= red else "amber" if wait_seconds >= amber else "ok"


def sla_count(user: User, f: ReferralFilters, now: datetime, *, view: str = "all") -> SlaCount:
    """How many referrals of the filtered queue wait, and how many of them are amber and red at
    `now`, in one statement over the queue's range of ix_referral_bank_queue (clock, origin):
    the page's own count is this one (blueprints.paginate(total=)), not a second pass over the
    same range (issue 15).

    A wait of w whole seconds is now - origin truncated, so w >= limit exactly when
    origin <= now - limit: the counts agree with the levels shown row by row."""
    amber, red = sla_thresholds()
    past_amber = Referral.bank_clock_origin <= now - timedelta(seconds=amber)
    past_red = Referral.bank_clock_origin <= now - timedelta(seconds=red)
    waiting, late_or_due, late = db.session.execute(
        _queue(user, f, view).with_only_columns(
            func.count(), func.count().filter(past_amber), func.count().filter(past_red))).one()
    return SlaCount(amber=int(late_or_due) - int(late), red=int(late), waiting=int(waiting))


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
