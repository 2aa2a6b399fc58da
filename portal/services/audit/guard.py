"""The append-only guard's one exception: maintenance that may delete audit rows.

The triggers (migration 0007) refuse UPDATE and DELETE on audit_entry unless the statement runs
inside `maintenance()`: on PostgreSQL a transaction-local setting, on SQLite a function the
application registers on its own connections that answers from this process's context. Nothing in
the application uses it; the test suite clears its rows with it. A DBA can always disable a
trigger: the hash chain and the anchors kept elsewhere are what show that (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

_MAINTENANCE: ContextVar[bool] = ContextVar("audit_maintenance", default=False)


@event.listens_for(Engine, "connect")
def _register_sqlite_function(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.create_function("portal_audit_maintenance", 0,
                                         lambda: 1 if _MAINTENANCE.get() else 0)


@contextmanager
def maintenance(session: Session) -> Iterator[None]:
    """Let the block's statements delete audit rows (its transaction only, on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('portal.audit_maintenance', 'on', true)"))
    token = _MAINTENANCE.set(True)
    try:
        yield
    finally:
        _MAINTENANCE.reset(token)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('portal.audit_maintenance', 'off', true)"))
