"""Reveals of a buyer's full ID number and mobile (issue 10): each with its purpose, limited per
person per hour, and past the limit only with a manager's approval."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, UTCDateTime, utcnow
from .referral import Referral
from .user import User


class Reveal(db.Model):
    """One reveal made: who saw which buyer in full, when, and why."""

    __tablename__ = "reveal"
    __table_args__ = (Index("ix_reveal_user_at", "user_id", "at"), Index("ix_reveal_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A code of portal.labels.REVEAL_REASONS, and the officer's words (required for "other").
    reason_code: Mapped[str] = mapped_column(String(30))
    reason_text: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    # Set when the reveal went over the hourly limit on a manager's approval.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("reveal_request.id"))

    referral: Mapped[Referral] = relationship()
    user: Mapped[User] = relationship()


class RevealRequest(db.Model):
    """An officer over the hourly limit asks a manager to approve one more reveal.

    pending -> approved (-> used, by the one reveal it allows) | refused."""

    __tablename__ = "reveal_request"
    __table_args__ = (Index("ix_reveal_request_status", "status", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason_code: Mapped[str] = mapped_column(String(30))
    reason_text: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    referral: Mapped[Referral] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
