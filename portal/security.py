"""Roles, decorators and the acting context that views hand to services."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, request, url_for
from flask_login import current_user, login_required

from models import BANK_ROLES, PARTNER_ROLES

from .services import Ctx


def ctx() -> Ctx:
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return Ctx(user=user, ip=request.remote_addr)


def roles_required(*roles: str):
    """Logged in, and holding one of `roles`; anyone else gets 403 (the page exists for staff)."""

    allowed = frozenset(roles)

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


partner_required = roles_required(*PARTNER_ROLES)
bank_required = roles_required(*BANK_ROLES)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no protocol-relative '//' trick, and no
    control character (a CR/LF would split the Location header: a 500 at best)."""
    if not target:
        return None
    target = target.strip().replace("\\", "/")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_for(user) -> str:
    if user.is_partner:
        return url_for("partner.dashboard")
    if user.role == "admin":
        return url_for("admin.dashboard")
    if user.role == "channel_manager":
        return url_for("bank.conflicts")
    return url_for("bank.queue")
