"""Webhooks: endpoints, the outbox, signing, delivery with exponential backoff, resend.

An event is written to the outbox (with one pending delivery per subscribed endpoint) in the
same transaction as the change it reports. The worker delivers it: POST of
`{"id", "type", "created_at", "data"}` with

    X-Portal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
    X-Portal-Event-Id: <event id>

retried with exponential backoff until a 2xx; every attempt is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import secrets
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from flask import current_app
from pydantic import BaseModel, PlainValidator
from sqlalchemy import select, update

from models import (
    WEBHOOK_EVENT_TYPES,
    DeliveryAttempt,
    Organization,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, jobqueue, pii
from .errors import NotFound, StateConflict
from .validation import checked, refusal

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105  # a label in front of secrets, not one
USER_AGENT = "PartnerPortal-Webhooks/1"
MAX_BACKOFF = timedelta(hours=6)
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept between t and its clock


# --- endpoints ---------------------------------------------------------------------------------

def _address_allowed(address: str) -> bool:
    if current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        return True
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def _url_refusal(url: str):
    """Why `url` cannot receive webhooks, or None."""
    parts = urlsplit(url)
    allowed = ("https", "http") if current_app.config["WEBHOOK_ALLOW_HTTP"] else ("https",)
    if len(url) > 500:
        return _l("At most %(n)d characters.", n=500)
    if parts.scheme not in allowed or not parts.hostname:
        return _l("Give a full https:// address.")
    if parts.username or parts.password:
        return _l("Leave user names and passwords out of the address.")
    try:
        parts.port  # noqa: B018 — raises on a bad port
    except ValueError:
        return _l("The port is not valid.")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None  # a host name: its addresses are checked when a delivery connects
    if not _address_allowed(str(address)):
        return _l("Private, loopback and link-local addresses cannot receive webhooks.")
    return None


def _url(value) -> str:
    url = str(value or "").strip()
    refused = _url_refusal(url)
    if refused:
        raise refusal(refused)
    return url


def _event_types(value) -> list[str]:
    types = sorted({t for t in (value or WEBHOOK_EVENT_TYPES) if t in WEBHOOK_EVENT_TYPES})
    if not types:
        raise refusal(_l("Choose at least one event."))
    return types


def _description(value) -> str | None:
    text = str(value or "").strip() or None
    if text and len(text) > 200:
        raise refusal(_l("At most %(n)d characters.", n=200))
    return text


class EndpointInput(BaseModel):
    """A webhook endpoint as a partner admin registers it (page or API)."""

    url: Annotated[str, PlainValidator(_url)]
    event_types: Annotated[list[str], PlainValidator(_event_types)]
    description: Annotated[str | None, PlainValidator(_description)] = None


def create_endpoint(ctx: Ctx, org: Organization, url: str, *, description: str | None = None,
                    event_types: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once)."""
    given = checked(EndpointInput, {"url": url, "event_types": event_types,
                                    "description": description})
    url, description, types = given.url, given.description, given.event_types
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(org_id=org.id, url=url, description=description,
                               event_types=sorted(types), secret_enc=pii.encrypt(secret),
                               secret_prefix=secret[:12], active=True,
                               created_by_id=ctx.user.id if ctx.user else None,
                               created_at=utcnow())
    db.session.add(endpoint)
    db.session.flush()
    audit.record(ctx, "webhook.create", endpoint, url=url, events=endpoint.event_types)
    return endpoint, secret


def secret_of(endpoint: WebhookEndpoint) -> str:
    return pii.decrypt(endpoint.secret_enc)


def deactivate(ctx: Ctx, endpoint: WebhookEndpoint) -> None:
    if not endpoint.active:
        return
    endpoint.active = False
    endpoint.deactivated_at = utcnow()
    db.session.flush()
    audit.record(ctx, "webhook.deactivate", endpoint, url=endpoint.url)


def org_endpoints(org_id: int):
    return (select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id)
            .order_by(WebhookEndpoint.active.desc(), WebhookEndpoint.id.desc()))


