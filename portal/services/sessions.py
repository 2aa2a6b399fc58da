"""A user's own login sessions: what the account page lists, and ending the others.

A session's id is its secret (the cookie names it), so pages name a session by a digest of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from models import User, UserSession
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, accounts, audit
from .errors import NotFound


def public_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SessionView:
    public_id: str
    created_at: datetime
    last_seen_at: datetime
    ends_at: datetime
    ip: str | None
    browser: str
    current: bool


def _browser(user_agent: str | None) -> str:
    """A short name for a User-Agent string: enough to recognise one's own devices."""
    ua = user_agent or ""
    names = (("Edg/", "Edge"), ("MicroMessenger", "WeChat"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"))
    browser = next((name for marker, name in names if marker in ua), None)
    systems = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
               ("iPad", "iPad"), ("Mac OS X", "macOS"), ("Linux", "Linux"))
    system = next((name for marker, name in systems if marker in ua), None)
    if browser or system:
        return " · ".join(x for x in (browser, system) if x)
    return ua[:60] or "—"


def for_user(user: User, current_token: str | None, max_age: timedelta) -> list[SessionView]:
    rows = db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)
                              .order_by(UserSession.last_seen_at.desc()))
    return [SessionView(public_id(s.id), s.created_at, s.last_seen_at, s.created_at + max_age,
                        s.ip, _browser(s.user_agent), s.id == current_token) for s in rows]


def end_one(ctx: Ctx, user: User, session_public_id: str, current_token: str | None) -> None:
    for session in db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)):
        if public_id(session.id) == session_public_id and session.id != current_token:
            db.session.delete(session)
            audit.record(ctx, "session.end", user, browser=_browser(session.user_agent))
            return
    raise NotFound(_l("That session has already ended."))


def end_others(ctx: Ctx, user: User, current_token: str | None) -> int:
    ended = accounts.end_sessions(user, keep=current_token)
    audit.record(ctx, "session.end_others", user, ended=ended)
    return ended
