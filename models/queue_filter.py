"""An officer's saved sets of work-queue filters, each under a name of their own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

from .base import INTERNAL_TEXT, UTCDateTime, utcnow


class SavedQueueFilter(db.Model):
    __tablename__ = "saved_queue_filter"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_queue_filter_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60), info=INTERNAL_TEXT)
    # The queue's query-string parameters, only those the queue knows, checked when saved.
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
