"""The SQL side: one GROUP BY query per source (the milestone date a KPI is counted by) for a
family of contiguous periods, returning typed `Figures` per (organisation, period key). Medians
and p90s are computed in the database too: `percentile_cont` on PostgreSQL, window functions on
SQLite."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql.expression import ColumnElement

from models import Referral, UTCDateTime

from ...extensions import db
from .expressions import BANK_SECONDS_TO_DECISION, LP, SLA, R, flag, scan
from .figures import Extras, Figures, Hours, Rate
from .kpis import KPIS
from .periods import Period
from .settings import setting

Key = tuple[int, str]  # (organisation id, period key)

# The sums behind `Extras`, by the source that counts them: field -> SQL to SUM.
EXTRAS: dict[str, dict[str, ColumnElement]] = {
    "submitted": {"class_1": flag(R.customer_class == 1), "class_2": flag(R.customer_class == 2),
                  "class_3": flag(R.customer_class == 3), "requested_amount": R.amount},
    "decided": {"bank_seconds": BANK_SECONDS_TO_DECISION, "partner_seconds": R.partner_seconds},
}
REFERRAL_SOURCES = ("submitted", "decided", "closed", "disbursed")


def aggregate(periods: list[Period], org_id: int | None = None) -> dict[Key, Figures]:
    """Every KPI's figures for one family of contiguous periods (one organisation, or all)."""
    figures: dict[Key, Figures] = defaultdict(Figures)
    for source in REFERRAL_SOURCES:
        _referral_source_rows(figures, source, periods, org_id)
    _hours_rows(figures, periods, org_id)
    _loan_rows(figures, periods, org_id)
    _epd_rows(figures, periods, org_id)
    return figures


def referral_totals(org_ids: list[int] | None = None) -> dict[int, int]:
    """Each organisation's referrals of all time (None: every organisation's), kept on its
    current card for the cockpit's "to us" column."""
    query = select(Referral.org_id, func.count()).group_by(Referral.org_id)
    if org_ids is not None:
        query = query.where(Referral.org_id.in_(org_ids))
    return dict(db.session.execute(query).all())


def sla_by_org() -> dict[int, float]:
    """Each organisation's SLA hours from its agreement in force (absent: the default)."""
    return {org: float(hours) for org, hours in db.session.execute(select(SLA.c.org_id,
                                                                          SLA.c.hours))}


def _dt(value: datetime):
    return literal(value, UTCDateTime())


def _bucket(column, periods: list[Period], *, shift: timedelta | None = None):
    """(bucket expression, WHERE clause) putting `column` into one of contiguous `periods`.
    Twelve months cover most of the table: read it by a scan, not by the date's index."""
    shift = shift or timedelta()
    bounds = [(_dt(p.start - shift), _dt(p.end - shift)) for p in periods]
    ranged = scan(column) if len(periods) > 1 else column
    where = and_(ranged >= bounds[0][0], ranged < bounds[-1][1])
    if len(periods) == 1:
        return literal(periods[0].key), where
    pairs = zip(periods[:-1], bounds[:-1], strict=True)
    bucket = case(*[(column < hi, literal(p.key)) for p, (_lo, hi) in pairs],
                  else_=literal(periods[-1].key))
    return bucket, where


def _anchor(source: str, periods: list[Period]):
    """The bucket and WHERE clause of a referral-table source."""
    if source in REFERRAL_SOURCES:
        return _bucket(R[f"{source}_at"], periods)
    if source == "resolved":
        # Partner time is final once decided (documents are never requested after a decision)
        # or closed without one: counted on whichever came first.
        decided_b, decided_w = _bucket(R.decided_at, periods)
        closed_b, closed_w = _bucket(R.closed_at, periods)
        bucket = case((R.decided_at.is_not(None), decided_b), else_=closed_b)
        where = and_(R.ever_documents_requested,
                     or_(decided_w, and_(R.decided_at.is_(None), closed_w)))
        return bucket, where
    raise ValueError(source)


