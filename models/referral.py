from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .org import Organization
from .product import Product
from .user import User

if TYPE_CHECKING:
    from .decision import LoanDecision
    from .document import Document, Stipulation
    from .site import PartnerSite

Money = Numeric(14, 2)
SEARCH_KEY = String(100).with_variant(String(100, collation="C"), "postgresql")


class Referral(db.Model):
    __tablename__ = "referral"
    __table_args__ = (
        UniqueConstraint("org_id", "external_ref", name="uq_referral_org_external_ref"),
        Index("ix_referral_buyer", "national_id_hash", "product_code"),
        # A partner's referrals in a state, longest waiting first (the dashboard's "waiting on
        # you"), and its counts per state (migration 0015 widened the old (org_id, status)).
        Index("ix_referral_org_status_changed", "org_id", "status", "status_changed_at", "id"),
        Index("ix_referral_status_changed", "status", "status_changed_at"),
        # The officers' queue: WHERE clock = 'bank' ORDER BY bank_clock_origin walks this index
        # in order (the queue's statuses are all but two of the bank-clock ones, checked from
        # the index), so "longest wait first" over a million referrals reads one page of rows.
        Index("ix_referral_bank_queue", "clock", "bank_clock_origin", "status"),
        Index("ix_referral_assigned_to", "assigned_to_id", "clock"),
        # The lists' orders, so that a page is read off an index instead of sorting every
        # matching row: a partner's newest first, everyone's newest first, the queue's oldest
        # wait first, a partner's latest moves (recent activity).
        Index("ix_referral_org_submitted", "org_id", "submitted_at", "id"),
        Index("ix_referral_submitted", "submitted_at", "id"),
        Index("ix_referral_status_submitted", "status", "submitted_at", "id"),
        Index("ix_referral_org_changed", "org_id", "status_changed_at", "id"),
        # Search (services/referral_search.py): prefixes of the normalised name and reference,
        # and the mobile's keyed hash.
        Index("ix_referral_name_key", "buyer_name_key"),
        Index("ix_referral_ref_key", "external_ref_key"),
        Index("ix_referral_mobile_hash", "mobile_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"))
    external_ref: Mapped[str | None] = mapped_column(String(64))
    external_ref_key: Mapped[str | None] = mapped_column(SEARCH_KEY)
    # Set on history brought in by an import job: the queue marks such referrals as imported.
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batch.id", name="fk_referral_import_batch"))
    # The partner's project, showroom or office the buyer came through (models/site.py).
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_site.id", name="fk_referral_site"), index=True)

    buyer_name: Mapped[str] = mapped_column(String(100))
    # Search keys (referral_search.search_key): compared by prefix through their indexes, so
    # bytewise ("C") on PostgreSQL, where a prefix range must follow the bytes.
    buyer_name_key: Mapped[str | None] = mapped_column(SEARCH_KEY)
    # The national ID and mobile are kept encrypted; matching uses the keyed hash and every
    # screen that is not an audited reveal uses the masked form.
    national_id_hash: Mapped[str] = mapped_column(String(64))
    national_id_enc: Mapped[str] = mapped_column(Text)
    national_id_masked: Mapped[str] = mapped_column(String(32))
    mobile_enc: Mapped[str] = mapped_column(Text)
    # The mobile's keyed hash (pii.mobile_hash), for bank staff and the partner to find a buyer by
    # their whole number; None once anonymised.
    mobile_hash: Mapped[str | None] = mapped_column(String(64))
    mobile_masked: Mapped[str] = mapped_column(String(32))
    employer: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str] = mapped_column(String(60))
    customer_class: Mapped[int]
    monthly_income: Mapped[Decimal] = mapped_column(Money)

    amount: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int]
    asset_description: Mapped[str | None] = mapped_column(String(300))
    asset_price: Mapped[Decimal | None] = mapped_column(Money)
    down_payment: Mapped[Decimal | None] = mapped_column(Money)

    consent_notice_version: Mapped[str] = mapped_column(String(40))
    consent_obtained_at: Mapped[datetime] = mapped_column(UTCDateTime())

    status: Mapped[str] = mapped_column(String(30))
    # Whose clock runs now: "bank", "partner" or None once the referral is closed.
    clock: Mapped[str | None] = mapped_column(String(10))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    bank_seconds: Mapped[int] = mapped_column(default=0)
    partner_seconds: Mapped[int] = mapped_column(default=0)
    # When the bank's clock would have started had it run without a pause: status_changed_at
    # less bank_seconds. While the bank's clock runs, the wait on the bank is now minus this,
    # so ordering by it ascending is "longest wait first", exactly as the waits are shown.
    # The transition service moves it whenever the clock stops or the time is banked; an
    # INSERT (ORM or Core, e.g. the bulk import) gets it from its own values.
    bank_clock_origin: Mapped[datetime] = mapped_column(UTCDateTime(),
                                                        default=lambda c: _origin_default(c))
    # The officer working on the referral (services/assignment.py); None: anyone may take it.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ever_documents_requested: Mapped[bool] = mapped_column(default=False)
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the retention job (services/retention.py): the buyer's personal data is gone.
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optimistic lock: two officers acting at once, the second write finds a new version.
    version: Mapped[int] = mapped_column(default=1)

    org: Mapped[Organization] = relationship()
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    product: Mapped[Product] = relationship()
    site: Mapped[PartnerSite | None] = relationship()
    events: Mapped[list[ReferralEvent]] = relationship(
        back_populates="referral", order_by="ReferralEvent.id", cascade="all, delete-orphan"
    )
    stipulations: Mapped[list[Stipulation]] = relationship(
        back_populates="referral", order_by="Stipulation.id", cascade="all, delete-orphan"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="referral", order_by="Document.id", cascade="all, delete-orphan"
    )
    # The decision's terms, contract and disbursement (models/decision.py), once recorded.
    decision: Mapped[LoanDecision | None] = relationship(cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}


def clock_origin(status_changed_at: datetime, bank_seconds: int) -> datetime:
    return status_changed_at - timedelta(seconds=bank_seconds or 0)


def _origin_default(context) -> datetime:
    values = context.get_current_parameters()
    return clock_origin(values.get("status_changed_at") or utcnow(), values.get("bank_seconds"))


class ReferralEvent(db.Model):
    """One line of a referral's timeline: a transition, with who, when and whose clock next."""

    __tablename__ = "referral_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    from_state: Mapped[str | None] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    clock: Mapped[str | None] = mapped_column(String(10))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    # note: bank-internal; partner_note: what the partner may read (e.g. what to upload).
    note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    partner_note: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)

    referral: Mapped[Referral] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class BuyerRegistration(db.Model):
    """One row per (buyer, product): the lock that serialises attribution checks."""

    __tablename__ = "buyer_registration"

    national_id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReferralTally(db.Model):
    """How many referrals a partner has in a status (migration 0022). Kept by triggers on
    `referral` in the same transaction as the write, so it agrees with `GROUP BY org_id, status`
    whoever wrote; the application only reads it. A count may be 0 (the row stays)."""

    __tablename__ = "referral_tally"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", name="fk_referral_tally_org"), primary_key=True)
    status: Mapped[str] = mapped_column(String(30), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
