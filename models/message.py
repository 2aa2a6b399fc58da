"""Messages on a referral between the partner's users and the bank's staff.

The thread is written for both sides: `body` is partner text, and nothing the bank keeps to
itself (the internal notes on events, documents, follow-ups) is ever a message. A message is
read or not by the side it was written to: the partner's users as one, the bank's staff as one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import PARTNER_TEXT, UTCDateTime, utcnow
from .referral import Referral
from .user import User

SIDES = ("partner", "bank")


class ReferralMessage(db.Model):
    __tablename__ = "referral_message"
    __table_args__ = (
        Index("ix_referral_message_referral", "referral_id", "id"),
        # The menu counts: what one side has not read yet.
        Index("ix_referral_message_unread", "side", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Who wrote it: "partner" or "bank"; the other side is the one it is written to.
    side: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text, info=PARTNER_TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the other side first read it, and who did.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    referral: Mapped[Referral] = relationship()
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    read_by: Mapped[User | None] = relationship(foreign_keys=[read_by_id])
