"""Partner scorecards: every KPI defined once, aggregated in SQL, shrunk, weighted and tiered.

docs/scoring.md explains the same in words. The shape of the work:

1. `_aggregate` runs one GROUP BY query per *source* (the milestone date a KPI is counted by:
   submitted, decided, closed, disbursed, ...) for a family of periods (the twelve calendar
   months, or the rolling 90 days), returning per (organisation, period) the numerators,
   denominators, sums and percentiles the KPI registry asks for. Medians and p90s are computed
   in the database too: `percentile_cont` on PostgreSQL, window functions on SQLite.
2. `card` turns one organisation's figures into KPI values: rates shrunk toward the portfolio
   (a beta prior, `(x + k·m) / (n + k)`) with the posterior's 90% interval, hours weighted
   toward the portfolio's typical value, each KPI scored 0–1 between its anchors, and the
   composite 0–100 from the admin-set weights with each KPI's contribution.
3. Tiers come from the composite (capped by sample size) with hysteresis over calendar months:
   up at once, down only after two consecutive periods below.
4. Snapshots are stored per period; pages and the API read only those. A referral change marks
   its organisation stale (`mark_stale`); `recompute_stale` brings those cards up to date
   against the stored portfolio priors, `recompute_all` redoes everything.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Float,
    Integer,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from models import (
    BANK_KIND,
    Agreement,
    LoanPerformance,
    Organization,
    Referral,
    ReferralEvent,
    ScorecardSnapshot,
    ScoreChange,
    ScoringWeights,
    TierState,
    UTCDateTime,
    utcnow,
)

from ..extensions import db
from . import Ctx, audit
from .errors import ValidationFailed

# --- settings (app.config overrides; see docs/scoring.md) --------------------------------------

DEFAULTS = {
    "SCORING_PRIOR_STRENGTH": 20,  # k: how many referrals' worth of portfolio average to add
    "SCORING_INTERVAL": 0.90,  # the posterior interval shown with each rate
    "SCORING_SLA_HOURS": 72,  # bank hours from submission to decision within SLA
    "SCORING_EPD_DAYS": 90,  # early payment default: 30+ days past due within this many days
    "SCORING_MONTHS": 12,  # calendar months kept as snapshots
    "SCORING_ROLLING_DAYS": 90,
    "SCORING_INCREMENTAL_MAX_ORGS": 50,  # more stale partners than this: recompute everything
    "SCORING_SQLITE_CACHE_KIB": 262144,  # page cache for a full recompute on SQLite (256 MiB)
}


def setting(name: str):
    """app.config[name], else the environment variable of that name, else the default."""
    if name in current_app.config:
        return current_app.config[name]
    raw = os.environ.get(name)
    default = DEFAULTS[name]
    if raw is None:
        return default
    try:
        return type(default)(raw)
    except ValueError:
        return default


TIERS = ("exit", "watch", "core", "strategic")  # lowest first
TIER_RANK = {t: i for i, t in enumerate(TIERS)}
TIER_LABELS = {
    "strategic": _l("Strategic"),
    "core": _l("Core"),
    "watch": _l("Watch"),
    "exit": _l("Exit"),
}
TIER_BADGES = {"strategic": "success", "core": "primary", "watch": "warning", "exit": "danger"}
DEFAULT_THRESHOLDS = {
    "strategic": 70.0,  # composite at or above: strategic ...
    "core": 55.0,
    "watch": 40.0,  # ... below this: exit
    "strategic_min_sample": 30,  # referrals in the period needed for strategic
    "core_min_sample": 5,  # ... and for core; fewer: watch at best
}
DOWN_AFTER = 2  # consecutive periods below the current tier before it drops

# --- portable SQL helpers ----------------------------------------------------------------------

class seconds_between(FunctionElement):  # noqa: N801 — reads like the SQL function it is
    """Seconds from `start` to `end` (both timestamps), as a float, on either database."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    end, start = list(element.clauses)
    return (f"((julianday({compiler.process(end, **kw)}) - "
            f"julianday({compiler.process(start, **kw)})) * 86400.0)")


@compiles(seconds_between, "postgresql")
def _seconds_pg(element, compiler, **kw):
    end, start = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between)
def _seconds_default(element, compiler, **kw):
    return _seconds_pg(element, compiler, **kw)


class scan(FunctionElement):  # noqa: N801
    """The column itself; on SQLite written `+column` so that a range covering most of the table
    is read by one table scan instead of an index walk with a lookup per row (SQLite's planner
    picks the index even for a range of nearly every row)."""

    inherit_cache = True
    name = "scan"

    @property
    def type(self):
        return list(self.clauses)[0].type


@compiles(scan, "sqlite")
def _scan_sqlite(element, compiler, **kw):
    return "+" + compiler.process(list(element.clauses)[0], **kw)


@compiles(scan)
def _scan_default(element, compiler, **kw):
    return compiler.process(list(element.clauses)[0], **kw)


R = Referral.__table__.c
LP = LoanPerformance.__table__.c


def _flag(condition) -> ColumnElement:
    return case((condition, 1), else_=0)


EVER_CONFLICT = exists().where(ReferralEvent.referral_id == R.id,
                               ReferralEvent.to_state == "conflict")
