"""Customers the bank refers to a partner (互换客户资源, the other direction of a referral).

A bank customer who needs what a partner sells — a mortgage customer a decoration partner, a
car buyer a dealer — is referred by the bank's staff with the customer's recorded consent. The
partner sees the name and mobile it needs to contact them and what they need; never the bank's
internal note. The mobile is kept as buyers' mobiles are: encrypted, with a keyed hash for
finding it and a masked form for lists.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .org import Organization
from .user import User


class LeadStatus(str, enum.Enum):
    sent = "sent"              # waiting on the partner
    accepted = "accepted"      # the partner takes the customer on
    declined = "declined"      # the partner will not (with its reason)
    contacted = "contacted"    # the partner has reached the customer
    won = "won"                # a deal was made
    lost = "lost"              # no deal


# Where each state may go, and who moves it: the partner, always.
LEAD_TRANSITIONS = {
    "sent": ("accepted", "declined"),
    "accepted": ("contacted", "won", "lost"),
    "contacted": ("won", "lost"),
}
LEAD_OUTCOMES = ("contacted", "won", "lost")


class CustomerLead(db.Model):
    __tablename__ = "customer_lead"
    __table_args__ = (
        # A partner's leads newest first (its list), and the balance's counts per partner.
        Index("ix_customer_lead_org_created", "org_id", "created_at", "id"),
        Index("ix_customer_lead_mobile_hash", "mobile_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    customer_name: Mapped[str] = mapped_column(String(100))
    mobile_enc: Mapped[str] = mapped_column(Text)
    mobile_hash: Mapped[str | None] = mapped_column(String(64))
    mobile_masked: Mapped[str] = mapped_column(String(32))
    # What the customer needs: a category, and a few words for the partner.
    need: Mapped[str] = mapped_column(String(40))
    need_detail: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    # Why the bank refers this customer, what it knows of them: the bank's own.
    internal_note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)

    # The customer's consent to be referred: how it was given, when, the notice's version, and
    # the member of staff who recorded it.
    consent_method: Mapped[str] = mapped_column(String(20))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consent_notice_version: Mapped[str] = mapped_column(String(40))
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.sent.value)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The partner's words: why it declined, how the outcome went. The bank reads them too.
    decline_reason: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    outcome_note: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    org: Mapped[Organization] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    consent_recorded_by: Mapped[User | None] = relationship(foreign_keys=[consent_recorded_by_id])
    answered_by: Mapped[User | None] = relationship(foreign_keys=[answered_by_id])

    @property
    def is_open(self) -> bool:
        return self.status in LEAD_TRANSITIONS

    def __repr__(self) -> str:
        return f"<CustomerLead {self.id} {self.status}>"
