"""The follow-up pool (待跟进) of buyers worth another approach, and the contact log with each
partner (定期沟通制度) with its cadence per tier."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, UTCDateTime, utcnow
from .org import Organization
from .referral import Referral
from .user import User


class FollowUp(db.Model):
    """A declined or stalled buyer kept for another, service-first approach. One per referral."""

    __tablename__ = "follow_up"
    __table_args__ = (Index("ix_follow_up_status_next", "status", "next_action_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), unique=True
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    # declined | withdrawn | expired | stalled | other
    reason: Mapped[str] = mapped_column(String(20))
    # open -> in_progress -> closed
    status: Mapped[str] = mapped_column(String(20), default="open")
    # converted | not_interested | unreachable | other (when closed)
    outcome: Mapped[str | None] = mapped_column(String(20))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    referral: Mapped[Referral] = relationship()
    org: Mapped[Organization] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    notes: Mapped[list[FollowUpNote]] = relationship(
        back_populates="follow_up", order_by="FollowUpNote.id", cascade="all, delete-orphan"
    )


class FollowUpNote(db.Model):
    """One follow-up contact with the buyer (or a hand-over), in the pool entry's record."""

    __tablename__ = "follow_up_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(
        ForeignKey("follow_up.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # call | visit | message | note
    kind: Mapped[str] = mapped_column(String(20), default="note")
    body: Mapped[str] = mapped_column(Text, info=INTERNAL_TEXT)

    follow_up: Mapped[FollowUp] = relationship(back_populates="notes")
    user: Mapped[User | None] = relationship()


class ContactLog(db.Model):
    """A visit, call or meeting of bank staff with a partner."""

    __tablename__ = "contact_log"
    __table_args__ = (Index("ix_contact_log_org_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # visit | call | meeting
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    summary: Mapped[str] = mapped_column(Text, info=INTERNAL_TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    org: Mapped[Organization] = relationship()
    user: Mapped[User | None] = relationship()


class ContactCadence(db.Model):
    """How often a partner of each tier should be contacted (days between contacts)."""

    __tablename__ = "contact_cadence"

    tier: Mapped[str] = mapped_column(String(12), primary_key=True)
    days: Mapped[int]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
