"""The hash chain: linking entries as their transaction commits, and walking it to verify.

An entry is inserted like any row, in its transaction, with no place in the chain yet (a refused
request's entries vanish with its rollback, savepoints included). When that transaction commits,
`seal` takes the chain head's row lock (the one UPDATE that serialises appends: a row lock on
PostgreSQL, the write lock on SQLite), gives the transaction's entries the next positions, links
each to the previous entry's hash and moves the head, all in the committing transaction. The lock
is held only from there to the COMMIT: concurrent writers queue briefly and cannot fork the chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import Session

from models import AuditAnchor, AuditChainHead, AuditCheck, AuditEntry, utcnow
from models.audit import GENESIS, entry_hash

from ...extensions import db
from .. import sql

# session.info key: this transaction inserted entries that need their place in the chain.
UNSEALED = "audit_unsealed"

_ENTRY = AuditEntry.__table__
_HEAD = AuditChainHead.__table__
_CONTENT = (_ENTRY.c.id, _ENTRY.c.at, _ENTRY.c.actor_id, _ENTRY.c.actor_email, _ENTRY.c.action,
            _ENTRY.c.target_type, _ENTRY.c.target_id, _ENTRY.c.ip, _ENTRY.c.detail)
# Taking the head's lock and reading it in one statement (a write first: on SQLite a read first
# would leave the transaction on a snapshot another writer may move past).
_LOCK_HEAD = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq)
              .returning(_HEAD.c.seq, _HEAD.c.hash))
_UNSEALED = (select(*_CONTENT).where(_ENTRY.c.seq.is_(None), _ENTRY.c.id > bindparam("after"))
             .order_by(_ENTRY.c.id).limit(bindparam("batch")))
_LINK = (update(_ENTRY).where(_ENTRY.c.id == bindparam("row_id"))
         .values(seq=bindparam("s"), prev_hash=bindparam("p"), hash=bindparam("h")))
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(
    seq=bindparam("s"), hash=bindparam("h"), updated_at=bindparam("at"))


@event.listens_for(Session, "before_commit")
def _seal_on_commit(session: Session) -> None:
    # Fired for savepoints too: only the real commit links entries.
    if session.in_nested_transaction() or not session.info.pop(UNSEALED, False):
        return
    # The commit would flush what is left after this hook: flushed first, the head's lock is the
    # transaction's last, so a writer holding it never waits on a row another writer holds.
    session.flush()
    seal(session)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(UNSEALED, None)


def seal(session: Session, batch: int = 5000) -> int:
    """Link this transaction's new entries into the chain; the number linked. In batches: a
    bulk load of entries (a migration, a benchmark's seed) is linked without holding it all."""
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).first()
    if head is None:  # a schema built without the migration's head row
        connection.execute(_HEAD.insert().values(id=1, seq=0, hash=GENESIS, updated_at=utcnow()))
        head = connection.execute(_LOCK_HEAD).first()
    seq, last = head
    linked, after = 0, 0
    while rows := connection.execute(_UNSEALED, {"after": after, "batch": batch}).all():
        links = []
        for row_id, at, actor_id, actor_email, action, target_type, target_id, ip, detail in rows:
            seq += 1
            digest = entry_hash({"seq": seq, "at": at, "actor_id": actor_id,
                                 "actor_email": actor_email, "action": action,
                                 "target_type": target_type, "target_id": target_id, "ip": ip,
                                 "detail": detail}, last)
            links.append({"row_id": row_id, "s": seq, "p": last, "h": digest})
            last = digest
        _link(connection, links)
        linked, after = linked + len(rows), rows[-1][0]
    if linked:
        connection.execute(_MOVE_HEAD, {"s": seq, "h": last, "at": utcnow()})
    return linked


# From this many entries a commit on PostgreSQL links them with one UPDATE ... FROM a staged copy
# of the links (an import batch's entries), not one UPDATE each.
STAGE_FROM = 100


def _link(connection, links: list[dict]) -> None:
    stage = sql.staged(_ENTRY, [{"id": link["row_id"], "seq": link["s"], "prev_hash": link["p"],
                                 "hash": link["h"]} for link in links], "seal",
                       connection=connection) if len(links) >= STAGE_FROM else None
    if stage is None:
        connection.execute(_LINK, links)
        return
    connection.execute(update(_ENTRY).where(_ENTRY.c.id == stage.c.id).values(
        seq=stage.c.seq, prev_hash=stage.c.prev_hash, hash=stage.c.hash))


def head() -> tuple[int, str]:
    row = db.session.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


# --- verification --------------------------------------------------------------------------

@dataclass
class Anchor:
    seq: int
    hash: str
    at: str = ""
    source: str = "database"


@dataclass
class Verdict:
    ok: bool = True
    first_seq: int = 1
    last_seq: int = 0
    last_hash: str = GENESIS
    entries: int = 0
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str | None = None
    unsealed: int = 0
    anchors_checked: list[Anchor] = field(default_factory=list)

    def fail(self, seq: int, problem: str, row_id: int | None = None) -> Verdict:
        self.ok, self.broken_seq, self.broken_id, self.problem = False, seq, row_id, problem
        return self


