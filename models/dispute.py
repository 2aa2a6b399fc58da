"""A partner's dispute of a figure on its scorecard or of one of its loans' records, and the
bank's answer. `note` and `answer` are written for both sides; `internal_note` stays in the
bank."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .org import Organization
from .referral import Referral
from .user import User


class Dispute(db.Model):
    __tablename__ = "dispute"
    __table_args__ = (Index("ix_dispute_status_opened", "status", "opened_at"),
                      Index("ix_dispute_org", "org_id", "opened_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    # kpi: a figure on the card (kpi_name, period_key) | loan: one of its loans (referral_id)
    subject: Mapped[str] = mapped_column(String(10))
    kpi_name: Mapped[str | None] = mapped_column(String(40))
    period_key: Mapped[str | None] = mapped_column(String(12))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, info=PARTNER_TEXT)  # the partner's own words
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # open -> answered
    status: Mapped[str] = mapped_column(String(12), default="open")
    answer: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    internal_note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    org: Mapped[Organization] = relationship()
    referral: Mapped[Referral | None] = relationship()
    opened_by: Mapped[User | None] = relationship(foreign_keys=[opened_by_id])
    answered_by: Mapped[User | None] = relationship(foreign_keys=[answered_by_id])