def _referral_source_rows(figures: dict[Key, Figures], source: str, periods: list[Period],
                          org_id: int | None) -> None:
    """Numerators, denominators and sums of every rate/count/amount KPI counted by `source`."""
    bucket, where = _anchor(source, periods)
    kpis = [k for k in KPIS if k.source == source and k.kind in ("rate", "count", "amount")]
    extras = EXTRAS.get(source, {})
    if not kpis and not extras:
        return
    cols = [scan(R.org_id).label("org_id"), bucket.label("b")]
    for i, kpi in enumerate(kpis):
        if kpi.kind == "rate":
            cols.append(flag(and_(kpi.num, kpi.den) if kpi.den is not None else kpi.num)
                        .label(f"x{i}"))
            cols.append((flag(kpi.den) if kpi.den is not None else literal(1)).label(f"n{i}"))
        else:
            cols.append(kpi.measure.label(f"s{i}"))
    cols += [expr.label(f"e_{name}") for name, expr in extras.items()]
    inner = select(*cols).where(where)
    joined = Referral.__table__
    for table, on in dict.fromkeys(j for kpi in kpis for j in kpi.joins):
        joined = joined.outerjoin(table, on)
    if joined is not Referral.__table__:
        inner = inner.select_from(joined)
    if org_id is not None:
        inner = inner.where(R.org_id == org_id)
    inner = inner.subquery("s")
    summed = [c.name for c in cols[2:]]
    query = select(inner.c.org_id, inner.c.b, *[func.sum(inner.c[name]).label(name)
                                                 for name in summed]
                   ).group_by(inner.c.org_id, inner.c.b)
    for row in db.session.execute(query).mappings():
        value = {k: float(row[k]) if row[k] is not None else 0.0 for k in summed}
        target = figures[(row["org_id"], row["b"])]
        for i, kpi in enumerate(kpis):
            if kpi.kind == "rate":
                target.rates[kpi.name] = Rate(value[f"x{i}"], value[f"n{i}"])
            else:
                target.totals[kpi.name] = value[f"s{i}"]
        if extras:
            target.extras.add(Extras(**{name: value[f"e_{name}"] for name in extras}))


def _percentiles(measure, bucket, where, quantiles, org_id: int | None) -> dict:
    """{(org_id, bucket): (n, {q: value in seconds})} of `measure` over the matching referrals:
    percentile_cont on PostgreSQL; on SQLite, ranks from window functions, interpolated the same
    way (linear between the two nearest ranks)."""
    base = (select(scan(R.org_id).label("org_id"), bucket.label("b"), measure.label("x"))
            .where(where))
    if org_id is not None:
        base = base.where(R.org_id == org_id)
    base = base.subquery("d")
    out = {}
    if db.session.get_bind().dialect.name == "postgresql":
        query = select(base.c.org_id, base.c.b, func.count(),
                       *[func.percentile_cont(q).within_group(base.c.x) for q in quantiles]
                       ).group_by(base.c.org_id, base.c.b)
        for org, b, n, *values in db.session.execute(query):
            out[(org, b)] = (n, {q: float(v) for q, v in zip(quantiles, values, strict=True)})
        return out
    ranked = select(
        base.c.org_id, base.c.b, base.c.x,
        func.row_number().over(partition_by=(base.c.org_id, base.c.b), order_by=base.c.x)
        .label("rn"),
        func.count().over(partition_by=(base.c.org_id, base.c.b)).label("n"),
    ).subquery("r")
    cols = []
    wanted = []
    for q in quantiles:
        floor_rank = 1 + cast((ranked.c.n - 1) * q, Integer)
        cols.append(func.max(case((ranked.c.rn == floor_rank, ranked.c.x))))
        cols.append(func.max(case((ranked.c.rn == floor_rank + 1, ranked.c.x))))
        wanted += [ranked.c.rn == floor_rank, ranked.c.rn == floor_rank + 1]
    query = (select(ranked.c.org_id, ranked.c.b, func.max(ranked.c.n), *cols)
             .where(or_(*wanted)).group_by(ranked.c.org_id, ranked.c.b))
    for org, b, n, *values in db.session.execute(query):
        result = {}
        for i, q in enumerate(quantiles):
            lo, hi = values[2 * i], values[2 * i + 1]
            pos = (n - 1) * q
            frac = pos - math.floor(pos)
            result[q] = float(lo) if hi is None or frac == 0 else float(lo) + frac * (hi - lo)
        out[(org, b)] = (n, result)
    return out


