"""Whether the portal can serve: what /healthz reports."""

from __future__ import annotations

from sqlalchemy import text

from ..extensions import db


def database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 — any failure means "not healthy"
        db.session.rollback()
        return False
