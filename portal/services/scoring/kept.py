"""What the cockpit read, kept until the scores or the directory change.

The cockpit's ranking, roll-up, trend and filter choices change only when the scoring job
writes cards or when a partner, a branch or a member of staff changes; reading and drawing them
again on every view was most of the page (issue 15). Each view reads the basis (the latest
card's `computed_at` and the directory's stamp, kept by triggers: migration 0024) in one
indexed statement, and a kept entry serves only while the basis it was made under holds. What
moves between scoring runs (the leads exchanged, the reviews due, the stale partners, the
menu) is read on every view, not kept.

Each process keeps its own entries, for one application: gunicorn's workers agree because each
compares the basis with the database, not with one another.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from models import DirectoryStamp, ScorecardSnapshot

from ...extensions import db

# How many entries a process keeps (viewers by filters by page; a ranking's page is about
# 150 KB); the least recently read go.
ENTRIES = 64

_BASIS = select(
    select(func.max(ScorecardSnapshot.computed_at)).scalar_subquery(),
    select(DirectoryStamp.stamp).where(DirectoryStamp.id == 1).scalar_subquery())


def basis() -> tuple:
    """What a kept entry depends on, as the database holds it now."""
    return tuple(db.session.execute(_BASIS).one())


class KeptPanels:
    """Entries made under one basis; a new basis drops them all."""

    def __init__(self, size: int = ENTRIES) -> None:
        self._size = size
        self._basis: tuple | None = None
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = Lock()

    def read(self, now: tuple, key: Hashable, make: Callable[[], Any]) -> Any:
        """The entry for `key` made under basis `now`, made and kept if there is none. The
        basis is read before `make` reads anything, so an entry is never older than its basis
        says (a change committed in between only makes the next view read again)."""
        with self._lock:
            if now != self._basis:
                self._entries.clear()
                self._basis = now
            elif key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = make()
        with self._lock:
            if now == self._basis:
                self._entries[key] = value
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def panels() -> KeptPanels:
    """This application's kept cockpit panels."""
    return current_app.extensions.setdefault("kept_cockpit_panels", KeptPanels())
