"""Roles, decorators and the acting context that views hand to services."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, request, url_for
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


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no protocol-relative '//' trick."""
    if not target:
        return None
    target = target.strip().replace("\\", "/")
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