BANK_SECONDS_TO_DECISION = seconds_between(R.decided_at, R.submitted_at) - R.partner_seconds
DECISION_TO_DISBURSEMENT = seconds_between(R.disbursed_at, R.decided_at)


# --- the KPI registry: each definition written once ---------------------------------------------

@dataclass(frozen=True)
class KPI:
    """One scorecard measure.

    kind: rate (num/den, a fraction 0-1) | hours (a percentile of `measure` seconds) | count |
    amount (a sum of `measure`). source: which milestone date puts a referral in a period.
    direction: whether higher or lower is better. worst/best: the values that score 0 and 1
    (None for volume KPIs, which score against the portfolio's 90th percentile partner).
    """

    name: str
    label: object
    kind: str
    source: str
    direction: str
    definition: object
    num: ColumnElement | None = None
    den: ColumnElement | None = None
    measure: ColumnElement | None = None
    quantile: float | None = None
    shrink: bool = True
    worst: float | None = None
    best: float | None = None
    weight: float = 0.0  # default weight; the admin sets the ones in force
    partner_visible: bool = True


def _rate(name, label, source, direction, definition, num, den=None, **kw) -> KPI:
    """A rate: rows of `source` where `num` holds / rows where `den` holds (None: every row)."""
    return KPI(name, label, "rate", source, direction, definition, num=num, den=den, **kw)


KPIS: list[KPI] = [
    # quality --------------------------------------------------------------------------------
    _rate("approval_rate", _l("Approval rate"), "decided", "higher",
          _l("Approved (or later) / decided (approved + declined), by decision date."),
          num=R.status != "declined", worst=0.30, best=0.90, weight=15),
    _rate("pull_through", _l("Pull-through"), "closed", "higher",
          _l("Disbursed / closed (disbursed, declined, withdrawn, expired, rejected as "
             "duplicate), by closing date."),
          num=R.status == "disbursed", worst=0.20, best=0.80, weight=15),
    _rate("document_first_pass", _l("Documents complete first time"), "decided", "higher",
          _l("Decided without ever being sent back for documents / decided, by decision date."),
          num=not_(R.ever_documents_requested), worst=0.30, best=0.90, weight=10),
    _rate("conflict_rate", _l("Conflict rate"), "submitted", "lower",
          _l("Referrals that went to an attribution conflict / referrals submitted."),
          num=EVER_CONFLICT, worst=0.20, best=0.0, weight=5),
    _rate("class1_share", _l("Class-1 buyer share"), "submitted", "higher",
          _l("Buyers of customer class 1 (by employer industry) / referrals submitted."),
          num=R.customer_class == 1, worst=0.10, best=0.70, weight=10),
    _rate("delinquency_rate", _l("30+ days past due"), "loans", "lower",
          _l("Referred loans whose latest statement in the period is 30 or more days past due "
             "/ referred loans with a statement in the period (closed loans left out)."),
          num=LP.days_past_due >= 30, den=LP.status != "closed", worst=0.15, best=0.0,
          weight=10),
    _rate("npl_rate", _l("NPL rate"), "loans", "lower",
          _l("Referred loans whose latest statement in the period is non-performing / referred "
             "loans with a statement in the period (closed loans left out)."),
          num=LP.status == "npl", den=LP.status != "closed", worst=0.06, best=0.0, weight=10),
    _rate("early_payment_default", _l("Early payment default"), "epd", "lower",
          _l("Loans 30+ days past due within their first 90 days / loans observed in their "
             "first 90 days, counted in the period their 90 days end."),
          num=None, worst=0.05, best=0.0, weight=5),
    # speed ----------------------------------------------------------------------------------
    KPI("partner_response_hours", _l("Partner response (median hours)"), "hours", "resolved",
        "lower", _l("Median hours a referral spent waiting on the partner (documents "
                    "requested), over referrals asked for documents, by decision or closing "
                    "date."),
        measure=R.partner_seconds, quantile=0.5, worst=240.0, best=24.0, weight=10),
    KPI("bank_turnaround_hours", _l("Bank turnaround to decision (median hours)"), "hours",
        "decided", "lower",
        _l("Median hours on the bank's clock from submission to decision (time waiting on the "
           "partner not counted), by decision date."),
        measure=BANK_SECONDS_TO_DECISION, quantile=0.5, shrink=False, worst=240.0, best=24.0),
    KPI("bank_turnaround_p90_hours", _l("Bank turnaround to decision (p90 hours)"), "hours",
        "decided", "lower", _l("90th percentile of the same."),
        measure=BANK_SECONDS_TO_DECISION, quantile=0.9, shrink=False, worst=480.0, best=48.0),
    KPI("disbursement_hours", _l("Decision to disbursement (median hours)"), "hours",
        "disbursed", "lower",
        _l("Median hours from credit decision to disbursement, by disbursement date."),
        measure=DECISION_TO_DISBURSEMENT, quantile=0.5, shrink=False, worst=480.0, best=48.0),
    KPI("disbursement_p90_hours", _l("Decision to disbursement (p90 hours)"), "hours",
        "disbursed", "lower", _l("90th percentile of the same."),
        measure=DECISION_TO_DISBURSEMENT, quantile=0.9, shrink=False, worst=960.0, best=96.0),
    _rate("sla_compliance", _l("Decisions within SLA"), "decided", "higher",
          _l("Decisions reached within the SLA's bank hours / decisions, by decision date."),
          num=None, worst=0.50, best=1.0),
    # volume ---------------------------------------------------------------------------------
    KPI("referrals", _l("Referrals submitted"), "count", "submitted", "higher",
        _l("Referrals submitted in the period."), measure=literal(1), shrink=False),
    KPI("disbursed_count", _l("Loans disbursed"), "count", "disbursed", "higher",
        _l("Loans disbursed in the period."), measure=literal(1), shrink=False),
    KPI("disbursed_amount", _l("Amount disbursed"), "amount", "disbursed", "higher",
        _l("Sum of the loan amounts disbursed in the period; scored against the partner at the "
           "portfolio's 90th percentile."), measure=R.amount, shrink=False, weight=10),
]
KPI_BY_NAME = {k.name: k for k in KPIS}
DEFAULT_WEIGHTS = {k.name: k.weight for k in KPIS}
# Card keys every API consumer may rely on (CONTRACT.md).
CONTRACT_KPIS = ("approval_rate", "pull_through", "document_first_pass", "class1_share",
                 "delinquency_rate", "npl_rate", "partner_response_hours",
                 "bank_turnaround_hours")


