from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .org import Organization
from .product import Product
from .user import User

if TYPE_CHECKING:
    from .decision import LoanDecision
    from .document import Document, Stipulation

Money = Numeric(14, 2)


class Referral(db.Model):
    __tablename__ = "referral"
    __table_args__ = (
        UniqueConstraint("org_id", "external_ref", name="uq_referral_org_external_ref"),
        Index("ix_referral_buyer", "national_id_hash", "product_code"),
        Index("ix_referral_org_status", "org_id", "status"),
        Index("ix_referral_status_changed", "status", "status_changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    product_code: Mapped[str] = mapped_column(ForeignKey("product.code"))
    external_ref: Mapped[str | None] = mapped_column(String(64))
    # Set on history brought in by an import job: the queue marks such referrals as imported.
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batch.id", name="fk_referral_import_batch"))

    buyer_name: Mapped[str] = mapped_column(String(100))
    # The national ID and mobile are kept encrypted; matching uses the keyed hash and every
    # screen that is not an audited reveal uses the masked form.
    national_id_hash: Mapped[str] = mapped_column(String(64))
    national_id_enc: Mapped[str] = mapped_column(Text)
    national_id_masked: Mapped[str] = mapped_column(String(32))
    mobile_enc: Mapped[str] = mapped_column(Text)
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
    submitted_by: Mapped[User | None] = relationship()
    product: Mapped[Product] = relationship()
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
