"""What the SQL aggregation hands the cards: per organisation and period, typed figures."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class Rate:
    """A rate KPI's counts: x of n referrals (or loans) meet its condition."""

    x: float = 0.0
    n: float = 0.0


@dataclass
class Hours:
    """An hours KPI: n referrals measured, `value` the hours at the KPI's quantile."""

    n: float = 0.0
    value: float | None = None


@dataclass
class Extras:
    """Sums the pages explain a card with (not scored): the buyers' class mix, the amount asked
    for, and the seconds of decided referrals spent waiting on the bank and on the partner."""

    class_1: float = 0.0
    class_2: float = 0.0
    class_3: float = 0.0
    requested_amount: float = 0.0
    bank_seconds: float = 0.0
    partner_seconds: float = 0.0

    def add(self, other: Extras) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Figures:
    """One organisation's figures for one period, by KPI name and kind."""

    rates: dict[str, Rate] = field(default_factory=dict)
    hours: dict[str, Hours] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)  # count and amount KPIs
    extras: Extras = field(default_factory=Extras)

    def rate(self, name: str) -> Rate:
        return self.rates.get(name) or Rate()

    def hours_of(self, name: str) -> Hours:
        return self.hours.get(name) or Hours()

    def total(self, name: str) -> float:
        return self.totals.get(name, 0.0)

    @property
    def sample_size(self) -> int:
        return int(self.total("referrals"))