def _sla_hours():
    """Per organisation, the bank's turnaround promise in its cooperation agreement in force
    (the shortest if several); organisations without one get SCORING_SLA_HOURS."""
    return (select(Agreement.org_id.label("org_id"),
                   func.min(Agreement.bank_sla_hours).label("hours"))
            .where(Agreement.status == "active").group_by(Agreement.org_id).subquery("sla"))


def _sla_condition(sla):
    hours = func.coalesce(sla.c.hours, float(setting("SCORING_SLA_HOURS")))
    return BANK_SECONDS_TO_DECISION <= hours * 3600.0


def sla_by_org() -> dict[int, float]:
    sla = _sla_hours()
    return {org: float(hours) for org, hours in db.session.execute(select(sla.c.org_id,
                                                                          sla.c.hours))}


# Figures the pages explain a card with (not scored), by source: name -> SQL to SUM.
EXTRAS: dict[str, dict[str, ColumnElement]] = {
    "submitted": {"class_1": _flag(R.customer_class == 1), "class_2": _flag(R.customer_class == 2),
                  "class_3": _flag(R.customer_class == 3), "requested_amount": R.amount},
    "decided": {"bank_seconds": BANK_SECONDS_TO_DECISION, "partner_seconds": R.partner_seconds},
}


# --- periods ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    kind: str  # month | rolling90
    key: str  # 'YYYY-MM' | 'current'
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    start_date: date  # the bank's local dates, for loan statements
    end_date: date  # exclusive


def bank_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_periods(now: datetime, months: int | None = None) -> list[Period]:
    """The last `months` calendar months in the bank's time zone, oldest first, the current
    (partial) month last."""
    tz = bank_tz()
    months = months or setting("SCORING_MONTHS")
    local = now.astimezone(tz).date()
    first = date(local.year, local.month, 1)
    out = []
    for back in range(months - 1, -1, -1):
        y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
        start = date(y, m + 1, 1)
        ny, nm = divmod(y * 12 + m + 1, 12)
        end = date(ny, nm + 1, 1)
        out.append(Period("month", f"{start:%Y-%m}", _local_midnight(start, tz),
                          _local_midnight(end, tz), start, end))
    return out


def rolling_period(now: datetime) -> Period:
    days = setting("SCORING_ROLLING_DAYS")
    local = now.astimezone(bank_tz()).date()
    return Period("rolling90", "current", now - timedelta(days=days), now,
                  local - timedelta(days=days - 1), local + timedelta(days=1))


def previous_month_key(key: str) -> str:
    y, m = int(key[:4]), int(key[5:7])
    y, m = divmod(y * 12 + m - 2, 12)
    return f"{y:04d}-{m + 1:02d}"


# --- aggregation in SQL -------------------------------------------------------------------------

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
    if source == "submitted":
        return _bucket(R.submitted_at, periods)
    if source == "decided":
        return _bucket(R.decided_at, periods)
    if source == "closed":
        return _bucket(R.closed_at, periods)
    if source == "disbursed":
        return _bucket(R.disbursed_at, periods)
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


