"""Login throttles every process shares: in Redis when REDIS_URL is set, in the database
otherwise.

Flask-Limiter's memory store is per process: with two gunicorn workers each had its own budget,
so an address got twice the tries. Here a counter is one Redis key or one database row, claimed
atomically (a Lua script; one INSERT … ON CONFLICT … RETURNING) before the attempt is checked,
so parallel attempts each get their own number.

Two uses: the per-address budget of login attempts (generous: a sales office shares an address)
and the per-account failure count of e-mail addresses that have no account. A real account's
failures are counted on its own row (`accounts.authenticate`); an unknown address gets the same
budget and the same lock here, so the answers cannot tell them apart.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from limits import parse
from sqlalchemy import case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from models import Throttle, utcnow

from ..extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    count: int  # this attempt's number in the window (0 while locked)
    locked_until: datetime | None = None

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


def key_for(kind: str, value: str) -> str:
    """Keys name no e-mail or address in clear."""
    digest = hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:40]
    return f"portal:throttle:{kind}:{digest}"


def limit_of(spec: str) -> tuple[int, int]:
    """'60 per 5 minutes' → (60, 300): the same notation as Flask-Limiter's."""
    item = parse(spec)
    return item.amount, item.get_expiry()


# --- the two stores ----------------------------------------------------------------------------

class DatabaseStore:
    """One row per key. Written through a connection of its own, committed at once: the count
    must hold whatever becomes of the request's transaction, and other processes must see it
    now. Call it before the request writes anything (SQLite lets one writer at a time)."""

    def claim(self, key: str, window: int) -> Claim:
        now = utcnow()
        table = Throttle.__table__
        dialect = db.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        locked = table.c.locked_until > now
        expired = table.c.window_ends_at <= now
        statement = insert(table).values(key=key, count=1,
                                         window_ends_at=now + timedelta(seconds=window),
                                         locked_until=None)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((locked, 0), (expired, 1), else_=table.c.count + 1),
                "window_ends_at": case((locked, table.c.window_ends_at),
                                       (expired, statement.excluded.window_ends_at),
                                       else_=table.c.window_ends_at),
                "locked_until": case((locked, table.c.locked_until), else_=None),
            },
        ).returning(table.c.count, table.c.locked_until)
        with db.engine.begin() as conn:
            count, locked_until = conn.execute(statement).one()
        return Claim(count, locked_until)

    def lock(self, key: str, until: datetime) -> None:
        with db.engine.begin() as conn:
            conn.execute(update(Throttle).where(Throttle.key == key)
                         .values(locked_until=until, count=0))

    def clear(self, key: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(delete(Throttle).where(Throttle.key == key))


# KEYS[1] counts, KEYS[2] marks a lock (its value: the lock's end, epoch seconds).
_CLAIM = """
local lock_ends = redis.call('GET', KEYS[2])
if lock_ends then return {0, lock_ends} end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, false}
"""


class RedisStore:
    def __init__(self, url: str):
        from redis import Redis

        self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._claim = self.redis.register_script(_CLAIM)

    def claim(self, key: str, window: int) -> Claim:
        count, until = self._claim(keys=[key, key + ":lock"], args=[window])
        if until:
            return Claim(0, datetime.fromtimestamp(float(until), UTC))
        return Claim(int(count))

    def lock(self, key: str, until: datetime) -> None:
        seconds = max(1, int((until - utcnow()).total_seconds()) + 1)
        pipe = self.redis.pipeline()
        pipe.set(key + ":lock", str(until.timestamp()), ex=seconds)
        pipe.delete(key)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.redis.delete(key, key + ":lock")


_redis_stores: dict[str, RedisStore] = {}
_database = DatabaseStore()


def _store():
    url = current_app.config.get("REDIS_URL")
    if not url:
        return _database
    if url not in _redis_stores:
        _redis_stores[url] = RedisStore(url)
    return _redis_stores[url]


def _call(method: str, *args):
    """On the configured store; when Redis cannot be reached, on the database (still shared by
    every process) rather than not at all."""
    store = _store()
    if store is not _database:
        from redis.exceptions import RedisError

        try:
            return getattr(store, method)(*args)
        except RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); using the database", exc)
    return getattr(_database, method)(*args)


def claim(key: str, window_seconds: int) -> Claim:
    return _call("claim", key, window_seconds)


def lock(key: str, until: datetime) -> None:
    _call("lock", key, until)


def clear(key: str) -> None:
    _call("clear", key)


def prune(now: datetime | None = None) -> int:
    """Forget windows and locks that have ended (database store; Redis keys expire)."""
    now = now or utcnow()
    return db.session.execute(delete(Throttle).where(
        Throttle.window_ends_at <= now,
        or_(Throttle.locked_until.is_(None), Throttle.locked_until <= now))).rowcount
