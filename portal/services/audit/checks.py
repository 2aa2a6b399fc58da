"""Routine checks of the chain, for the worker's housekeeping and the admin page.

Every minute the entries added since the last good check are walked (cheap); every
AUDIT_FULL_VERIFY_HOURS the whole chain is (it finds an old entry changed); every AUDIT_ANCHOR_HOURS
an anchor of the head is stored for export. The page reads the recorded outcome, never walks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from models import AuditAnchor, AuditCheck, utcnow

from ...extensions import db
from .. import Ctx
from . import chain, record

KEEP_CHECKS = timedelta(days=30)


def _latest(*conditions) -> AuditCheck | None:
    return db.session.scalar(select(AuditCheck).where(*conditions)
                             .order_by(AuditCheck.id.desc()).limit(1))


def routine(now: datetime | None = None) -> dict:
    """One housekeeping round: a walk (incremental, or full when due) and an anchor when due."""
    now = now or utcnow()
    config = current_app.config
    done: dict = {}
    full_every = config["AUDIT_FULL_VERIFY_HOURS"]
    last_full = _latest(AuditCheck.kind == "full")
    last = _latest()
    if full_every and (last_full is None or now - last_full.at >= timedelta(hours=full_every)):
        verdict, kind = chain.walk(anchors=chain.stored_anchors()), "full"
    else:
        good = _latest(AuditCheck.ok.is_(True))
        start_seq, start_hash = (good.last_seq, good.last_hash) if good else (0, chain.GENESIS)
        if good is not None and chain.head()[0] == start_seq and last is good:
            verdict, kind = None, "incremental"  # nothing new since the last good check
        else:
            verdict, kind = chain.walk(after_seq=start_seq, after_hash=start_hash,
                                       anchors=chain.stored_anchors()), "incremental"
    same_break = (verdict is not None and not verdict.ok and last is not None and not last.ok
                  and last.broken_seq == verdict.broken_seq and kind == "incremental")
    if verdict is not None and not same_break:
        chain.record_check(verdict, kind=kind, made_by="housekeeping", now=now)
        done[f"audit_{kind}_check"] = "ok" if verdict.ok else f"broken at #{verdict.broken_seq}"
    anchor_every = config["AUDIT_ANCHOR_HOURS"]
    last_anchor = db.session.scalar(select(AuditAnchor).order_by(AuditAnchor.id.desc()).limit(1))
    seq = chain.head()[0]
    if anchor_every and seq and (last_anchor is None or (
            now - last_anchor.at >= timedelta(hours=anchor_every) and seq > last_anchor.seq)):
        anchor = anchor_now(Ctx(user=None), "housekeeping", now)
        done["audit_anchor"] = anchor.seq
    db.session.execute(delete(AuditCheck).where(
        AuditCheck.at < now - KEEP_CHECKS,
        AuditCheck.id.not_in([c.id for c in (last_full, _latest(AuditCheck.ok.is_(True))) if c])))
    return done


def anchor_now(ctx: Ctx, made_by: str, now: datetime | None = None) -> AuditAnchor:
    """Store the head as an anchor, and say so in the trail (the entry comes after it)."""
    anchor = chain.make_anchor(made_by, now)
    record(ctx, "audit.anchor", None, seq=anchor.seq, hash=anchor.hash, made_by=made_by)
    return anchor


@dataclass
class ChainState:
    """What the admin page says about the chain."""

    head_seq: int
    last: AuditCheck | None
    last_full: AuditCheck | None
    last_good: AuditCheck | None
    last_anchor: AuditAnchor | None


def state() -> ChainState:
    return ChainState(
        head_seq=chain.head()[0], last=_latest(), last_full=_latest(AuditCheck.kind == "full"),
        last_good=_latest(AuditCheck.ok.is_(True)),
        last_anchor=db.session.scalar(select(AuditAnchor).order_by(AuditAnchor.id.desc())
                                      .limit(1)))
