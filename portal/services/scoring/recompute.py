"""Bringing the stored cards up to date: everything (every partner's twelve months and rolling
window, the portfolio rows, hysteresis replayed month by month, the tier states), or the stale
partners against the stored portfolio priors. Flushes; the caller commits."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text

from models import Organization, Referral, ScorecardSnapshot, utcnow

from ...bank_time import bank_date
from ...extensions import db
from . import snapshots, staleness
from .aggregation import aggregate, referral_totals, sla_by_org
from .cards import Priors, card, portfolio_card, portfolio_priors, priors_from_snapshot
from .figures import Figures
from .periods import Period, month_periods, rolling_period
from .settings import setting
from .tiers import TierStep, raw_tier, step_tier
from .weights import Weights, current_weights


@dataclass
class RecomputeResult:
    orgs: int
    snapshots: int
    seconds: float
    full: bool


def partner_org_ids() -> list[int]:
    return list(db.session.scalars(select(Organization.id).where(Organization.is_partner)
                                   .order_by(Organization.id)))


def recompute_all(now: datetime | None = None) -> RecomputeResult:
    """Every partner's cards for the last 12 months and the rolling 90 days, the portfolio rows,
    hysteresis replayed month by month, and the tier states. Flushes; the caller commits."""
    return _recompute(now or utcnow(), None)


def recompute_org(org_id: int, now: datetime | None = None) -> RecomputeResult:
    """One partner's cards, shrunk toward the stored portfolio priors (a full recompute when
    there are none yet)."""
    return _recompute(now or utcnow(), [org_id])


def recompute_stale(now: datetime | None = None) -> RecomputeResult | None:
    """Bring the stale organisations' cards up to date: one by one when few, else everything."""
    org_ids = staleness.stale_org_ids()
    if not org_ids:
        return None
    if len(org_ids) > setting("SCORING_INCREMENTAL_MAX_ORGS"):
        return recompute_all(now)
    return _recompute(now or utcnow(), org_ids)


def maintain(now: datetime | None = None) -> int:
    """For the worker's housekeeping: everything once the bank's day has turned since the last
    full computation (the rolling window and the months move), else the stale partners only.
    Flushes; the caller commits. Returns how many partners were recomputed."""
    now = now or utcnow()
    last = db.session.scalar(select(func.max(ScorecardSnapshot.computed_at)).where(
        ScorecardSnapshot.org_id.is_(None), ScorecardSnapshot.period_kind == "rolling90"))
    if last is None or bank_date(last) != bank_date(now):
        if last is None and not db.session.scalar(select(func.count(Referral.id))):
            return 0
        result = recompute_all(now)
    else:
        result = recompute_stale(now)
    return result.orgs if result else 0


# --- the steps ----------------------------------------------------------------------------------

def _recompute(now: datetime, org_ids: list[int] | None) -> RecomputeResult:
    with _big_sqlite_cache(org_ids is None):
        return _recompute_in(now, org_ids)


@contextmanager
def _big_sqlite_cache(wanted: bool):
    """On SQLite, a full recompute reads the referral table a dozen times: give this connection
    a large page cache for the duration, then put it back. (Sorting in memory is set for every
    connection: temp_store cannot change inside a transaction.)"""
    if not wanted or db.session.get_bind().dialect.name != "sqlite":
        yield
        return
    cache = db.session.execute(text("PRAGMA cache_size")).scalar()
    db.session.execute(text(f"PRAGMA cache_size={-int(setting('SCORING_SQLITE_CACHE_KIB'))}"))
    try:
        yield
    finally:
        db.session.execute(text(f"PRAGMA cache_size={int(cache)}"))


