"""The bank's calendar: agreement dates are the bank's calendar days, not UTC's."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")


def local_today() -> date:
    """Today at the bank."""
    return datetime.now(_zone()).date()


def bank_date(moment: datetime) -> date:
    """The bank's calendar day of a moment (backdated demo data and imports)."""
    return moment.astimezone(_zone()).date()


def day_start(day: date) -> datetime:
    """Midnight at the bank at the start of `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=_zone())