def _referral_source_rows(source: str, periods: list[Period], org_id: int | None) -> dict:
    """Numerators, denominators and sums of every rate/count/amount KPI counted by `source`."""
    bucket, where = _anchor(source, periods)
    sla = _sla_hours()
    inner_cols = [scan(R.org_id).label("org_id"), bucket.label("b")]
    outer = []
    for kpi in KPIS:
        if kpi.source != source:
            continue
        if kpi.kind == "rate":
            num = _sla_condition(sla) if kpi.name == "sla_compliance" else kpi.num
            inner_cols.append(_flag(and_(num, kpi.den) if kpi.den is not None else num)
                              .label(f"{kpi.name}__x"))
            inner_cols.append((_flag(kpi.den) if kpi.den is not None else literal(1))
                              .label(f"{kpi.name}__n"))
            outer += [f"{kpi.name}__x", f"{kpi.name}__n"]
        elif kpi.kind in ("count", "amount"):
            inner_cols.append(kpi.measure.label(f"{kpi.name}__sum"))
            outer.append(f"{kpi.name}__sum")
    for name, expr in EXTRAS.get(source, {}).items():
        inner_cols.append(expr.label(f"extra__{name}"))
        outer.append(f"extra__{name}")
    if len(outer) == 0:
        return {}
    inner = select(*inner_cols).where(where)
    if source == "decided":
        inner = inner.select_from(Referral.__table__.outerjoin(sla, sla.c.org_id == R.org_id))
    if org_id is not None:
        inner = inner.where(R.org_id == org_id)
    inner = inner.subquery("s")
    query = select(inner.c.org_id, inner.c.b, func.count().label("__rows"),
                   *[func.sum(inner.c[name]).label(name) for name in outer]
                   ).group_by(inner.c.org_id, inner.c.b)
    out = {}
    for row in db.session.execute(query).mappings():
        out[(row["org_id"], row["b"])] = {k: (float(v) if v is not None else 0.0)
                                          for k, v in row.items() if k not in ("org_id", "b")}
    return out


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


def _hours_rows(periods: list[Period], org_id: int | None) -> dict:
    out: dict = defaultdict(dict)
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
                out[key][f"{kpi.name}__n"] = float(n)
                out[key][f"{kpi.name}__v"] = values[kpi.quantile] / 3600.0
    return out


def _loan_rows(periods: list[Period], org_id: int | None) -> dict:
    """Delinquency and NPL from each loan's latest statement in the period: for a calendar month
    the statement flagged month_latest, for the rolling window the loan's latest one (is_latest)
    if it falls inside the window. The import keeps both flags, so the database only counts,
    per statement date and organisation, along a covering index (no sort of millions of
    statements); the dates are then folded into the periods here."""
    lo, hi = periods[0].start_date, periods[-1].end_date
    rolling = periods[0].kind == "rolling90"
    cols = []
    names = []
    for kpi in KPIS:
        if kpi.source == "loans":
            cols.append(func.sum(_flag(and_(kpi.num, kpi.den))))
            cols.append(func.sum(_flag(kpi.den)))
            names += [f"{kpi.name}__x", f"{kpi.name}__n"]
    # One partner: along its own index, not the date index over everyone's statements.
    as_of = LP.as_of if org_id is None else scan(LP.as_of)
    query = (select(LP.as_of, LP.org_id, *cols)
             .where(as_of >= lo, as_of < hi, LP.is_latest if rolling else LP.month_latest)
             .group_by(LP.as_of, LP.org_id))
    if org_id is not None:
        query = query.where(LP.org_id == org_id)
    out: dict = defaultdict(lambda: defaultdict(float))
    for as_of, org, *values in db.session.execute(query):
        key = periods[0].key if rolling else f"{as_of:%Y-%m}"
        bucket = out[(org, key)]
        for name, value in zip(names, values, strict=True):
            bucket[name] += float(value or 0)
    return out


def _epd_rows(periods: list[Period], org_id: int | None) -> dict:
    """Early payment default, counted in the period each loan's first EPD_DAYS end."""
    days = int(setting("SCORING_EPD_DAYS"))
    early = (select(LP.referral_id.label("referral_id"),
                    func.max(_flag(LP.days_past_due >= 30)).label("bad"))
             .where(LP.days_on_book <= days))
    if org_id is not None:
        early = early.where(LP.org_id == org_id)
    early = early.group_by(LP.referral_id).subquery("e")
    bucket, where = _bucket(R.disbursed_at, periods, shift=timedelta(days=days))
    inner = (select(scan(R.org_id).label("org_id"), bucket.label("b"), early.c.bad)
             .select_from(Referral.__table__.join(early, early.c.referral_id == R.id))
             .where(where))
    if org_id is not None:
        inner = inner.where(R.org_id == org_id)
    inner = inner.subquery("s")
    query = select(inner.c.org_id, inner.c.b, func.sum(inner.c.bad), func.count()
                   ).group_by(inner.c.org_id, inner.c.b)
    return {(org, b): {"early_payment_default__x": float(x or 0),
                       "early_payment_default__n": float(n)}
            for org, b, x, n in db.session.execute(query)}


def _aggregate(periods: list[Period], org_id: int | None = None) -> dict:
    """{(org_id, period key): {figure: number}} for one family of contiguous periods."""
    figures: dict = defaultdict(dict)
    parts = [_referral_source_rows(s, periods, org_id)
             for s in ("submitted", "decided", "closed", "disbursed")]
    parts += [_hours_rows(periods, org_id), _loan_rows(periods, org_id),
              _epd_rows(periods, org_id)]
    for part in parts:
        for key, values in part.items():
            values = {k: v for k, v in values.items() if k != "__rows"}
            figures[key].update(values)
    return figures


