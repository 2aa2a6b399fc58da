"""What a partner may read of its own card.

Credit performance on a handful of loans is not a rate but a fact about identifiable buyers: "early
payment default 100%, n = 1" tells a dealer that one buyer defaulted. So on the partner's own card
those KPIs show no value, interval, count of bad loans or points until SCORING_PARTNER_MIN_LOANS
loans stand behind them; bank roles always see everything.
"""

from __future__ import annotations

from .kpis import KPI
from .settings import setting

WITHHELD_KEYS = ("value", "raw", "x", "interval", "score", "contribution")


def withheld(kpi: KPI, entry: dict) -> bool:
    """Whether this KPI's figures are kept from the partner on this card."""
    return kpi.credit_performance and (entry.get("n") or 0) < setting("SCORING_PARTNER_MIN_LOANS")


def for_partner(kpi: KPI, entry: dict) -> dict:
    """The entry as the partner may read it: the withheld figures set to None."""
    if not withheld(kpi, entry):
        return entry
    return {**entry, **dict.fromkeys(WITHHELD_KEYS), "withheld": True}
