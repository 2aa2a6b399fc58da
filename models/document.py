from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, false
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
    # An item not on the document list, in the officer's words (kind "other"): what the
    # partner is asked to provide.
    label: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    # True once the bank has asked the partner for this item. The product's checklist is
    # written at intake with False: those lines tell the officer what the product usually
    # needs, and only what the officer picks is asked of the partner.
    requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    # missing -> uploaded -> accepted | rejected (-> uploaded again)
    status: Mapped[str] = mapped_column(String(20), default="missing")
    # What the bank asked the partner for (the request's partner note); the bank's own reason
    # for asking stays on the timeline event's internal note.
    note: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="stipulations")
    documents: Mapped[list[Document]] = relationship(
        back_populates="stipulation", order_by="Document.id")


class Document(db.Model):
    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    # The item this file answers (several files may answer one item).
    stipulation_id: Mapped[int | None] = mapped_column(
        ForeignKey("stipulation.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # pending -> accepted | rejected; pending -> superseded (the partner replaced it, or the
    # officer reviewed a newer file of the item) | not_reviewed (the referral closed first)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # review_reason: why it was rejected, as the partner reads it (what to send instead);
    # review_note: the officer's own finding, which stays inside the bank.
    review_reason: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    review_note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)

    referral: Mapped[Referral] = relationship(back_populates="documents")
    stipulation: Mapped[Stipulation | None] = relationship(back_populates="documents")
    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
