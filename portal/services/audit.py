from __future__ import annotations

from models import AuditEntry

from .. import extensions
from . import Ctx


def record(ctx: Ctx, action: str, target=None, *, email: str | None = None, **detail) -> None:
    if target is not None and target.id is None:
        extensions.db.session.flush()
    entry = AuditEntry(
        actor_id=ctx.user.id if ctx.user else None,
        actor_email=email or (ctx.user.email if ctx.user else None),
        action=action,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=str(target.id) if target is not None else None,
        ip=ctx.ip,
        detail=detail or None,
    )
    extensions.db.session.add(entry)
