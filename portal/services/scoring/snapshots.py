"""Stored cards: one snapshot row per organisation (None: the portfolio) and period, and each
partner's tier state. Pages and the API read only these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select

from models import Branch, Organization, ScorecardSnapshot, TierState

from ...extensions import db
from .disclosure import for_partner, shown_to_partner, withheld_note
from .kpis import KPIS
from .periods import Period, previous_month_key
from .settings import setting
from .tiers import TierStep

# --- reading ------------------------------------------------------------------------------------

def current_card(org_id: int) -> ScorecardSnapshot | None:
    return db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id == org_id, ScorecardSnapshot.period_kind == "rolling90",
        ScorecardSnapshot.period_key == "current"))


def portfolio_snapshot(kind: str = "rolling90", key: str = "current"
                       ) -> ScorecardSnapshot | None:
    return db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id.is_(None), ScorecardSnapshot.period_kind == kind,
        ScorecardSnapshot.period_key == key))


def portfolio_snapshots() -> list[ScorecardSnapshot]:
    """Every stored portfolio row (the priors of an incremental recompute)."""
    return list(db.session.scalars(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id.is_(None))))


def monthly_cards(org_id: int | None) -> list[ScorecardSnapshot]:
    cond = (ScorecardSnapshot.org_id.is_(None) if org_id is None
            else ScorecardSnapshot.org_id == org_id)
    rows = db.session.scalars(select(ScorecardSnapshot).where(
        cond, ScorecardSnapshot.period_kind == "month")
        .order_by(ScorecardSnapshot.period_key.desc()).limit(setting("SCORING_MONTHS")))
    return list(reversed(list(rows)))


def card_with_months(org_id: int) -> tuple[ScorecardSnapshot | None, list[ScorecardSnapshot],
                                            ScorecardSnapshot | None]:
    """A partner's current card, its monthly cards (current_card, monthly_cards) and the
    portfolio's current row, from one statement: the card page read them in three."""
    S = ScorecardSnapshot
    rows = db.session.scalars(select(S).where(
        or_(S.org_id == org_id,
            and_(S.org_id.is_(None), S.period_kind == "rolling90")),
        or_(S.period_kind == "month",
            and_(S.period_kind == "rolling90", S.period_key == "current"))))
    card = portfolio = None
    months = []
    for row in rows:
        if row.period_kind == "month":
            months.append(row)
        elif row.org_id is None:
            portfolio = row
        else:
            card = row
    months.sort(key=lambda m: m.period_key)
    return card, months[-setting("SCORING_MONTHS"):], portfolio


def base_states(org_ids: list[int], first_key: str) -> dict[int, TierStep]:
    """Each organisation's hysteresis state just before the first recomputed month, from the
    stored monthly snapshot of the month before it (kept when older than the window)."""
    before = previous_month_key(first_key)
    out = {}
    query = select(ScorecardSnapshot.org_id, ScorecardSnapshot.tier,
                   ScorecardSnapshot.pending_down, ScorecardSnapshot.raw_tier).where(
        ScorecardSnapshot.period_kind == "month", ScorecardSnapshot.period_key == before,
        ScorecardSnapshot.org_id.is_not(None))
    wanted = set(org_ids)
    for org, tier, pending, raw in db.session.execute(query):
        if org in wanted and tier:
            out[org] = (tier, pending or 0, raw or tier)
    return out


def card_json(snapshot: ScorecardSnapshot, org_code: str | None = None, *,
              partner_view: bool = False) -> dict:
    """A card as the API gives it (docs/contract.md): org_code, composite, tier, sample_size, kpis
    {name: {value, interval, contribution, raw, n}}; rates as fractions 0-1. The partner's view
    withholds credit performance on too few loans (disclosure.py)."""
    kpis = {}
    headline = shown_to_partner(snapshot) if partner_view else None
    for kpi in KPIS:
        entry = (snapshot.kpis or {}).get(kpi.name) or {}
        if partner_view:
            entry = for_partner(kpi, entry)
        kpis[kpi.name] = {
            "value": entry.get("value"),
            "raw": entry.get("raw"),
            "n": entry.get("n", 0),
            "interval": entry.get("interval") if kpi.kind == "rate" else None,
            "contribution": entry.get("contribution"),
            "kind": kpi.kind,
            "withheld": entry.get("withheld", False),
            "note": str(withheld_note()) if entry.get("withheld") else None,
        }
    return {
        "org_code": org_code or (snapshot.org.code if snapshot.org else None),
        "period": {"kind": snapshot.period_kind, "key": snapshot.period_key,
                   "start": snapshot.period_start.isoformat(),
                   "end": snapshot.period_end.isoformat()},
        "computed_at": snapshot.computed_at.isoformat(),
        "composite": headline.composite if headline else snapshot.composite,
        "tier": headline.tier if headline else snapshot.tier,
        "sample_size": snapshot.sample_size,
        "weights_version": snapshot.weights_version,
        "kpis": kpis,
    }


