from __future__ import annotations

from sqlalchemy import insert

from models import AuditEntry, utcnow

from .. import extensions, unit_of_work
from . import Ctx

_INSERT = insert(AuditEntry.__table__)


def _row(ctx: Ctx, action: str, target, email: str | None, detail: dict) -> dict:
    return {
        "at": utcnow(),
        "actor_id": ctx.user.id if ctx.user else None,
        "actor_email": email or (ctx.user.email if ctx.user else None),
        "action": action,
        "target_type": type(target).__name__.lower() if target is not None else None,
        "target_id": str(target.id) if target is not None else None,
        "ip": ctx.ip,
        "detail": detail or None,
    }


def record(ctx: Ctx, action: str, target=None, *, email: str | None = None, **detail) -> None:
    if target is not None and target.id is None:
        extensions.db.session.flush()
    # A plain INSERT: nothing reads the entry back, and the unit of work would cost more.
    extensions.db.session.execute(_INSERT, _row(ctx, action, target, email, detail))


def record_refusal(ctx: Ctx, action: str, target=None, **detail) -> None:
    """Audit a refusal that the caller is about to raise: the raise rolls back the request's
    work, so the entry is written in a transaction of its own (unit_of_work.apart)."""
    row = _row(ctx, action, target, None, detail)
    unit_of_work.apart(lambda session: session.execute(_INSERT, row))
