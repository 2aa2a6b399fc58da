"""What the scorecard pages show, read from the stored snapshots only (no KPI is computed on a
page): the cockpit ranking and trend, a partner's card explained, chart specifications."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import JSON, case, false, func, literal, select

from models import Branch, Organization, ScorecardSnapshot, ScoreChange, TierState, User
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_date, bank_today
from ...extensions import db
from ...labels import TIER_COLOURS, TIER_LABELS
from .. import branches
from .disclosure import for_partner, shown_to_partner, withheld
from .kpis import KPI_BY_NAME, KPIS
from .settings import setting
from .tiers import TIER_RANK, TIERS

S = ScorecardSnapshot
# The KPIs the ranking table shows as columns (all are on the detail page).
COCKPIT_KPIS = ("approval_rate", "pull_through", "document_first_pass", "class1_share",
                "class3_share", "delinquency_rate", "npl_rate", "partner_response_hours",
                "bank_turnaround_hours", "disbursed_amount")


@dataclass
class CockpitFilters:
    kind: str | None = None
    branch: str | None = None
    manager_id: int | None = None
    tier: str | None = None
    q: str | None = None
    sort: str = "composite"
    desc: bool = True
    # Who is looking: the cockpit shows the partners of their branch's subtree only.
    viewer: User | None = None

    def chosen(self) -> tuple:
        """The choices made, without the viewer: with the viewer's scope, what a kept page
        is found by (kept.py)."""
        return (self.kind, self.branch, self.manager_id, self.tier, self.q, self.sort, self.desc)


def _org_filters(query, f: CockpitFilters):
    query = query.where(Organization.is_partner, branches.in_scope(f.viewer, Organization.id))
    if f.kind:
        query = query.where(Organization.kind == f.kind)
    if f.branch:
        chosen = branches.visible_branch(f.viewer, f.branch)
        query = query.where(branches.in_branch(chosen, Organization.id) if chosen is not None
                            else false())
    if f.manager_id:
        query = query.where(Organization.channel_manager_id == f.manager_id)
    if f.q:
        like = f"%{f.q.strip()}%"
        query = query.where(Organization.name.ilike(like) | Organization.code.ilike(like))
    return query


def _cockpit_query(f: CockpitFilters, *, with_tier: bool = True):
    query = _org_filters(
        select(Organization.id, Organization.code, Organization.name, Organization.kind,
               Branch.name.label("branch"), Organization.status, S.composite, S.tier, S.raw_tier,
               S.pending_down, S.sample_size)
        .join(S, (S.org_id == Organization.id) & (S.period_kind == "rolling90")
              & (S.period_key == "current"))
        .outerjoin(Branch, Branch.id == Organization.branch_id), f)
    if with_tier and f.tier:
        query = query.where(S.tier == f.tier)
    return query


def _order(f: CockpitFilters):
    if f.sort == "name":
        key = func.lower(Organization.name)
    elif f.sort == "tier":
        key = case(*[(S.tier == t, TIER_RANK[t]) for t in TIERS], else_=-1)
    elif f.sort == "sample_size":
        key = S.sample_size
    elif f.sort in COCKPIT_KPIS:
        # The shrunk value, read inside the database (JSON path: SQLite and PostgreSQL alike).
        key = S.kpis[(f.sort, "value")].as_float()
    else:
        key = S.composite
    first = key.desc() if f.desc else key.asc()
    return [first.nulls_last(), S.composite.desc().nulls_last(), Organization.code]


def cockpit_page(f: CockpitFilters, page: int, per_page: int, total: int | None = None
                 ) -> tuple[list[dict], int]:
    """One page of the matching partners' current cards (rolling 90 days), sorted in SQL; only
    the rows shown are decoded. `total`: how many match, when the caller counted them."""
    query = _cockpit_query(f)
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    # The page's cards first, then their figures: sorting every partner's row with ten JSON
    # extracts each to keep fifty was most of the statement (issue 15).
    ids = list(db.session.scalars(query.with_only_columns(S.id).order_by(*_order(f))
                                  .limit(per_page).offset((page - 1) * per_page)))
    if not ids:
        return [], total
    # Each card's KPIs decoded once, not its ten columns' figures one by one.
    found = {r["snapshot_id"]: r for r in db.session.execute(
        _cockpit_query(CockpitFilters(viewer=f.viewer)).where(S.id.in_(ids))
        .add_columns(S.id.label("snapshot_id"), S.extra[("referrals", )].label("referrals"),
                     S.kpis.label("card_kpis"))
    ).mappings()}
    out = []
    for r in (found[i] for i in ids if i in found):
        row = {k: v for k, v in r.items() if k not in ("snapshot_id", "card_kpis")}
        kpis = r["card_kpis"] or {}
        row["kpis"] = {name: kpis.get(name) or {} for name in COCKPIT_KPIS}
        out.append(row)
    return out, total


SORTS = ("composite", "name", "tier", "sample_size", *COCKPIT_KPIS)


def tier_counts(f: CockpitFilters) -> dict:
    """Partners per current tier under the filters (all tiers, whichever one is chosen)."""
    counts = {t: 0 for t in reversed(TIERS)}
    sub = _cockpit_query(f, with_tier=False).subquery()
    for tier, n in db.session.execute(select(sub.c.tier, func.count()).group_by(sub.c.tier)):
        if tier in counts:
            counts[tier] = n
    return counts


def filter_choices(viewer: User | None = None) -> dict:
    """The cockpit's branch and manager choices, within the viewer's subtree."""
    managers = list(db.session.execute(
        select(User.id, User.name).where(User.role == "channel_manager", User.active,
                                         branches.staff_in_scope(viewer))
        .order_by(User.name)))
    return {"branches": branches.choices(viewer), "managers": managers}


def branch_rollup(f: CockpitFilters) -> list[dict]:
    """The partners the filters select, rolled up to the branches directly under the one
    chosen (else under the viewer's own, or the province): partners per tier and their
    average composite, best first."""
    anchor = (branches.visible_branch(f.viewer, f.branch) if f.branch
              else branches.scope_branch(f.viewer))
    sub = _cockpit_query(f).add_columns(
        branches.rollup_key(anchor).label("unit")).subquery()
    return _rollup(db.session.execute(
        select(sub.c.unit, sub.c.tier, func.count(), func.avg(sub.c.composite))
        .group_by(sub.c.unit, sub.c.tier)).all())


def cockpit_summary(f: CockpitFilters) -> tuple[int, dict, list[dict]]:
    """How many partners match, the tier counts and the branch roll-up, from one grouped
    statement (three over the same join cost the cockpit three scans)."""
    anchor = (branches.visible_branch(f.viewer, f.branch) if f.branch
              else branches.scope_branch(f.viewer))
    sub = _cockpit_query(f, with_tier=False).add_columns(
        branches.rollup_key(anchor).label("unit")).subquery()
    groups = db.session.execute(
        select(sub.c.unit, sub.c.tier, func.count(), func.avg(sub.c.composite))
        .group_by(sub.c.unit, sub.c.tier)).all()
    counts = {t: 0 for t in reversed(TIERS)}
    for _unit, tier, n, _avg in groups:
        if tier in counts:
            counts[tier] += n
    chosen = [g for g in groups if not f.tier or g[1] == f.tier]
    return sum(g[2] for g in chosen), counts, _rollup(chosen)


def _rollup(rows) -> list[dict]:
    names = branches.names()
    out: dict = {}
    for unit, tier, n, avg in rows:
        row = out.setdefault(unit, {"code": unit, "name": names.get(unit, unit), "partners": 0,
                                    "tiers": {t: 0 for t in reversed(TIERS)}, "_sum": 0.0,
                                    "_n": 0})
        row["partners"] += n
        if tier in row["tiers"]:
            row["tiers"][tier] += n
        if avg is not None:
            row["_sum"] += float(avg) * n
            row["_n"] += n
    for row in out.values():
        row["composite"] = round(row.pop("_sum") / row["_n"], 1) if row["_n"] else None
        row.pop("_n")
    return sorted(out.values(), key=lambda r: (r["composite"] is None, -(r["composite"] or 0),
                                               r["code"]))


def stale_count() -> int:
    return db.session.scalar(select(func.count(func.distinct(ScoreChange.org_id)))) or 0


def last_computed():
    return db.session.scalar(select(func.max(S.computed_at)).where(S.org_id.is_(None)))


# --- charts (Chart.js configurations; every label translated here) ----------------------------

def _selected_org_ids(f: CockpitFilters) -> set[int]:
    query = _org_filters(select(Organization.id), f)
    if f.tier:
        query = query.where(Organization.id.in_(
            select(TierState.org_id).where(TierState.tier == f.tier)))
    return set(db.session.scalars(query))


def portfolio_months(f: CockpitFilters | None = None) -> list:
    """The portfolio's monthly rows as the cockpit's charts read them: the month, its KPIs and,
    when the filters select a whole branch subtree, that subtree's tier totals (None when the
    row was stored before they were kept); not the partners' entries (twelve months of five
    hundred partners, decoded, were a fifth of the cockpit; issue 15)."""
    unit = _subtree(f) if f is not None else None
    totals = (S.extra[("tier_totals", unit)] if unit else literal(None, JSON)).label("totals")
    kept = (S.extra[("tier_totals", "all")] if unit else literal(None, JSON)).label("kept")
    return list(reversed(db.session.execute(
        select(S.period_key, S.kpis, totals, kept)
        .where(S.org_id.is_(None), S.period_kind == "month")
        .order_by(S.period_key.desc()).limit(setting("SCORING_MONTHS"))).all()))


def _subtree(f: CockpitFilters) -> str | None:
    """The key of the stored tier totals that are the filters' selection ("all", or a branch
    id), when the filters select a whole branch subtree and nothing narrower."""
    if f.kind or f.manager_id or f.tier or f.q:
        return None
    if f.branch:
        chosen = branches.visible_branch(f.viewer, f.branch)
        if chosen is None:
            return None  # a branch outside the viewer's subtree selects nobody
    else:
        chosen = branches.scope_branch(f.viewer)
    return "all" if chosen is None or chosen.parent_id is None else str(chosen.id)


def _trend_from_totals(months: list) -> tuple[dict, dict, dict]:
    counts: dict = defaultdict(dict)
    composite_sum: dict = defaultdict(float)
    composite_n: dict = defaultdict(int)
    for month in months:
        for tier, (n, total, scored) in (month.totals or {}).items():
            counts[month.period_key][tier] = n
            composite_sum[month.period_key] += total
            composite_n[month.period_key] += scored
    return counts, composite_sum, composite_n


def _trend_from_cards(f: CockpitFilters) -> tuple[dict, dict, dict] | None:
    """The trend's sums from the partners' entries in the portfolio's monthly rows
    (snapshots.store_month_tiers); None when a row was stored before they were kept."""
    rows = db.session.execute(
        select(S.period_key, S.extra[("tiers", )]).where(S.org_id.is_(None),
                                                          S.period_kind == "month")
        .order_by(S.period_key.desc()).limit(setting("SCORING_MONTHS"))).all()
    if not rows or any(tiers is None for _key, tiers in rows):
        return None
    ids = {str(i) for i in _selected_org_ids(f)}
    counts: dict = defaultdict(dict)
    composite_sum: dict = defaultdict(float)
    composite_n: dict = defaultdict(int)
    for key, tiers in rows:
        month = counts[key]
        for org, (tier, composite) in tiers.items():
            if org in ids:
                month[tier] = month.get(tier, 0) + 1
                if composite is not None:
                    composite_sum[key] += composite
                    composite_n[key] += 1
        if not month:
            del counts[key]
    return counts, composite_sum, composite_n


def _trend_from_partner_cards(f: CockpitFilters) -> tuple[dict, dict, dict]:
    """The same sums from every selected partner's monthly cards (snapshots stored before the
    portfolio rows carried them)."""
    query = _org_filters(
        select(S.period_key, S.tier, func.count(), func.avg(S.composite))
        .join(Organization, Organization.id == S.org_id)
        .where(S.period_kind == "month"), f)
    if f.tier:
        current = select(TierState.org_id).where(TierState.tier == f.tier)
        query = query.where(S.org_id.in_(current))
    query = query.group_by(S.period_key, S.tier)
    counts: dict = defaultdict(dict)
    composite_sum: dict = defaultdict(float)
    composite_n: dict = defaultdict(int)
    for key, tier, n, avg in db.session.execute(query):
        counts[key][tier] = n
        if avg is not None:
            composite_sum[key] += float(avg) * n
            composite_n[key] += n
    return counts, composite_sum, composite_n


def cockpit_trend(f: CockpitFilters, portfolio: list | None = None) -> dict | None:
    """Partners per tier per month (stacked bars) and their average composite (line), for the
    partners the filters select. `portfolio`: portfolio_months(f), when the caller has it."""
    months = portfolio_months(f) if portfolio is None else portfolio
    if months and _subtree(f) and all(m.kept is not None for m in months):
        counts, composite_sum, composite_n = _trend_from_totals(months)
    else:
        counts, composite_sum, composite_n = (
            _trend_from_cards(f) or _trend_from_partner_cards(f))
    keys = sorted(counts)[-setting("SCORING_MONTHS"):]
    if not keys:
        return None
    datasets = [{"type": "bar", "label": str(TIER_LABELS[t]), "stack": "tiers",
                 "backgroundColor": TIER_COLOURS[t], "yAxisID": "y",
                 "data": [counts[k].get(t, 0) for k in keys]} for t in reversed(TIERS)]
    datasets.append({"type": "line", "label": str(_l("Average composite")), "yAxisID": "y1",
                     "borderColor": "#212529", "backgroundColor": "#212529", "tension": 0.2,
                     "data": [round(composite_sum[k] / composite_n[k], 1) if composite_n[k]
                              else None for k in keys]})
    return {"type": "bar", "data": {"labels": keys, "datasets": datasets},
            "options": {"responsive": True, "maintainAspectRatio": False,
                        "interaction": {"mode": "index", "intersect": False},
                        "scales": {"x": {"stacked": True},
                                   "y": {"stacked": True, "beginAtZero": True,
                                         "title": {"display": True,
                                                   "text": str(_l("Partners"))}},
                                   "y1": {"position": "right", "min": 0, "max": 100,
                                          "grid": {"drawOnChartArea": False},
                                          "title": {"display": True,
                                                    "text": str(_l("Composite"))}}}}}


def _pct(v):
    return None if v is None else round(100 * v, 1)


def portfolio_trend(portfolio: list | None = None) -> dict | None:
    """The portfolio's approval, pull-through, class-1 share, delinquency and NPL by month."""
    cards = portfolio_months() if portfolio is None else portfolio
    if not cards:
        return None
    keys = [c.period_key for c in cards]
    lines = [("approval_rate", "#198754"), ("pull_through", "#0d6efd"),
             ("class1_share", "#6f42c1"), ("delinquency_rate", "#dc3545"),
             ("npl_rate", "#6c757d")]
    datasets = [{"label": str(KPI_BY_NAME[name].label), "borderColor": colour,
                 "backgroundColor": colour, "tension": 0.2, "spanGaps": False,
                 "data": [_pct((c.kpis.get(name) or {}).get("value")) for c in cards]}
                for name, colour in lines]
    return {"type": "line", "data": {"labels": keys, "datasets": datasets},
            "options": {"responsive": True, "maintainAspectRatio": False,
                        "scales": {"y": {"beginAtZero": True,
                                         "title": {"display": True, "text": "%"}}}}}


