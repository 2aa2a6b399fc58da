"""Roles, decorators and the acting context that views hand to services."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from models import BANK_ROLES, PARTNER_ROLES

from .services import Ctx
from .services.audit import denied


def ctx() -> Ctx:
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return Ctx(user=user, ip=request.remote_addr)


def record_refusal(status: int) -> None:
    """Put a refused request in the audit trail, in a transaction of its own (the request's
    rollback cannot take it away; see services/audit/denied.py): every 401 and 403, and a 404
    on an object looked up by its id in the URL. An unknown URL's 404 is not an access attempt."""
    args = {k: v for k, v in (request.view_args or {}).items() if k.endswith("_id")}
    if status == 404 and (request.url_rule is None or not args):
        return
    user = g.get("api_user")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user._get_current_object()
    target_type, target_id = next(iter(args.items()), (None, None))
    denied.record_denied(Ctx(user=user, ip=request.remote_addr), "access.denied",
                         target_type=target_type.removesuffix("_id") if target_type else None,
                         target_id=target_id, status=status, method=request.method,
                         endpoint=request.endpoint, **({"ids": args} if len(args) > 1 else {}))


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


def login_is_fresh() -> bool:
    """The user logged in, or re-authenticated, within FRESH_LOGIN_MINUTES."""
    from models import utcnow

    live = getattr(current_user, "live_session", None)
    if live is None:
        return False
    window = timedelta(minutes=current_app.config["FRESH_LOGIN_MINUTES"])
    return utcnow() - live.authenticated_at <= window


def _back_to_form() -> str:
    """Where a POST came from (the page holding its form), never the POST itself: after
    re-authenticating the user presses the button again."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return home_for(current_user)
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return safe_next(path) or home_for(current_user)


def fresh_login_required(view=None, *, methods=None):
    """Sensitive actions (a buyer's ID in clear, CSV exports, issuing an agreement, changing a
    user) need a recent login: a session left open, or stolen, is not enough. Otherwise the user
    is sent to re-authenticate and comes back to the page (for a POST: the page of its form).
    `methods` limits the check, e.g. to the POST of a page that also shows a list."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if (methods is None or request.method in methods) and not login_is_fresh():
                target = (request.full_path.rstrip("?") if request.method == "GET"
                          else _back_to_form())
                flash(_("Please confirm it is you to continue."), "info")
                return redirect(url_for("auth.reauthenticate", next=target))
            return view(*args, **kwargs)

        return wrapped

    return decorator(view) if view is not None else decorator


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
