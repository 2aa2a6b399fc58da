"""The bank's clock: its time zone, its calendar day, and a typed local time as UTC.

One place, so that agreement dates, scoring periods, the audit filter and the forms agree on when
a day starts. zoneinfo, not pytz: `replace(tzinfo=pytz_zone)` gives local mean time (+08:06), which
stored a typed 10:00 as 09:54.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app


def bank_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def bank_today() -> date:
    """Today at the bank (agreement dates and periods are the bank's calendar days)."""
    return datetime.now(bank_zone()).date()


def bank_date(moment: datetime) -> date:
    """The bank's calendar day of a moment."""
    return moment.astimezone(bank_zone()).date()


def day_start(day: date) -> datetime:
    """Midnight at the start of a bank calendar day, as an aware UTC datetime."""
    return datetime.combine(day, time.min, tzinfo=bank_zone()).astimezone(UTC)


def typed_local(value: datetime | None) -> datetime | None:
    """A naive date-time typed into a form (the bank's wall clock) as an aware UTC datetime."""
    if value is None:
        return None
    return value.replace(tzinfo=bank_zone()).astimezone(UTC)