# --- beta posterior ---------------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(p: float, a: float, b: float) -> float:
    """The p-quantile of Beta(a, b): Newton/Halley steps from a close first guess (after
    Numerical Recipes' invbetai), bisection-safe."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    a1, b1 = a - 1.0, b - 1.0
    if a >= 1.0 and b >= 1.0:
        pp = p if p < 0.5 else 1.0 - p
        t = math.sqrt(-2.0 * math.log(pp))
        x = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t
        if p < 0.5:
            x = -x
        al = (x * x - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = (x * math.sqrt(al + h) / h
             - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (al + 5.0 / 6.0 - 2.0 / (3.0 * h)))
        x = a / (a + b * math.exp(2.0 * w))
    else:
        lna, lnb = math.log(a / (a + b)), math.log(b / (a + b))
        t = math.exp(a * lna) / a
        u = math.exp(b * lnb) / b
        w = t + u
        x = (p * w * a) ** (1.0 / a) if p < t / w else 1.0 - (b * w * (1.0 - p)) ** (1.0 / b)
    afac = -math.lgamma(a) - math.lgamma(b) + math.lgamma(a + b)
    lo, hi = 0.0, 1.0
    previous = None
    for _ in range(200):
        if not lo < x < hi:
            x = (lo + hi) / 2.0
        err = betainc(a, b, x) - p
        if abs(err) < 1e-12:
            return x
        if err < 0:
            lo = x
        else:
            hi = x
        density = math.exp(a1 * math.log(x) + b1 * math.log1p(-x) + afac)
        new = None
        if density > 0.0 and (previous is None or abs(err) < 0.5 * abs(previous)):
            u = err / density
            new = x - u / (1.0 - 0.5 * min(1.0, u * (a1 / x - b1 / (1.0 - x))))
        if new is None or not lo < new < hi:
            new = (lo + hi) / 2.0  # Newton would leave the bracket or is crawling: bisect
        previous = err
        if abs(new - x) < 1e-11 or hi - lo < 1e-13:
            return new
        x = new
    return x


@lru_cache(maxsize=65536)
def posterior(x: float, n: float, m: float, k: float, level: float) -> tuple:
    """Shrunk rate (x + k·m) / (n + k) and the central `level` interval of the posterior
    Beta(x + k·m, n − x + k·(1 − m))."""
    a = max(x + k * m, 1e-3)
    b = max(n - x + k * (1.0 - m), 1e-3)
    tail = (1.0 - level) / 2.0
    return (x + k * m) / (n + k), (beta_ppf(tail, a, b), beta_ppf(1.0 - tail, a, b))


# --- weights ------------------------------------------------------------------------------------

@dataclass
class Weights:
    version: int
    weights: dict
    thresholds: dict

    @property
    def total(self) -> float:
        return sum(self.weights.values())


def current_weights() -> Weights:
    row = db.session.scalar(select(ScoringWeights).order_by(ScoringWeights.id.desc()).limit(1))
    if row is None:
        return Weights(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_THRESHOLDS))
    weights = {k.name: float(row.weights.get(k.name, 0) or 0) for k in KPIS}
    return Weights(row.id, weights, {**DEFAULT_THRESHOLDS, **(row.thresholds or {})})


def save_weights(ctx: Ctx, weights: dict, thresholds: dict, note: str | None = None
                 ) -> ScoringWeights:
    """Store a new version of the weights and tier thresholds (admins only; audited)."""
    errors = {}
    clean = {}
    for kpi in KPIS:
        value = weights.get(kpi.name, 0) or 0
        try:
            value = float(value)
        except (TypeError, ValueError):
            errors[kpi.name] = _l("Enter a number.")
            continue
        if not 0 <= value <= 100:
            errors[kpi.name] = _l("Enter a weight between 0 and 100.")
        clean[kpi.name] = value
    if not errors and sum(clean.values()) <= 0:
        errors["weights"] = _l("At least one weight must be above zero.")
    limits = {}
    for key, default in DEFAULT_THRESHOLDS.items():
        value = thresholds.get(key, default)
        try:
            value = float(value)
        except (TypeError, ValueError):
            errors[key] = _l("Enter a number.")
            continue
        if not 0 <= value <= (100 if not key.endswith("sample") else 100_000):
            errors[key] = _l("Out of range.")
        limits[key] = int(value) if key.endswith("sample") else value
    if not errors and not limits["watch"] <= limits["core"] <= limits["strategic"]:
        errors["strategic"] = _l("The thresholds must rise: watch ≤ core ≤ strategic.")
    if errors:
        raise ValidationFailed(errors)
    row = ScoringWeights(weights=clean, thresholds=limits, note=(note or "").strip() or None,
                         created_by_id=ctx.user.id if ctx.user else None)
    db.session.add(row)
    db.session.flush()
    audit.record(ctx, "scoring.weights", row, weights=clean, thresholds=limits)
    return row


# --- from figures to a card ---------------------------------------------------------------------

def raw_tier(composite: float, sample_size: int, thresholds: dict) -> str:
    """The tier the composite gives, capped when the period's sample is small."""
    if composite >= thresholds["strategic"] and sample_size >= thresholds["strategic_min_sample"]:
        return "strategic"
    if composite >= thresholds["core"] and sample_size >= thresholds["core_min_sample"]:
        return "core"
    if composite >= thresholds["watch"] or sample_size < thresholds["core_min_sample"]:
        return "watch"
    return "exit"


def step_tier(state: tuple | None, raw: str) -> tuple:
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


@dataclass
class Priors:
    """What an organisation's card is shrunk toward and scored against: per KPI the portfolio
    value (rates: pooled rate; hours: the referral-weighted typical median; volume: the 90th
    percentile partner)."""

    values: dict = field(default_factory=dict)