def has_data(card) -> bool:
    """Whether anything was counted in a card's period: a month without data is a gap on the
    charts and carries no tier, not a row of zeros."""
    return bool(card.sample_size) or any((e or {}).get("n") for e in (card.kpis or {}).values())


def _month_range(first: str, last: str) -> list[str]:
    keys, key = [], first
    while key <= last:
        keys.append(key)
        y, m = int(key[:4]), int(key[5:7])
        key = f"{y + m // 12:04d}-{m % 12 + 1:02d}"
    return keys


def org_trend(cards: list, *, partner_view: bool = False) -> dict | None:
    """A partner's months: composite, approval rate and turnaround, with gaps for months without
    data. The partner's own view plots each month's composite as the partner may read it
    (disclosure.py)."""
    if not cards:
        return None
    by_key = {c.period_key: c for c in cards if has_data(c)}
    keys = _month_range(cards[0].period_key, cards[-1].period_key)

    def series(read):
        return [read(by_key[k]) if k in by_key else None for k in keys]

    def kpi(name, field):
        return lambda c: (c.kpis.get(name) or {}).get(field)

    return {"type": "line", "data": {"labels": keys, "datasets": [
        {"label": str(_l("Composite")), "yAxisID": "y", "borderColor": "#212529",
         "backgroundColor": "#212529", "tension": 0.2, "spanGaps": False,
         "data": series(lambda c: shown_to_partner(c).composite if partner_view
                        else c.composite)},
        {"label": str(KPI_BY_NAME["approval_rate"].label), "yAxisID": "y",
         "borderColor": "#198754", "backgroundColor": "#198754", "tension": 0.2,
         "spanGaps": False, "data": [_pct(v) for v in series(kpi("approval_rate", "raw"))]},
        {"label": str(KPI_BY_NAME["bank_turnaround_hours"].label), "yAxisID": "y1",
         "borderColor": "#fd7e14", "backgroundColor": "#fd7e14", "tension": 0.2,
         "spanGaps": False,
         "data": [_round(v) for v in series(kpi("bank_turnaround_hours", "raw"))]},
        {"label": str(KPI_BY_NAME["partner_response_hours"].label), "yAxisID": "y1",
         "borderColor": "#0dcaf0", "backgroundColor": "#0dcaf0", "tension": 0.2,
         "spanGaps": False,
         "data": [_round(v) for v in series(kpi("partner_response_hours", "raw"))]},
    ]}, "options": {"responsive": True, "maintainAspectRatio": False,
                    "interaction": {"mode": "index", "intersect": False},
                    "plugins": {"legend": {"position": "bottom"}},
                    "scales": {"y": {"min": 0, "max": 100,
                                     "title": {"display": True,
                                               "text": str(_l("Composite / approval %"))}},
                               "y1": {"position": "right", "beginAtZero": True,
                                      "grid": {"drawOnChartArea": False},
                                      "title": {"display": True, "text": str(_l("Hours"))}}}}}