def endpoint_for_org(org_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound()
    return endpoint


def org_deliveries(org_id: int, *, endpoint_id: int | None = None, status: str | None = None):
    query = (select(WebhookDelivery)
             .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .where(WebhookEndpoint.org_id == org_id))
    if endpoint_id:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return query.order_by(WebhookDelivery.id.desc())


def delivery_for_org(org_id: int, delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint.org_id != org_id:
        raise NotFound()
    return delivery


# --- the outbox --------------------------------------------------------------------------------

def emit(org_id: int, event_type: str, data: dict, *,
         at: datetime | None = None) -> OutboxEvent | None:
    """Write an event and one pending delivery per subscribed endpoint, in the caller's
    transaction (flush only). Nothing is written when no endpoint of the organisation wants it."""
    if event_type not in WEBHOOK_EVENT_TYPES:  # an assert would vanish under python -O
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [e for e in db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True)))
        if event_type in (e.event_types or ())]
    if not endpoints:
        return None
    now = at or utcnow()
    event = OutboxEvent(id=str(uuid.uuid4()), type=event_type, org_id=org_id,
                        payload=data, created_at=now)
    db.session.add(event)
    deliveries = [WebhookDelivery(event=event, endpoint_id=e.id, status="pending", attempts=0,
                                  next_attempt_at=now, created_at=now) for e in endpoints]
    db.session.add_all(deliveries)
    db.session.flush()
    for delivery in deliveries:
        jobqueue.after_commit("webhook", delivery.id)
    return event


def event_body(event: OutboxEvent) -> bytes:
    """The exact bytes POSTed (and signed): the same for every attempt."""
    document = {"id": event.id, "type": event.type,
                "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
                "data": event.payload}
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = SIGNATURE_TOLERANCE,
           now: float | None = None) -> bool:
    """What a receiver does: check the HMAC (constant time) and that t is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --- delivery ----------------------------------------------------------------------------------

@dataclass
class Outgoing:
    delivery_id: int
    event_id: str
    url: str
    body: bytes
    secret: str


@dataclass
class Result:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> timedelta:
    """After the n-th failed attempt: base · 2^(n-1), at most six hours, ±10% jitter."""
    base = current_app.config["WEBHOOK_BACKOFF_SECONDS"]
    seconds = min(base * (2 ** max(0, attempts - 1)), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))  # nosec B311  # retry jitter


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["WEBHOOK_TIMEOUT"] + 60)


def due_ids(now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or utcnow()
    return list(db.session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def claim(delivery_id: int, now: datetime | None = None) -> bool:
    """Take a due delivery for one attempt: pushes its due time out by a lease, so no other
    worker (or a second queued job) sends it at the same time. False if not due or taken."""
    now = now or utcnow()
    taken = db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now)
        .values(next_attempt_at=now + _lease())
        .execution_options(synchronize_session=False)).rowcount
    return bool(taken)


def prepare(delivery_id: int) -> Outgoing | None:
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.status != "pending":
        return None
    endpoint = delivery.endpoint
    if not endpoint.active:
        delivery.status = "failed"
        delivery.last_error = "endpoint deactivated"
        delivery.next_attempt_at = None
        db.session.flush()
        return None
    return Outgoing(delivery.id, delivery.event_id, endpoint.url, event_body(delivery.event),
                    secret_of(endpoint))


def _resolve_allowed(host: str, port: int) -> str | None:
    """An error if the host resolves to an address webhooks may not reach."""
    if current_app.config["WEBHOOK_ALLOW_PRIVATE"]:
        return None
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve host: {exc}"
    for info in infos:
        if not _address_allowed(info[4][0]):
            return "host resolves to a private address"
    return None


def send(out: Outgoing, *, timeout: float | None = None) -> Result:
    """POST once. No database work here: nothing is held open while the receiver answers."""
    timeout = timeout if timeout is not None else current_app.config["WEBHOOK_TIMEOUT"]
    parts = urlsplit(out.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    error = _resolve_allowed(parts.hostname or "", port)
    if error:
        return Result(None, error, 0)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Portal-Event-Id": out.event_id,
        "X-Portal-Signature": sign(out.secret, out.body),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    try:
        conn.request("POST", path, body=out.body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # drain a little; the body does not matter
        status = response.status
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except (OSError, http.client.HTTPException) as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"[:500]
    finally:
        conn.close()
    return Result(status, error, int((time.monotonic() - started) * 1000))


def record(delivery_id: int, result: Result, now: datetime | None = None) -> WebhookDelivery:
    """Log the attempt and decide what comes next: delivered, another try later, or failed."""
    now = now or utcnow()
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    delivery.attempt_log.append(DeliveryAttempt(at=now, status_code=result.status_code,
                                                error=result.error,
                                                duration_ms=result.duration_ms))
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    if result.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    db.session.flush()
    return delivery


def resend(ctx: Ctx, delivery: WebhookDelivery) -> None:
    """Send the event again now (a new round of attempts; the earlier ones stay logged)."""
    if not delivery.endpoint.active:
        raise StateConflict(_l("This endpoint is deactivated."))
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    db.session.flush()
    audit.record(ctx, "webhook.resend", delivery, event=delivery.event_id)
    jobqueue.after_commit("webhook", delivery.id)
