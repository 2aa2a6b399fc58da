"""Refused access, recorded even though the refused request's own work rolls back.

Each entry is written through a session of its own on its own connection, committed at once:
the request's rollback cannot take it away. A flood cannot fill the disk: per address and minute
the first AUDIT_DENIED_PER_MINUTE refusals are recorded one by one, the rest only counted (one
small counter row per address and minute), and housekeeping writes what was dropped as one entry.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import AuditDenialCount, utcnow

from ...extensions import db
from .. import Ctx
from . import insert_entry, record, values

log = logging.getLogger(__name__)
_COUNT = AuditDenialCount.__table__


def _count_statement(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_COUNT)
    return statement.on_conflict_do_update(
        index_elements=["ip", "window_start"], set_={"hits": _COUNT.c.hits + 1},
    ).returning(_COUNT.c.hits)


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def record_denied(ctx: Ctx, action: str, *, target_type: str | None = None, target_id=None,
                  email: str | None = None, **detail) -> bool:
    """Record a refusal in a transaction of its own, within the per-address cap. True if an entry
    was written; a failure to write is logged, never raised (the refusal stands either way)."""
    now = utcnow()
    cap = current_app.config["AUDIT_DENIED_PER_MINUTE"]
    try:
        with Session(db.engine) as session, session.begin():
            hits = session.execute(_count_statement(db.engine.dialect.name), {
                "ip": (ctx.ip or "")[:64], "window_start": _minute(now), "hits": 1}).scalar_one()
            if hits > cap:
                return False
            insert_entry(session, values(ctx, action, email=email, target_type=target_type,
                                         target_id=target_id, detail=detail))
        return True
    except SQLAlchemyError:
        log.warning("could not record a denied request (%s)", action, exc_info=True)
        return False


def summarise_dropped(ctx: Ctx, now: datetime | None = None, *, top: int = 20) -> int:
    """Housekeeping: one entry for the refusals counted but not recorded in the minutes that are
    over, and those minutes' counters cleared. Returns how many were dropped."""
    cap = current_app.config["AUDIT_DENIED_PER_MINUTE"]
    # A minute's slack: a request that began in the last minute may still count in it.
    before = _minute(now or utcnow()) - timedelta(minutes=1)
    rows = db.session.execute(select(_COUNT.c.ip, _COUNT.c.window_start, _COUNT.c.hits)
                              .where(_COUNT.c.window_start < before, _COUNT.c.hits > cap)).all()
    dropped: dict[str, int] = {}
    for row in rows:
        dropped[row.ip] = dropped.get(row.ip, 0) + row.hits - cap
    if rows:
        busiest = sorted(dropped.items(), key=lambda item: (-item[1], item[0]))[:top]
        record(ctx, "access.denied_dropped", dropped=sum(dropped.values()),
               addresses=len(dropped), per_minute_cap=cap,
               since=min(r.window_start for r in rows).isoformat(),
               until=(max(r.window_start for r in rows) + timedelta(minutes=1)).isoformat(),
               busiest=[[ip, count] for ip, count in busiest])
    db.session.execute(delete(_COUNT).where(_COUNT.c.window_start < before))
    return sum(dropped.values())