def portfolio_priors(per_org: dict) -> Priors:
    """Pool the organisations' figures of one period into the portfolio's priors."""
    priors = Priors()
    for kpi in KPIS:
        name = kpi.name
        if kpi.kind == "rate":
            x = sum(f.get(f"{name}__x", 0.0) for f in per_org.values())
            n = sum(f.get(f"{name}__n", 0.0) for f in per_org.values())
            priors.values[name] = {"value": x / n if n else None, "x": x, "n": n}
        elif kpi.kind == "hours":
            pairs = [(f[f"{name}__n"], f[f"{name}__v"]) for f in per_org.values()
                     if f.get(f"{name}__n")]
            n = sum(p[0] for p in pairs)
            value = sum(p[0] * p[1] for p in pairs) / n if n else None
            priors.values[name] = {"value": value, "n": n}
        else:
            values = sorted(f.get(f"{name}__sum", 0.0) for f in per_org.values()
                            if f.get(f"{name}__sum"))
            total = sum(values)
            p90 = values[min(len(values) - 1, int(0.9 * (len(values) - 1) + 0.5))] if values \
                else None
            priors.values[name] = {"value": total, "p90": p90, "n": len(values)}
    return priors


def _score(kpi: KPI, value: float | None, prior: dict) -> float | None:
    if value is None:
        return None
    if kpi.worst is None:  # volume: against the 90th-percentile partner
        ref = prior.get("p90")
        return min(1.0, value / ref) if ref else None
    span = kpi.best - kpi.worst
    return min(1.0, max(0.0, (value - kpi.worst) / span))


def card(figures: dict, priors: Priors, weights: Weights, *, k: float | None = None,
         level: float | None = None) -> dict:
    """One organisation's card for one period: {kpis, composite, sample_size, extra}."""
    k = float(setting("SCORING_PRIOR_STRENGTH") if k is None else k)
    level = float(setting("SCORING_INTERVAL") if level is None else level)
    kpis: dict = {}
    for kpi in KPIS:
        prior = priors.values.get(kpi.name, {})
        m = prior.get("value")
        entry: dict = {"raw": None, "value": None, "n": 0, "interval": None}
        if kpi.kind == "rate":
            x, n = figures.get(f"{kpi.name}__x", 0.0), figures.get(f"{kpi.name}__n", 0.0)
            entry.update(n=int(n), x=int(x), raw=(x / n) if n else None)
            if m is not None:
                entry["value"], entry["interval"] = posterior(x, n, m, k, level)
                entry["interval"] = [round(entry["interval"][0], 4),
                                     round(entry["interval"][1], 4)]
            else:
                entry["value"] = entry["raw"]
        elif kpi.kind == "hours":
            n = figures.get(f"{kpi.name}__n", 0.0)
            raw = figures.get(f"{kpi.name}__v") if n else None
            entry.update(n=int(n), raw=raw)
            if kpi.shrink and m is not None:
                entry["value"] = (n * (raw or 0.0) + k * m) / (n + k)
            else:
                entry["value"] = raw
        else:
            total = figures.get(f"{kpi.name}__sum", 0.0)
            entry.update(raw=total, value=total, n=int(figures.get("referrals__sum", 0)))
        entry["score"] = _score(kpi, entry["value"], prior)
        kpis[kpi.name] = entry
    # composite: only KPIs with a weight and a score take part; their weights are renormalised
    used = {name: w for name, w in weights.weights.items()
            if w > 0 and kpis[name]["score"] is not None}
    total_weight = sum(used.values())
    composite = 0.0
    for name, entry in kpis.items():
        w = used.get(name, 0.0)
        entry["weight"] = weights.weights.get(name, 0.0)
        entry["max_points"] = round(100.0 * w / total_weight, 2) if total_weight else 0.0
        contribution = 100.0 * w * entry["score"] / total_weight if w and total_weight else 0.0
        entry["contribution"] = round(contribution, 2)
        composite += contribution
        for key in ("value", "raw", "score"):
            if entry[key] is not None:
                entry[key] = round(entry[key], 6)
    sample = int(figures.get("referrals__sum", 0))
    decided = figures.get("approval_rate__n", 0.0)
    extra = {
        "mix": {str(c): int(figures.get(f"extra__class_{c}", 0)) for c in (1, 2, 3)},
        "split": {
            "decided": int(decided),
            "bank_hours": figures.get("extra__bank_seconds", 0.0) / decided / 3600
            if decided else None,
            "partner_hours": figures.get("extra__partner_seconds", 0.0) / decided / 3600
            if decided else None,
        },
        "requested_amount": figures.get("extra__requested_amount", 0.0),
    }
    return {"kpis": kpis, "composite": round(composite, 1) if total_weight else None,
            "sample_size": sample, "extra": extra}