# --- writing ------------------------------------------------------------------------------------

def row(org_id: int | None, period: Period, computed_at: datetime, c: dict, version) -> dict:
    """The snapshot row of one card."""
    return {"org_id": org_id, "period_kind": period.kind, "period_key": period.key,
            "period_start": period.start, "period_end": period.end, "computed_at": computed_at,
            "sample_size": c.get("sample_size", 0), "composite": c.get("composite"),
            "raw_tier": c.get("raw_tier"), "tier": c.get("tier"),
            "pending_down": c.get("pending_down", 0), "weights_version": version,
            "kpis": c["kpis"], "extra": c.get("extra")}


def replace(rows: list[dict], org_ids: list[int] | None, keys: list[str]) -> None:
    """Put `rows` in place of the stored snapshots of these periods (of these organisations;
    None: of everyone and the portfolio)."""
    table = ScorecardSnapshot.__table__
    stmt = delete(table).where(table.c.period_key.in_(keys))
    if org_ids is not None:
        stmt = stmt.where(table.c.org_id.in_(org_ids))
    db.session.execute(stmt)
    for i in range(0, len(rows), 1000):
        db.session.execute(insert(table), rows[i:i + 1000])


def store_month_tiers(keys: list[str]) -> None:
    """Each month's partner tiers and composites, {org id: [tier, composite]}, kept in the
    portfolio's row of that month (extra["tiers"]): the cockpit's trend sums them for the
    partners its filters select instead of reading every partner's twelve cards (issue 15).

    Beside them the month's sums by branch subtree, {"all" or branch id: {tier: [partners,
    composite sum, partners with a composite]}} (extra["tier_totals"]): the trend of a cockpit
    filtered by branch alone (a branch manager's own view), without decoding five hundred
    entries a month."""
    S = ScorecardSnapshot
    by_key: dict[str, dict] = {k: {} for k in keys}
    totals: dict[str, dict] = {k: {} for k in keys}
    for key, org, tier, composite, partner, path in db.session.execute(
            select(S.period_key, S.org_id, S.tier, S.composite, Organization.is_partner,
                   Branch.path)
            .join(Organization, Organization.id == S.org_id)
            .outerjoin(Branch, Branch.id == Organization.branch_id).where(
                S.period_kind == "month", S.period_key.in_(keys), S.org_id.is_not(None))):
        by_key[key][str(org)] = [tier, composite]
        if not partner:  # the cockpit lists partners only (views._org_filters)
            continue
        # The partner counts in every subtree above its branch ("/1/4/9/": 1, 4 and 9).
        for unit in ["all", *(path or "").strip("/").split("/")]:
            if unit:
                n, total, scored = totals[key].setdefault(unit, {}).get(tier, (0, 0.0, 0))
                totals[key][unit][tier] = [n + 1, total + (composite or 0.0),
                                           scored + (composite is not None)]
    # Fresh objects: replace() deleted and inserted these rows behind the session's back.
    for snap in db.session.scalars(select(S).where(
            S.org_id.is_(None), S.period_kind == "month", S.period_key.in_(keys))
            .execution_options(populate_existing=True)):
        snap.extra = {**(snap.extra or {}), "tiers": by_key[snap.period_key],
                      "tier_totals": totals[snap.period_key]}


def store_states(states: list, computed_at: datetime) -> None:
    """states: (org_id, tier step, composite, base period) per organisation."""
    existing = {s.org_id: s for s in db.session.scalars(
        select(TierState).where(TierState.org_id.in_([o for o, *_ in states])))}
    for org, (tier, pending, _raw), composite, base_period in states:
        state = existing.get(org)
        if state is None:
            db.session.add(TierState(org_id=org, tier=tier, pending_down=pending,
                                     base_period=base_period, composite=composite,
                                     since=computed_at, updated_at=computed_at))
            continue
        if state.tier != tier:
            state.since = computed_at
        state.tier, state.pending_down = tier, pending
        state.base_period, state.composite, state.updated_at = base_period, composite, computed_at