def months_class_mix(cards: list):
    """The class mix of a partner's referrals submitted in its stored monthly cards' months
    (as last computed): the default period of the card's "any period" table. Counting a busy
    partner's year of referrals on every view grew with them (issue 15)."""
    from ..portfolio import ClassMix  # the portfolio imports scoring

    if not cards:
        return None
    counts = {1: 0, 2: 0, 3: 0}
    for card in cards:
        for cls, n in ((card.extra or {}).get("mix") or {}).items():
            counts[int(cls)] += int(n)
    end = min(bank_today(), bank_date(cards[-1].period_end) - timedelta(days=1))
    return ClassMix(bank_date(cards[0].period_start), end, counts)


def _round(v, digits=1):
    return None if v is None else round(v, digits)


def mix_chart(snapshot) -> dict | None:
    mix = (snapshot.extra or {}).get("mix") if snapshot else None
    if not mix or not sum(mix.values()):
        return None
    return {"type": "doughnut", "data": {
        "labels": [str(_l("Class 1")), str(_l("Class 2")), str(_l("Class 3"))],
        "datasets": [{"data": [mix.get("1", 0), mix.get("2", 0), mix.get("3", 0)],
                      "backgroundColor": ["#198754", "#ffc107", "#dc3545"]}]},
        "options": {"responsive": True, "maintainAspectRatio": False}}


