"""What a partner may read of its own card.

Credit performance on a handful of loans is not a rate but a fact about identifiable buyers: "early
payment default 100%, n = 1" tells a dealer that one buyer defaulted. So on the partner's own card
(page and API) those KPIs show no value, observed rate, interval, count of bad loans or points
until SCORING_PARTNER_MIN_LOANS loans stand behind them; bank roles always see every figure.

Hiding the figures is not enough while they still move what the partner does see: the composite
less the points the partner can read would be the withheld KPIs' points, and a tier that falls
when one buyer defaults says so too. So such KPIs take no part in the composite, for anyone
(cards.py leaves them out when the card is computed), and the tier follows the composite. If the
minimum was raised after the cards were computed, a stored composite may still carry points of a
KPI the partner may no longer read: until the next recompute the partner then sees neither the
composite nor the tier (`shown_to_partner`).
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.i18n import lazy_gettext as _l

from .kpis import KPI, KPIS
from .settings import setting

WITHHELD_KEYS = ("value", "raw", "x", "interval", "score", "contribution")


def withheld(kpi: KPI, entry: dict) -> bool:
    """Whether this KPI rests on too few loans for the partner to read it (and so for it to
    count in the composite)."""
    return kpi.credit_performance and (entry.get("n") or 0) < setting("SCORING_PARTNER_MIN_LOANS")


def withheld_note():
    return _l("Not enough loans yet: shown from %(n)d loans.",
              n=setting("SCORING_PARTNER_MIN_LOANS"))


def for_partner(kpi: KPI, entry: dict) -> dict:
    """The entry as the partner may read it: the withheld figures set to None."""
    if not withheld(kpi, entry):
        return entry
    return {**entry, **dict.fromkeys(WITHHELD_KEYS), "withheld": True}


@dataclass(frozen=True)
class Headline:
    composite: float | None
    tier: str | None
    # True when the stored card still counts a KPI the partner may not read (see above).
    held_back: bool = False


def shown_to_partner(snapshot) -> Headline:
    """The composite and tier of a stored card as its partner may read them."""
    kpis = snapshot.kpis or {}
    counted = [kpi for kpi in KPIS
               if (kpis.get(kpi.name) or {}).get("max_points") and withheld(kpi, kpis[kpi.name])]
    if counted:
        return Headline(None, None, held_back=True)
    return Headline(snapshot.composite, snapshot.tier)
