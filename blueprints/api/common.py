"""What every API v1 view shares: the blueprint, key authentication, the per-key rate limit,
request parsing into the pydantic schemas, and JSON responses.

Mounted at /api/v1 and exempt from CSRF (no cookies are used here). A bearer API key acts as
the user it was made for.
"""

from __future__ import annotations

import json
import math
import time

from flask import Blueprint, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit
from pydantic import BaseModel

from models import User
from portal import json_limits
from portal.extensions import limiter
from portal.i18n import lazy_gettext as _l
from portal.services import Ctx, api_keys
from portal.services.errors import DomainError, Forbidden, ValidationFailed
from portal.services.validation import checked

bp = Blueprint("api", __name__)

# Readable without a key: the document and its page.
PUBLIC_ENDPOINTS = {"api.openapi_json", "api.docs"}


class TooLarge(DomainError):
    """An upload over the limit: 413 like a body over MAX_CONTENT_LENGTH, with the field named."""

    code = "too_large"
    status = 413

    def __init__(self, fields: dict):
        super().__init__(_l("The upload is too large."), fields)


class RateLimited(DomainError):
    """Too many calls without a valid key from one address (the keyed budget answers through
    Flask-Limiter). `retry_after` goes into the Retry-After header."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: int):
        super().__init__(_l("Too many calls without a valid API key from your address. Try "
                            "again in %(s)d seconds.", s=retry_after))
        self.retry_after = retry_after


# --- authentication and rate limits ------------------------------------------------------------

def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _lookup():
    """The request's API key row, or the Unauthorized error, looked up once per request."""
    if "api_key_lookup" not in g:
        try:
            g.api_key_lookup = (api_keys.authenticate(_bearer()), None)
        except api_keys.Unauthorized as exc:
            g.api_key_lookup = (None, exc)
    return g.api_key_lookup


def _rate_key() -> str:
    # Per key. (Calls without a valid key never get this far: _authenticate refuses them after
    # charging their address's budget.)
    row, _ = _lookup()
    return f"key:{row.id}" if row is not None else f"addr:{get_remote_address()}"


UNAUTHENTICATED_SCOPE = "api-v1-unauthenticated"


def _charge_unauthenticated() -> None:
    """Count a call without a valid key against its address's budget, in the limiter's storage
    (Redis when configured, so every process shares it); past the budget, 429. A guesser of keys
    or a client with a revoked one gets a few answers a minute, not an unlimited stream of 401s,
    and a valid key from the same address is not held back by them."""
    item = parse_limit(current_app.config["API_UNAUTHENTICATED_RATE_LIMIT"])
    strategy, address = limiter.limiter, get_remote_address()
    if strategy.hit(item, UNAUTHENTICATED_SCOPE, address):
        return
    reset_at, _remaining = strategy.get_window_stats(item, UNAUTHENTICATED_SCOPE, address)
    raise RateLimited(max(1, math.ceil(reset_at - time.time())))


def _rate_value() -> str:
    row, _ = _lookup()
    return (row.rate_limit if row is not None and row.rate_limit
            else current_app.config["API_RATE_LIMIT"])


rate_limited = limiter.shared_limit(_rate_value, scope="api-v1", key_func=_rate_key)


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    row, error = _lookup()
    if error is not None:
        _charge_unauthenticated()
        raise error
    g.api_key = row
    g.api_user = row.user
    api_keys.touch(row)
    return None


@bp.errorhandler(RateLimited)
def _rate_limited(error: RateLimited):
    body = {"error": {"code": error.code, "message": str(error.message), "fields": {}}}
    response = json_response(body, error.status)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.after_request
def _api_headers(response):
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def ctx() -> Ctx:
    return Ctx(user=g.api_user, ip=request.remote_addr)


def user() -> User:
    return g.api_user


def partner_only() -> None:
    if not user().is_partner:
        raise Forbidden(_l("Only partner users can do this."))


# --- request parsing ---------------------------------------------------------------------------

def parse(model: type[BaseModel], data) -> BaseModel:
    """Validate into `model`; 422 naming each invalid field by its dotted path."""
    return checked(model, data, first_wins=True)


def json_body(model: type[BaseModel]) -> BaseModel:
    if (request.content_length or 0) > json_limits.MAX_BYTES:
        raise TooLarge({"body": _l("The JSON body is larger than %(n)d bytes.",
                                   n=json_limits.MAX_BYTES)})
    raw = request.get_data(cache=True)
    try:
        data = json_limits.loads(raw or b"null")
    except json_limits.JSONRefused as exc:
        if exc.too_large:
            raise TooLarge({"body": _l("The JSON body is larger than %(n)d bytes.",
                                       n=json_limits.MAX_BYTES)}) from None
        raise ValidationFailed({"body": _l("The JSON body is nested more than %(n)d levels "
                                           "deep.", n=json_limits.MAX_DEPTH)}) from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed({"body": _l("Send a JSON object.")}) from None
    if not isinstance(data, dict):
        raise ValidationFailed({"body": _l("Send a JSON object.")})
    return parse(model, data)


def json_response(payload, status: int = 200):
    # Compact UTF-8: the idempotency store keeps these bytes and replays them as they are.
    return current_app.response_class(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")), status=status,
        mimetype="application/json")


def page_of(items: list, args, total: int):
    return json_response({"items": items, "page": args.page, "per_page": args.per_page,
                          "total": total})