def portfolio_card(priors: Priors, figures: list[dict]) -> dict:
    kpis = {}
    for kpi in KPIS:
        prior = priors.values.get(kpi.name, {})
        kpis[kpi.name] = {"value": prior.get("value"), "raw": prior.get("value"),
                          "n": int(prior.get("n") or 0), "x": int(prior.get("x") or 0),
                          "p90": prior.get("p90"), "interval": None, "contribution": None}
    totals: dict = defaultdict(float)
    for f in figures:
        for key, v in f.items():
            if key.startswith("extra__") or key.endswith("__sum"):
                totals[key] += v
    decided = kpis["approval_rate"]["n"]
    extra = {
        "mix": {str(c): int(totals.get(f"extra__class_{c}", 0)) for c in (1, 2, 3)},
        "split": {"decided": decided,
                  "bank_hours": totals["extra__bank_seconds"] / decided / 3600 if decided else None,
                  "partner_hours": totals["extra__partner_seconds"] / decided / 3600
                  if decided else None},
        "requested_amount": totals.get("extra__requested_amount", 0.0),
        "partners": len(figures),
    }
    return {"kpis": kpis, "sample_size": int(totals.get("referrals__sum", 0)), "extra": extra}


def _priors_from_snapshot(snapshot: ScorecardSnapshot) -> Priors:
    return Priors({name: {"value": v.get("value"), "n": v.get("n"), "x": v.get("x"),
                          "p90": v.get("p90")} for name, v in (snapshot.kpis or {}).items()})


# --- recompute ----------------------------------------------------------------------------------

def partner_org_ids() -> list[int]:
    return list(db.session.scalars(select(Organization.id).where(Organization.kind != BANK_KIND)
                                   .order_by(Organization.id)))


@dataclass
class RecomputeResult:
    orgs: int
    snapshots: int
    seconds: float
    full: bool


def recompute_all(now: datetime | None = None) -> RecomputeResult:
    """Every partner's cards for the last 12 months and the rolling 90 days, the portfolio rows,
    hysteresis replayed month by month, and the tier states. Flushes; the caller commits."""
    return _recompute(now or utcnow(), None)


def recompute_org(org_id: int, now: datetime | None = None) -> RecomputeResult:
    """One partner's cards, shrunk toward the stored portfolio priors (a full recompute when
    there are none yet)."""
    return _recompute(now or utcnow(), [org_id])


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
    import time as _time

    started = _time.perf_counter()
    months = month_periods(now)
    rolling = rolling_period(now)
    weights = current_weights()
    full = org_ids is None
    families = [(months, "month"), ([rolling], "rolling90")]
    stored_priors: dict = {}
    if not full:
        for snap in db.session.scalars(select(ScorecardSnapshot).where(
                ScorecardSnapshot.org_id.is_(None))):
            stored_priors[(snap.period_kind, snap.period_key)] = _priors_from_snapshot(snap)
        needed = [(p.kind, p.key) for p in months + [rolling]]
        if any(key not in stored_priors for key in needed):
            full = True
    targets = partner_org_ids() if full else list(org_ids)
    # The change marks this computation answers for: those committed before it reads anything.
    # Marks committed meanwhile stay for the next run.
    marks = select(ScoreChange.id)
    if not full:
        marks = marks.where(ScoreChange.org_id.in_(targets))
    seen_marks = list(db.session.scalars(marks))
    sla = sla_by_org()
    default_sla = float(setting("SCORING_SLA_HOURS"))
    figures: dict = {}
    if full:
        for periods, _kind in families:
            figures.update({(o, p): f for (o, p), f in _aggregate(periods).items()})
    else:
        for org in targets:
            for periods, _kind in families:
                figures.update({(o, p): f for (o, p), f in _aggregate(periods, org).items()})
    period_list = months + [rolling]
    priors_by_period: dict = {}
    rows: list[dict] = []
    computed_at = utcnow()
    for period in period_list:
        per_org = {o: f for (o, p), f in figures.items() if p == period.key}
        if full:
            priors = portfolio_priors(per_org)
            pcard = portfolio_card(priors, list(per_org.values()))
            rows.append(_row(None, period, computed_at, pcard, weights.version))
        else:
            priors = stored_priors[(period.kind, period.key)]
        priors_by_period[period.key] = priors
    # per organisation: cards, then hysteresis over the months, then the rolling card
    base = _base_states(targets, months[0].key)
    states = []
    for org in targets:
        state = base.get(org)
        last_closed_state = state
        for period in months:
            c = card(figures.get((org, period.key), {}), priors_by_period[period.key], weights)
            c["extra"]["sla_hours"] = sla.get(org, default_sla)
            raw = raw_tier(c["composite"] or 0.0, c["sample_size"], weights.thresholds)
            state = step_tier(state, raw)
            c.update(raw_tier=raw, tier=state[0], pending_down=state[1])
            rows.append(_row(org, period, computed_at, c, weights.version))
            if period is not months[-1]:
                last_closed_state = state
        c = card(figures.get((org, rolling.key), {}), priors_by_period[rolling.key], weights)
        c["extra"]["sla_hours"] = sla.get(org, default_sla)
        raw = raw_tier(c["composite"] or 0.0, c["sample_size"], weights.thresholds)
        current = step_tier(last_closed_state, raw)
        c.update(raw_tier=raw, tier=current[0], pending_down=current[1])
        rows.append(_row(org, rolling, computed_at, c, weights.version))
        states.append((org, current, c["composite"], months[-2].key if len(months) > 1 else None))
    _store(rows, targets, full, [p.key for p in months] + [rolling.key])
    _store_states(states, computed_at)
    for i in range(0, len(seen_marks), 1000):
        db.session.execute(delete(ScoreChange).where(ScoreChange.id.in_(seen_marks[i:i + 1000])))
    db.session.flush()
    return RecomputeResult(len(targets), len(rows), _time.perf_counter() - started, full)