_WALK = (select(*_CONTENT, _ENTRY.c.seq, _ENTRY.c.prev_hash, _ENTRY.c.hash)
         .where(_ENTRY.c.seq >= bindparam("from_seq"), _ENTRY.c.seq <= bindparam("to_seq"))
         .order_by(_ENTRY.c.seq).limit(bindparam("batch")))


def _rows(from_seq: int, to_seq: int, batch: int) -> Iterator[tuple]:
    while from_seq <= to_seq:
        # Plain tuples: at a million rows, building a mapping per row costs more than hashing.
        rows = db.session.execute(_WALK, {"from_seq": from_seq, "to_seq": to_seq,
                                          "batch": batch}).tuples().all()
        if not rows:
            return
        yield from rows
        from_seq = rows[-1][9] + 1


def walk(*, after_seq: int = 0, after_hash: str = GENESIS, anchors: Iterable[Anchor] = (),
         batch: int = 5000) -> Verdict:
    """Walk the chain from the entry after `after_seq` (whose hash was `after_hash`) to the head,
    `batch` rows at a time, and say where it first breaks. Anchors are checked on the way."""
    end, head_hash = head()
    verdict = Verdict(first_seq=after_seq + 1, last_seq=after_seq, last_hash=after_hash)
    pending = sorted((a for a in anchors if a.seq > after_seq), key=lambda a: a.seq)
    expected, prev = after_seq + 1, after_hash
    for (row_id, at, actor_id, actor_email, action, target_type, target_id, ip, detail, seq,
         prev_hash, digest) in _rows(expected, end, batch):
        if seq != expected:
            gap = f"#{expected}" if seq == expected + 1 else f"#{expected}–#{seq - 1}"
            return verdict.fail(expected, f"entry {gap} is missing (deleted); the chain "
                                          f"resumes at #{seq}")
        fields = {"seq": seq, "at": at, "actor_id": actor_id, "actor_email": actor_email,
                  "action": action, "target_type": target_type, "target_id": target_id,
                  "ip": ip, "detail": detail}
        if entry_hash(fields, prev_hash) != digest:
            return verdict.fail(seq, f"entry #{seq} (id {row_id}) was changed: its content "
                                     "no longer matches its hash", row_id)
        if prev_hash != prev:
            return verdict.fail(seq - 1, f"entry #{seq - 1} was changed or replaced: entry "
                                         f"#{seq} links to a different hash")
        while pending and pending[0].seq == seq:
            anchor = pending.pop(0)
            if anchor.hash != digest:
                return verdict.fail(seq, f"entry #{seq} (id {row_id}) differs from the "
                                         f"{anchor.source} anchor of {anchor.at}", row_id)
            verdict.anchors_checked.append(anchor)
        verdict.entries += 1
        expected, prev = seq + 1, digest
    verdict.last_seq, verdict.last_hash = expected - 1, prev
    if expected <= end:
        gap = f"#{expected}" if expected == end else f"#{expected}–#{end}"
        return verdict.fail(expected, f"entry {gap} at the end of the chain is missing "
                                      "(deleted); the head records more")
    if end > after_seq and prev != head_hash:
        return verdict.fail(end, f"entry #{end} does not match the chain head's hash")
    if pending:
        anchor = pending[0]
        return verdict.fail(end + 1, f"the chain ends at #{end}, but the {anchor.source} "
                                     f"anchor of {anchor.at} vouches for #{anchor.seq}: "
                                     "entries were removed")
    verdict.unsealed = db.session.scalar(
        select(func.count()).select_from(_ENTRY).where(_ENTRY.c.seq.is_(None))) or 0
    return verdict


def stored_anchors() -> list[Anchor]:
    return [Anchor(a.seq, a.hash, f"{a.at:%Y-%m-%d %H:%M} UTC")
            for a in db.session.scalars(select(AuditAnchor).order_by(AuditAnchor.seq))]


def record_check(verdict: Verdict, *, kind: str, made_by: str,
                 now: datetime | None = None) -> AuditCheck:
    check = AuditCheck(at=now or utcnow(), kind=kind, made_by=made_by, ok=verdict.ok,
                       first_seq=verdict.first_seq, last_seq=verdict.last_seq,
                       last_hash=verdict.last_hash, entries=verdict.entries,
                       broken_seq=verdict.broken_seq,
                       problem=(verdict.problem or "")[:500] or None)
    db.session.add(check)
    db.session.flush()
    return check


def make_anchor(made_by: str, now: datetime | None = None) -> AuditAnchor:
    seq, digest = head()
    anchor = AuditAnchor(seq=seq, hash=digest, at=now or utcnow(), made_by=made_by)
    db.session.add(anchor)
    db.session.flush()
    return anchor
