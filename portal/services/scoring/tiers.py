"""Tiers from the composite, capped by sample size, with hysteresis over calendar months: up at
once, down only after two consecutive periods below. Pure functions."""

from __future__ import annotations

TIERS = ("exit", "watch", "core", "strategic")  # lowest first
TIER_RANK = {t: i for i, t in enumerate(TIERS)}
DEFAULT_THRESHOLDS = {
    "strategic": 70.0,  # composite at or above: strategic ...
    "core": 55.0,
    "watch": 40.0,  # ... below this: exit
    "strategic_min_sample": 30,  # referrals in the period needed for strategic
    "core_min_sample": 5,  # ... and for core; fewer: watch at best
}
DOWN_AFTER = 2  # consecutive periods below the current tier before it drops

# (tier in force, periods below it so far, last period's raw tier)
TierStep = tuple[str, int, str]


def raw_tier(composite: float, sample_size: int, thresholds: dict) -> str:
    """The tier the composite gives, capped when the period's sample is small."""
    if composite >= thresholds["strategic"] and sample_size >= thresholds["strategic_min_sample"]:
        return "strategic"
    if composite >= thresholds["core"] and sample_size >= thresholds["core_min_sample"]:
        return "core"
    if composite >= thresholds["watch"] or sample_size < thresholds["core_min_sample"]:
        return "watch"
    return "exit"


def step_tier(state: TierStep | None, raw: str) -> TierStep:
    """One period of hysteresis. state: (tier, periods below so far, last period's raw tier);
    up (or level) at once, down only after DOWN_AFTER consecutive periods below, and then to the
    better of those periods' tiers."""
    if state is None:
        return raw, 0, raw
    tier, below, last_raw = state
    if TIER_RANK[raw] >= TIER_RANK[tier]:
        return raw, 0, raw
    below += 1
    if below >= DOWN_AFTER:
        # the better of the two periods below: the tier both of them support
        better = raw if TIER_RANK[raw] >= TIER_RANK[last_raw] else last_raw
        return better, 0, raw
    return tier, below, raw