def split_chart(snapshot) -> dict | None:
    split = (snapshot.extra or {}).get("split") if snapshot else None
    if not split or not split.get("decided"):
        return None
    return {"type": "bar", "data": {
        "labels": [str(_l("Average hours from submission to decision"))],
        "datasets": [
            {"label": str(_l("Waiting on the bank")), "backgroundColor": "#0d6efd",
             "data": [_round(split.get("bank_hours"))]},
            {"label": str(_l("Waiting on the partner")), "backgroundColor": "#fd7e14",
             "data": [_round(split.get("partner_hours"))]}]},
        "options": {"indexAxis": "y", "responsive": True, "maintainAspectRatio": False,
                    "scales": {"x": {"stacked": True, "beginAtZero": True,
                                     "title": {"display": True, "text": str(_l("Hours"))}},
                               # The bar's name is the chart's heading; as a tick
                               # label it left the canvas in a narrow column.
                               "y": {"stacked": True, "ticks": {"display": False}}}}}


# --- one partner's card, explained --------------------------------------------------------------

def explain(snapshot, *, partner_view: bool = False) -> list[dict]:
    """Rows of the score explanation: each KPI's value, observation, interval, score, points."""
    out = []
    for kpi in KPIS:
        if partner_view and not kpi.partner_visible:
            continue
        entry = (snapshot.kpis or {}).get(kpi.name) or {}
        # Bank staff read every figure; a KPI on too few loans is marked, as it scores no points.
        too_few = withheld(kpi, entry)
        if partner_view:
            entry = for_partner(kpi, entry)
        out.append({"kpi": kpi, "withheld": entry.get("withheld", False), "too_few": too_few,
                    "min_loans": setting("SCORING_PARTNER_MIN_LOANS"),
                    "value": entry.get("value"), "raw": entry.get("raw"),
                    "n": entry.get("n", 0), "x": entry.get("x"),
                    "interval": entry.get("interval"), "score": entry.get("score"),
                    "weight": entry.get("weight", 0), "max_points": entry.get("max_points", 0),
                    "contribution": entry.get("contribution", 0)})
    return out


def tier_state(org_id: int) -> TierState | None:
    return db.session.get(TierState, org_id)


