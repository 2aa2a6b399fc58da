"""The agreements' share of the worker's scheduled housekeeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from models import utcnow

from ...bank_time import bank_date
from . import pdf
from .expiry import send_expiry_notices
from .lifecycle import roll_statuses


def maintain(now: datetime | None = None) -> dict[str, int]:
    """Statuses follow the calendar (the only place besides `flask agreements roll` that rolls
    them: pages only read), partners hear of agreements about to end, and PDFs unused for
    PDF_CACHE_DAYS leave the disk cache."""
    now = now or utcnow()
    rolled = roll_statuses(today=bank_date(now))
    unused = timedelta(days=current_app.config["PDF_CACHE_DAYS"])
    return {"agreements_activated": rolled["activated"],
            "agreements_expired": rolled["expired"],
            "expiring_notices": send_expiry_notices(now.date()),
            "pdf_cache_pruned": pdf.prune_cache(now - unused)}