def _hours_rows(figures: dict[Key, Figures], periods: list[Period], org_id: int | None) -> None:
    groups: dict = defaultdict(list)
    for kpi in KPIS:
        if kpi.kind == "hours":
            groups[(kpi.source, id(kpi.measure))].append(kpi)
    for (source, _m), kpis in groups.items():
        bucket, where = _anchor(source, periods)
        measure = kpis[0].measure
        where = and_(where, measure.is_not(None))
        quantiles = sorted({k.quantile for k in kpis})
        for key, (n, values) in _percentiles(measure, bucket, where, quantiles, org_id).items():
            for kpi in kpis:
                figures[key].hours[kpi.name] = Hours(float(n), values[kpi.quantile] / 3600.0)


def _loan_rows(figures: dict[Key, Figures], periods: list[Period], org_id: int | None) -> None:
    """Delinquency and NPL from each loan's latest statement in the period: for a calendar month
    the statement flagged month_latest, for the rolling window the loan's latest one (is_latest)
    if it falls inside the window. The import keeps both flags, so the database only counts,
    per statement date and organisation, along a covering index (no sort of millions of
    statements); the dates are then folded into the periods here."""
    lo, hi = periods[0].start_date, periods[-1].end_date
    rolling = periods[0].kind == "rolling90"
    kpis = [k for k in KPIS if k.source == "loans"]
    cols = []
    for kpi in kpis:
        cols.append(func.sum(flag(and_(kpi.num, kpi.den))))
        cols.append(func.sum(flag(kpi.den)))
    # One partner: along its own index, not the date index over everyone's statements.
    as_of = LP.as_of if org_id is None else scan(LP.as_of)
    query = (select(LP.as_of, LP.org_id, *cols)
             .where(as_of >= lo, as_of < hi, LP.is_latest if rolling else LP.month_latest)
             .group_by(LP.as_of, LP.org_id))
    if org_id is not None:
        query = query.where(LP.org_id == org_id)
    for as_of, org, *values in db.session.execute(query):
        key = periods[0].key if rolling else f"{as_of:%Y-%m}"
        rates = figures[(org, key)].rates
        for i, kpi in enumerate(kpis):
            rate = rates.setdefault(kpi.name, Rate())
            rate.x += float(values[2 * i] or 0)
            rate.n += float(values[2 * i + 1] or 0)


def _epd_rows(figures: dict[Key, Figures], periods: list[Period], org_id: int | None) -> None:
    """Early payment default KPIs, counted in the period each loan's first EPD_DAYS end: a loan
    counts once, in x when any statement of those days meets the KPI's condition."""
    kpis = [k for k in KPIS if k.source == "epd"]
    if not kpis:
        return
    days = int(setting("SCORING_EPD_DAYS"))
    early = (select(LP.referral_id.label("referral_id"),
                    *[func.max(flag(k.num)).label(f"x{i}") for i, k in enumerate(kpis)])
             .where(LP.days_on_book <= days))
    if org_id is not None:
        early = early.where(LP.org_id == org_id)
    early = early.group_by(LP.referral_id).subquery("e")
    bucket, where = _bucket(R.disbursed_at, periods, shift=timedelta(days=days))
    inner = (select(scan(R.org_id).label("org_id"), bucket.label("b"),
                    *[early.c[f"x{i}"] for i in range(len(kpis))])
             .select_from(Referral.__table__.join(early, early.c.referral_id == R.id))
             .where(where))
    if org_id is not None:
        inner = inner.where(R.org_id == org_id)
    inner = inner.subquery("s")
    query = select(inner.c.org_id, inner.c.b, func.count(),
                   *[func.sum(inner.c[f"x{i}"]) for i in range(len(kpis))]
                   ).group_by(inner.c.org_id, inner.c.b)
    for org, b, n, *xs in db.session.execute(query):
        for kpi, x in zip(kpis, xs, strict=True):
            figures[(org, b)].rates[kpi.name] = Rate(float(x or 0), float(n))
