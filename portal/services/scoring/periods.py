"""The periods a scorecard covers: calendar months in the bank's time zone and the rolling
window ending now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ...bank_time import bank_date, day_start
from .settings import setting


@dataclass(frozen=True)
class Period:
    kind: str  # month | rolling90
    key: str  # 'YYYY-MM' | 'current'
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    start_date: date  # the bank's local dates, for loan statements
    end_date: date  # exclusive


def month_periods(now: datetime, months: int | None = None) -> list[Period]:
    """The last `months` calendar months in the bank's time zone, oldest first, the current
    (partial) month last."""
    months = months or setting("SCORING_MONTHS")
    local = bank_date(now)
    first = date(local.year, local.month, 1)
    out = []
    for back in range(months - 1, -1, -1):
        y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
        start = date(y, m + 1, 1)
        ny, nm = divmod(y * 12 + m + 1, 12)
        end = date(ny, nm + 1, 1)
        out.append(Period("month", f"{start:%Y-%m}", day_start(start), day_start(end), start,
                          end))
    return out


def rolling_period(now: datetime) -> Period:
    days = setting("SCORING_ROLLING_DAYS")
    local = bank_date(now)
    return Period("rolling90", "current", now - timedelta(days=days), now,
                  local - timedelta(days=days - 1), local + timedelta(days=1))


def previous_month_key(key: str) -> str:
    y, m = int(key[:4]), int(key[5:7])
    y, m = divmod(y * 12 + m - 2, 12)
    return f"{y:04d}-{m + 1:02d}"
