"""The audit trail: append-only entries linked in a hash chain, the chain's head, anchors kept
elsewhere, verification runs and the per-address counters that cap denied-access entries.

How the chain works and what it proves: docs/audit.md."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import UTCDateTime, utcnow
from .user import User

# The first entry's "previous hash".
GENESIS = "0" * 64
# The fields an entry's hash covers, besides the previous hash (the database id is not one:
# a restore may number rows differently, the chain position `seq` is what counts).
HASHED_FIELDS = ("seq", "at", "actor_id", "actor_email", "action", "target_type", "target_id",
                 "ip", "detail")


def _iso(at: datetime) -> str:
    # Microseconds always written, so a value read back from either database gives one string.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.utcoffset():
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: dict, prev_hash: str) -> bytes:
    """The bytes an entry's hash is taken over: sorted-key compact JSON of its fields and the
    previous entry's hash."""
    document = {name: fields[name] for name in HASHED_FIELDS}
    document["at"] = _iso(document["at"])
    document["prev_hash"] = prev_hash
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(fields: dict, prev_hash: str) -> str:
    return hashlib.sha256(canonical(fields, prev_hash)).hexdigest()


class AuditEntry(db.Model):
    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_action", "action", "at"),
        Index("ix_audit_actor", "actor_email", "at"),
        Index("ix_audit_target", "target_type", "target_id", "at"),
        # The log filtered by a kind of target, newest first (issue 15).
        Index("ix_audit_target_type_at", "target_type", "at", "id"),
        Index("ix_audit_seq", "seq", unique=True),
        # Entries not yet linked: only ever the committing transaction's own (see chain.seal).
        Index("ix_audit_unsealed", "id", sqlite_where=text("seq IS NULL"),
              postgresql_where=text("seq IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Kept apart from actor_id so a failed login for an unknown e-mail is recorded too.
    actor_email: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSON)
    # The chain: position (gap-free, from the head), the previous entry's hash and this one's.
    # Set when the writing transaction commits; NULL only inside it.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship()


class AuditChainHead(db.Model):
    """One row: the last entry's position and hash. Appends update it under its row lock, which
    serialises them, and a verification compares the chain's end with it (removed tail)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditAnchor(db.Model):
    """The chain's head at a moment, to be exported and kept elsewhere: history up to it cannot
    be rewritten without the copy disagreeing."""

    __tablename__ = "audit_anchor"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    made_by: Mapped[str] = mapped_column(String(40))  # housekeeping | cli


class AuditCheck(db.Model):
    """One verification run, by the worker's housekeeping or the CLI: what the admin page shows
    instead of walking the chain on every view."""

    __tablename__ = "audit_check"
    __table_args__ = (Index("ix_audit_check_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # full | incremental
    made_by: Mapped[str] = mapped_column(String(40))
    ok: Mapped[bool]
    # Verified from first_seq to last_seq (with last_hash); or broken at broken_seq.
    first_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(String(500))


class AuditDenialCount(db.Model):
    """Denied requests per address and minute: the first AUDIT_DENIED_PER_MINUTE are recorded one
    by one, the rest only counted here, and housekeeping writes the count as one entry."""

    __tablename__ = "audit_denial_count"

    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
