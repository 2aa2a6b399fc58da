from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .referral import Referral
from .user import User


class Stipulation(db.Model):
    """A document the bank needs for a referral: from the product checklist or requested later."""

    __tablename__ = "stipulation"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    # missing -> uploaded -> accepted | rejected (-> uploaded again)
    status: Mapped[str] = mapped_column(String(20), default="missing")
    # What the bank asked the partner for (the request's partner note); the bank's own reason
    # for asking stays on the timeline event's internal note.
    note: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="stipulations")


class Document(db.Model):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # pending -> accepted | rejected
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # review_reason: why it was rejected, as the partner reads it (what to send instead);
    # review_note: the officer's own finding, which stays inside the bank.
    review_reason: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    review_note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)

    referral: Mapped[Referral] = relationship(back_populates="documents")
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
