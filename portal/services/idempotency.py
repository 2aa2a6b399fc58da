"""Idempotency-Key: the first response to a POST is kept and replayed for its retries.

A request claims (api key, Idempotency-Key) by inserting a row under a unique constraint, as the
first write of its transaction, and stores its response in that row in the same transaction as
its work: both are kept, or (the request failed) neither, and the key can be used again.
A concurrent duplicate's insert waits for the first transaction to end (the row lock on
PostgreSQL, the write lock on SQLite), then finds the finished row and replays it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update

from models import IdempotencyRecord, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from .errors import ValidationFailed
from .sql import per_dialect

MAX_KEY_LENGTH = 200


class KeyReused(ValidationFailed):
    code = "idempotency_key_reused"

    def __init__(self):
        super().__init__({"Idempotency-Key": _l("This key was already used with a different "
                                                "request.")},
                         _l("The Idempotency-Key was already used with a different request."))


@dataclass
class Claim:
    record_id: int
    # A finished earlier request with the same key and body: replay its stored response.
    replay: IdempotencyRecord | None = None


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise ValidationFailed({"Idempotency-Key": _l("Give 1 to %(n)d printable ASCII "
                                                      "characters.", n=MAX_KEY_LENGTH)})
    return key


def fingerprint(method: str, path: str, body) -> str:
    """SHA-256 of the request: JSON bodies canonically (key order and spacing do not count),
    anything else as the bytes given."""
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
    else:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                         default=str).encode()
    digest = hashlib.sha256()
    digest.update(f"{method.upper()} {path}\n".encode())
    digest.update(raw)
    return digest.hexdigest()


# Built once: every API POST with a key runs them.
_BY_KEY = (select(IdempotencyRecord)
           .where(IdempotencyRecord.api_key_id == bindparam("api_key_id"),
                  IdempotencyRecord.key == bindparam("key"))
           .execution_options(populate_existing=True))

_COMPLETE = (update(IdempotencyRecord.__table__)
             .where(IdempotencyRecord.__table__.c.id == bindparam("record_id")))


@per_dialect
def _claim(insert):
    return (insert(IdempotencyRecord.__table__)
            .on_conflict_do_nothing(index_elements=["api_key_id", "key"])
            .returning(IdempotencyRecord.__table__.c.id))


def _load(api_key_id: int, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(_BY_KEY, {"api_key_id": api_key_id, "key": key})


def finished(api_key_id: int, key: str, print_: str) -> IdempotencyRecord | None:
    """Read only: the finished earlier request with this key to replay, or None (KeyReused when
    its body was another). Lets a retry be answered before the request is checked again."""
    record = _load(api_key_id, key)
    if record is None or record.completed_at is None:
        return None
    if record.fingerprint != print_:
        raise KeyReused()
    return record


def claim(api_key_id: int, key: str, print_: str, *, now: datetime | None = None) -> Claim:
    """Claim the key for this request (no commit), or return the earlier request to replay."""
    now = now or utcnow()
    record_id = db.session.execute(_claim(), {"api_key_id": api_key_id, "key": key,
                                              "fingerprint": print_, "created_at": now}).scalar()
    if record_id is not None:
        return Claim(record_id)
    record = _load(api_key_id, key)
    if record is None:  # the other request failed and rolled back meanwhile: try again
        return claim(api_key_id, key, print_, now=now)
    if record.fingerprint != print_:
        raise KeyReused()
    # Claims are only ever committed together with their response.
    return Claim(record.id, replay=record)


def complete(claim_: Claim, status_code: int, body: str) -> None:
    """Store the response with the claim, in the request's transaction."""
    db.session.execute(_COMPLETE, {"record_id": claim_.record_id, "status_code": status_code,
                                   "response_body": body, "completed_at": utcnow()})


def purge(older_than: datetime) -> int:
    return db.session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.created_at < older_than)).rowcount or 0
