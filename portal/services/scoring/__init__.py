"""Partner scorecards: every KPI defined once, aggregated in SQL, shrunk, weighted and tiered.

docs/scoring.md explains the same in words. Where each part lives:

- `kpis`: the KPI registry (SQL in `expressions`); `periods`: months and the rolling window;
- `aggregation`: one GROUP BY query per source for a family of periods, returning `figures`;
- `beta`, `cards`, `tiers`: pure functions from figures to a card, a composite and a tier;
- `weights`: the admin-set weights and thresholds; `recompute`: the steps that store the cards;
- `staleness`: marks of changed partners (the only part intake imports); `snapshots`: the stored
  cards; `views`: what the scorecard pages show. Tier names and colours: portal/labels.py.

The public names are re-exported here: `scoring.recompute_all()`, `from portal.services.scoring
import KPIS`.
"""

from __future__ import annotations

from ...labels import TIER_BADGES, TIER_COLOURS, TIER_LABELS
from .aggregation import aggregate, sla_by_org
from .beta import beta_ppf, betainc, posterior
from .cards import Priors, card, portfolio_card, portfolio_priors, priors_from_snapshot
from .disclosure import shown_to_partner
from .figures import Extras, Figures, Hours, Rate
from .kpis import CONTRACT_KPIS, DEFAULT_WEIGHTS, KPI, KPI_BY_NAME, KPIS
from .periods import Period, month_periods, previous_month_key, rolling_period
from .recompute import (
    RecomputeResult,
    maintain,
    partner_org_ids,
    recompute_all,
    recompute_org,
    recompute_stale,
)
from .settings import setting
from .snapshots import (
    card_json,
    card_with_months,
    current_card,
    monthly_cards,
    portfolio_snapshot,
)
from .staleness import mark_stale, stale_org_ids
from .tiers import DEFAULT_THRESHOLDS, DOWN_AFTER, TIER_RANK, TIERS, raw_tier, step_tier
from .weights import Weights, WeightsInput, current_weights, parse_weights, save_weights

__all__ = [
    "CONTRACT_KPIS", "DEFAULT_THRESHOLDS", "DEFAULT_WEIGHTS", "DOWN_AFTER", "KPI", "KPIS",
    "KPI_BY_NAME", "TIERS", "TIER_BADGES", "TIER_COLOURS", "TIER_LABELS", "TIER_RANK", "Extras",
    "Figures", "Hours", "Period", "Priors", "Rate", "RecomputeResult", "Weights", "WeightsInput",
    "aggregate", "beta_ppf", "betainc", "card", "card_json", "card_with_months", "current_card",
    "current_weights", "maintain", "mark_stale", "month_periods", "monthly_cards",
    "parse_weights", "partner_org_ids", "portfolio_card", "portfolio_priors",
    "portfolio_snapshot", "posterior", "previous_month_key", "priors_from_snapshot",
    "raw_tier", "recompute_all", "recompute_org", "recompute_stale", "rolling_period",
    "save_weights", "setting", "shown_to_partner", "sla_by_org", "stale_org_ids", "step_tier",
]
