"""Portable SQL the KPI definitions are written in: the same expression on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Float, bindparam, case, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from models import Agreement, LoanPerformance, Referral, ReferralEvent

from .settings import setting


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


def flag(condition) -> ColumnElement:
    return case((condition, 1), else_=0)


EVER_CONFLICT = exists().where(ReferralEvent.referral_id == R.id,
                               ReferralEvent.to_state == "conflict")
BANK_SECONDS_TO_DECISION = seconds_between(R.decided_at, R.submitted_at) - R.partner_seconds
DECISION_TO_DISBURSEMENT = seconds_between(R.disbursed_at, R.decided_at)

# Per organisation, the bank's turnaround promise in its cooperation agreement in force (the
# shortest if several); organisations without one get SCORING_SLA_HOURS, read when the query runs.
SLA = (select(Agreement.org_id.label("org_id"), func.min(Agreement.bank_sla_hours).label("hours"))
       .where(Agreement.status == "active").group_by(Agreement.org_id).subquery("sla"))
SLA_JOIN = (SLA, SLA.c.org_id == R.org_id)
DEFAULT_SLA_HOURS = bindparam("default_sla_hours", type_=Float(),
                              callable_=lambda: float(setting("SCORING_SLA_HOURS")))
WITHIN_SLA = BANK_SECONDS_TO_DECISION <= func.coalesce(SLA.c.hours, DEFAULT_SLA_HOURS) * 3600.0