def _recompute_in(now: datetime, org_ids: list[int] | None) -> RecomputeResult:
    started = time.perf_counter()
    months, rolling = month_periods(now), rolling_period(now)
    periods = months + [rolling]
    weights = current_weights()
    stored = {} if org_ids is None else _stored_priors()
    # Without stored priors for every period, one partner cannot be shrunk: redo everything.
    full = org_ids is None or any((p.kind, p.key) not in stored for p in periods)
    targets = partner_org_ids() if full else list(org_ids)
    seen_marks = staleness.marks_for(None if full else targets)
    sla = sla_by_org()
    default_sla = float(setting("SCORING_SLA_HOURS"))
    figures = _figures(months, rolling, None if full else targets)
    computed_at = utcnow()
    rows: list[dict] = []
    if full:
        priors = _portfolio(periods, figures, computed_at, weights, rows)
    else:
        priors = {p.key: stored[(p.kind, p.key)] for p in periods}
    base = snapshots.base_states(targets, months[0].key)
    states = []
    for org in targets:
        state = _org_cards(org, months, rolling, figures, priors, weights,
                           sla.get(org, default_sla), base.get(org), computed_at, rows)
        states.append(state)
    totals = referral_totals(None if full else targets)
    for r in rows:
        if r["org_id"] is not None and r["period_kind"] == rolling.kind:
            r["extra"] = {**(r["extra"] or {}), "referrals": totals.get(r["org_id"], 0)}
    snapshots.replace(rows, None if full else targets, [p.key for p in periods])
    snapshots.store_month_tiers([p.key for p in months])
    snapshots.store_states(states, computed_at)
    staleness.clear(seen_marks)
    db.session.flush()
    return RecomputeResult(len(targets), len(rows), time.perf_counter() - started, full)


def _stored_priors() -> dict[tuple[str, str], Priors]:
    return {(snap.period_kind, snap.period_key): priors_from_snapshot(snap.kpis)
            for snap in snapshots.portfolio_snapshots()}


def _figures(months: list[Period], rolling: Period, org_ids: list[int] | None
             ) -> dict[tuple[int, str], Figures]:
    """The figures of both families of periods: in one pass over everyone, or per partner."""
    figures: dict = {}
    for org in org_ids if org_ids is not None else [None]:
        for family in (months, [rolling]):
            figures.update(aggregate(family, org))
    return figures


def _portfolio(periods: list[Period], figures: dict, computed_at: datetime, weights: Weights,
               rows: list[dict]) -> dict[str, Priors]:
    """Each period's portfolio priors from every partner's figures; its row goes into `rows`."""
    priors = {}
    for period in periods:
        per_org = {o: f for (o, p), f in figures.items() if p == period.key}
        priors[period.key] = portfolio_priors(per_org)
        pcard = portfolio_card(priors[period.key], list(per_org.values()))
        rows.append(snapshots.row(None, period, computed_at, pcard, weights.version))
    return priors


def _tiered_card(figures: Figures | None, priors: Priors, weights: Weights, sla_hours: float,
                 state: TierStep | None) -> tuple[dict, TierStep]:
    """One period's card with its raw tier and the tier after one step of hysteresis."""
    c = card(figures or Figures(), priors, weights)
    c["extra"]["sla_hours"] = sla_hours
    raw = raw_tier(c["composite"] or 0.0, c["sample_size"], weights.thresholds)
    state = step_tier(state, raw)
    c.update(raw_tier=raw, tier=state[0], pending_down=state[1])
    return c, state


def _org_cards(org: int, months: list[Period], rolling: Period, figures: dict,
               priors: dict[str, Priors], weights: Weights, sla_hours: float,
               state: TierStep | None, computed_at: datetime, rows: list[dict]) -> tuple:
    """One partner's monthly cards, hysteresis replayed over them, then the rolling card
    stepped from the last closed month; the rows go into `rows`. Returns its tier state."""
    last_closed = state
    for period in months:
        c, state = _tiered_card(figures.get((org, period.key)), priors[period.key], weights,
                                sla_hours, state)
        rows.append(snapshots.row(org, period, computed_at, c, weights.version))
        if period is not months[-1]:
            last_closed = state
    c, current = _tiered_card(figures.get((org, rolling.key)), priors[rolling.key], weights,
                              sla_hours, last_closed)
    rows.append(snapshots.row(org, rolling, computed_at, c, weights.version))
    return org, current, c["composite"], months[-2].key if len(months) > 1 else None