def _row(org_id, period: Period, computed_at, c: dict, version) -> dict:
    return {"org_id": org_id, "period_kind": period.kind, "period_key": period.key,
            "period_start": period.start, "period_end": period.end, "computed_at": computed_at,
            "sample_size": c.get("sample_size", 0), "composite": c.get("composite"),
            "raw_tier": c.get("raw_tier"), "tier": c.get("tier"),
            "pending_down": c.get("pending_down", 0), "weights_version": version,
            "kpis": c["kpis"], "extra": c.get("extra")}


def _base_states(org_ids: list[int], first_key: str) -> dict:
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


def _store(rows: list[dict], org_ids: list[int], full: bool, keys: list[str]) -> None:
    table = ScorecardSnapshot.__table__
    stmt = delete(table).where(table.c.period_key.in_(keys))
    if not full:
        stmt = stmt.where(table.c.org_id.in_(org_ids))
    db.session.execute(stmt)
    for i in range(0, len(rows), 1000):
        db.session.execute(insert(table), rows[i:i + 1000])


def _store_states(states: list, computed_at: datetime) -> None:
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


# --- staleness ----------------------------------------------------------------------------------

_MARK_STALE = insert(ScoreChange.__table__)


def mark_stale(org_id: int | None) -> None:
    """A referral of this organisation changed: its cards need a recompute (cheap append)."""
    if org_id is not None:
        db.session.execute(_MARK_STALE, {"org_id": org_id, "at": utcnow()})


def stale_org_ids() -> list[int]:
    return list(db.session.scalars(select(ScoreChange.org_id).distinct()))


def recompute_stale(now: datetime | None = None) -> RecomputeResult | None:
    """Bring the stale organisations' cards up to date: one by one when few, else everything."""
    org_ids = stale_org_ids()
    if not org_ids:
        return None
    if len(org_ids) > setting("SCORING_INCREMENTAL_MAX_ORGS"):
        return recompute_all(now)
    return _recompute(now or utcnow(), org_ids)


def maintain(now: datetime | None = None) -> int:
    """For the worker's housekeeping: everything once the bank's day has turned since the last
    full computation (the rolling window and the months move), else the stale partners only.
    Commits. Returns how many partners were recomputed."""
    now = now or utcnow()
    last = db.session.scalar(select(func.max(ScorecardSnapshot.computed_at)).where(
        ScorecardSnapshot.org_id.is_(None), ScorecardSnapshot.period_kind == "rolling90"))
    tz = bank_tz()
    if last is None or last.astimezone(tz).date() != now.astimezone(tz).date():
        if last is None and not db.session.scalar(select(func.count(Referral.id))):
            return 0
        result = recompute_all(now)
    else:
        result = recompute_stale(now)
    db.session.commit()
    return result.orgs if result else 0


# --- reading snapshots --------------------------------------------------------------------------

def current_card(org_id: int) -> ScorecardSnapshot | None:
    return db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id == org_id, ScorecardSnapshot.period_kind == "rolling90",
        ScorecardSnapshot.period_key == "current"))


def portfolio_snapshot(kind: str = "rolling90", key: str = "current"
                       ) -> ScorecardSnapshot | None:
    return db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id.is_(None), ScorecardSnapshot.period_kind == kind,
        ScorecardSnapshot.period_key == key))


def monthly_cards(org_id: int | None) -> list[ScorecardSnapshot]:
    cond = (ScorecardSnapshot.org_id.is_(None) if org_id is None
            else ScorecardSnapshot.org_id == org_id)
    rows = db.session.scalars(select(ScorecardSnapshot).where(
        cond, ScorecardSnapshot.period_kind == "month")
        .order_by(ScorecardSnapshot.period_key.desc()).limit(setting("SCORING_MONTHS")))
    return list(reversed(list(rows)))


def card_json(snapshot: ScorecardSnapshot, org_code: str | None = None) -> dict:
    """A card as the API gives it (CONTRACT.md): org_code, composite, tier, sample_size, kpis
    {name: {value, interval, contribution, raw, n}}; rates as fractions 0-1."""
    kpis = {}
    for kpi in KPIS:
        entry = (snapshot.kpis or {}).get(kpi.name) or {}
        kpis[kpi.name] = {
            "value": entry.get("value"),
            "raw": entry.get("raw"),
            "n": entry.get("n", 0),
            "interval": entry.get("interval") if kpi.kind == "rate" else None,
            "contribution": entry.get("contribution"),
            "kind": kpi.kind,
        }
    return {
        "org_code": org_code or (snapshot.org.code if snapshot.org else None),
        "period": {"kind": snapshot.period_kind, "key": snapshot.period_key,
                   "start": snapshot.period_start.isoformat(),
                   "end": snapshot.period_end.isoformat()},
        "computed_at": snapshot.computed_at.isoformat(),
        "composite": snapshot.composite,
        "tier": snapshot.tier,
        "sample_size": snapshot.sample_size,
        "weights_version": snapshot.weights_version,
        "kpis": kpis,
    }
