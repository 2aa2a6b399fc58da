"""Webhooks: outbox written with the change, signed delivery to a real receiver on 127.0.0.1 with
exponential backoff, the delivery log and resend, endpoint rules, and the RQ path."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from models import DeliveryAttempt, OutboxEvent, Referral, WebhookDelivery, utcnow
from portal import worker
from portal.extensions import db
from portal.services import Ctx, agreements, documents, referrals, webhooks
from portal.services.errors import ValidationFailed
from tests import factories


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers `codes` in turn (then the last one)."""

    def __init__(self, codes=(500, 500, 200)):
        self.codes = list(codes)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's naming
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                index = len(outer.requests)
                code = outer.codes[min(index, len(outer.codes) - 1)]
                outer.requests.append({"headers": dict(self.headers), "body": raw,
                                       "path": self.path, "answered": code})
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/portal?source=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def check_signature(secret: str, request: dict, tolerance: int = 300) -> int:
    """What a partner's receiver does, written out here independently of the portal's code."""
    header = request["headers"]["X-Portal-Signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    t = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + request["body"],
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), "signature does not match the raw body"
    assert abs(time.time() - t) < tolerance
    return t


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def endpoint(world):
    def make(url, **kwargs):
        ep, secret = webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, url,
                                              **kwargs)
        db.session.commit()
        return ep, secret
    return make


def test_an_endpoint_that_fails_twice_gets_the_event_exactly_once_acknowledged(world, endpoint):
    with Receiver((500, 503, 200)) as receiver:
        ep, secret = endpoint(receiver.url)
        referral = factories.submit(world.partner_a, external_ref="CRM-7")
        referrals.transition(Ctx(user=world.officer), referral, "under_review")
        db.session.commit()
        delivery = db.session.scalar(select(WebhookDelivery))
        assert delivery.status == "pending" and delivery.endpoint_id == ep.id

        now = utcnow()
        assert worker.run_due(now)["webhooks"] == 1          # 500
        assert worker.run_due(now)["webhooks"] == 0          # not due again yet
        db.session.expire_all()
        first_wait = delivery.next_attempt_at - now
        assert delivery.status == "pending" and delivery.attempts == 1
        assert timedelta(seconds=20) < first_wait < timedelta(seconds=40)

        later = now + timedelta(hours=1)
        assert worker.run_due(later)["webhooks"] == 1        # 503
        db.session.expire_all()
        assert delivery.next_attempt_at - later > first_wait * 1.5   # backoff grows
        assert worker.run_due(later + timedelta(hours=1))["webhooks"] == 1   # 200
        assert worker.run_due(later + timedelta(days=1))["webhooks"] == 0   # nothing left

    db.session.expire_all()
    assert delivery.status == "delivered" and delivery.last_status_code == 200
    assert [r["answered"] for r in receiver.requests] == [500, 503, 200]
    assert sum(1 for r in receiver.requests if 200 <= r["answered"] < 300) == 1
    attempts = db.session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert attempts[0].error == "HTTP 500" and attempts[2].error is None

    # Every attempt carried the same event, body and id, each correctly signed.
    event = db.session.scalar(select(OutboxEvent))
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        check_signature(secret, request)
        assert request["headers"]["X-Portal-Event-Id"] == event.id
        assert request["headers"]["Content-Type"].startswith("application/json")
        assert request["path"] == "/hooks/portal?source=test"
    payload = json.loads(receiver.requests[0]["body"])
    assert set(payload) == {"id", "type", "created_at", "data"}
    assert payload["id"] == event.id and payload["type"] == "referral.status_changed"
    assert payload["data"]["referral"]["id"] == referral.id
    assert payload["data"]["referral"]["external_ref"] == "CRM-7"
    assert (payload["data"]["from"], payload["data"]["to"]) == ("submitted", "under_review")
    assert payload["data"]["by"] == "bank"


def test_a_tampered_body_or_another_secret_fails_the_check(world, endpoint):
    with Receiver((200,)) as receiver:
        _ep, secret = endpoint(receiver.url)
        referral = factories.submit(world.partner_a)
        referrals.transition(Ctx(user=world.officer), referral, "under_review")
        db.session.commit()
        worker.run_due()
    request = receiver.requests[0]
    header = request["headers"]["X-Portal-Signature"]
    assert webhooks.verify(secret, request["body"], header)
    assert not webhooks.verify(secret, request["body"] + b" ", header)
    assert not webhooks.verify("whsec_other", request["body"], header)
    assert not webhooks.verify(secret, request["body"], header, now=time.time() + 3600)
    with pytest.raises(AssertionError):
        check_signature("whsec_other", request)


def test_the_event_is_written_in_the_same_transaction_as_the_change(world, endpoint):
    endpoint("http://127.0.0.1:9/never")
    referral = factories.submit(world.partner_a)
    db.session.commit()
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.rollback()  # the change is abandoned ...
    assert count(OutboxEvent) == 0 and count(WebhookDelivery) == 0  # ... and so is the event
    referrals.transition(Ctx(user=world.officer), db.session.get(Referral, referral.id),
                         "under_review")
    db.session.commit()
    assert count(OutboxEvent) == 1 and count(WebhookDelivery) == 1


def test_documents_requested_sends_both_events_with_the_list(world, endpoint):
    with Receiver((200,)) as receiver:
        _ep, secret = endpoint(receiver.url)
        referral = factories.submit(world.partner_a)
        documents.request_documents(Ctx(user=world.officer), referral,
                                    ["bank_statement", "income_proof"], "Six months, please")
        db.session.commit()
        assert worker.run_due()["webhooks"] == 2
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    by_type = {b["type"]: b for b in bodies}
    assert set(by_type) == {"referral.status_changed", "referral.documents_requested"}
    requested = by_type["referral.documents_requested"]["data"]
    assert set(requested["documents"]) >= {"bank_statement", "income_proof"}
    assert requested["note"] == "Six months, please"
    assert by_type["referral.status_changed"]["data"]["to"] == "documents_requested"
    for request in receiver.requests:
        check_signature(secret, request)


def test_agreement_issued_is_an_event(world, endpoint, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path / "pdf"))
    with Receiver((200,)) as receiver:
        _ep, secret = endpoint(receiver.url)
        manager = Ctx(user=world.manager)
        today = agreements.local_today()
        agreement = agreements.draft(manager, world.org_a, {
            "products": ["housing_mortgage"], "effective_from": today.isoformat(),
            "expires_on": (today + timedelta(days=364)).isoformat()})
        agreements.issue(manager, agreement)
        db.session.commit()
        worker.run_due()
    body = json.loads(receiver.requests[0]["body"])
    assert body["type"] == "agreement.issued"
    assert body["data"]["agreement"]["number"] == agreement.number
    assert body["data"]["agreement"]["status"] == "issued"
    check_signature(secret, receiver.requests[0])


def test_events_go_only_to_the_organisations_subscribed_endpoints(world, endpoint):
    endpoint("http://127.0.0.1:9/status", event_types=["referral.status_changed"])
    agreements_only, _ = endpoint("http://127.0.0.1:9/agreements",
                                  event_types=["agreement.issued"])
    webhooks.create_endpoint(Ctx(user=world.partner_b), world.org_b, "http://127.0.0.1:9/b")
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    deliveries = db.session.scalars(select(WebhookDelivery)).all()
    assert [d.endpoint.url for d in deliveries] == ["http://127.0.0.1:9/status"]


def test_history_is_not_announced(world, endpoint):
    endpoint("http://127.0.0.1:9/never")
    referral = factories.submit(world.partner_a, at=utcnow() - timedelta(days=3))
    referrals.transition(Ctx(user=world.officer), referral, "under_review",
                         at=utcnow() - timedelta(days=2))
    db.session.commit()
    assert count(OutboxEvent) == 0


def test_attempts_run_out_and_the_delivery_fails(world, endpoint, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_ATTEMPTS", 3)
    with Receiver((500,)) as receiver:
        endpoint(receiver.url)
        referral = factories.submit(world.partner_a)
        referrals.transition(Ctx(user=world.officer), referral, "under_review")
        db.session.commit()
        at = utcnow()
        for _ in range(5):
            worker.run_due(at)
            at += timedelta(days=1)
    delivery = db.session.scalar(select(WebhookDelivery))
    db.session.refresh(delivery)
    assert delivery.status == "failed" and delivery.attempts == 3
    assert len(receiver.requests) == 3


def test_an_unreachable_endpoint_is_logged_and_retried(world, endpoint, app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 2)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint(f"http://127.0.0.1:{port}/")
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    worker.run_due()
    delivery = db.session.scalar(select(WebhookDelivery))
    db.session.refresh(delivery)
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "ConnectionRefused" in delivery.last_error
    assert delivery.attempt_log[0].error == delivery.last_error


def test_a_deactivated_endpoint_gets_nothing_more(world, endpoint):
    ep, _ = endpoint("http://127.0.0.1:9/")
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    webhooks.deactivate(Ctx(user=world.partner_a), ep)
    db.session.commit()
    worker.run_due()
    delivery = db.session.scalar(select(WebhookDelivery))
    db.session.refresh(delivery)
    assert delivery.status == "failed" and delivery.last_error == "endpoint deactivated"
    referrals.transition(Ctx(user=world.officer), referral, "approved")
    db.session.commit()
    assert count(WebhookDelivery) == 1


def test_endpoint_addresses_are_checked(world, app, monkeypatch):
    ctx = Ctx(user=world.partner_a)
    for url in ("ftp://example.com/", "https://", "not a url", "https://u:p@example.com/",
                "https://example.com:99999/"):
        with pytest.raises(ValidationFailed) as err:
            webhooks.create_endpoint(ctx, world.org_a, url)
        assert "url" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        webhooks.create_endpoint(ctx, world.org_a, "https://example.com/", event_types=["x"])
    assert "event_types" in err.value.fields
    # Outside development: https only, and no private or loopback targets.
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_HTTP", False)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE", False)
    for url in ("http://partner.example/hook", "https://127.0.0.1/hook", "https://10.1.2.3/",
                "https://[::1]/", "https://169.254.169.254/latest"):
        with pytest.raises(ValidationFailed):
            webhooks.create_endpoint(ctx, world.org_a, url)
    ep, secret = webhooks.create_endpoint(ctx, world.org_a, "https://partner.example/hook")
    assert secret.startswith("whsec_") and secret not in ep.secret_enc
    assert webhooks.secret_of(ep) == secret
    # A host name that resolves to loopback is refused when it is sent.
    out = webhooks.Outgoing(1, "e", "https://localhost:1/hook", b"{}", secret)
    result = webhooks.send(out)
    assert result.status_code is None and "private" in result.error


# --- the partner's pages -----------------------------------------------------------------------

def test_delivery_log_shows_every_attempt_and_resend_sends_again(world, endpoint, as_user):
    with Receiver((500, 200, 200)) as receiver:
        endpoint(receiver.url)
        referral = factories.submit(world.partner_a)
        referrals.transition(Ctx(user=world.officer), referral, "under_review")
        db.session.commit()
        now = utcnow()
        worker.run_due(now)
        worker.run_due(now + timedelta(hours=1))
        delivery = db.session.scalar(select(WebhookDelivery))
        client = as_user(world.partner_a)
        page = client.get("/partner/webhooks/deliveries")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'data-delivery-id="{delivery.id}"' in html
        assert 'data-status="delivered"' in html and "HTTP 500" in html
        assert html.count("<td>500</td>") == 1 and html.count("<td>200</td>") == 1
        response = client.post(f"/partner/webhooks/deliveries/{delivery.id}/resend")
        assert response.status_code == 302
        db.session.expire_all()
        assert db.session.get(WebhookDelivery, delivery.id).status == "pending"
        worker.run_due()
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Portal-Event-Id"] for r in receiver.requests}) == 1
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, delivery.id).status == "delivered"
    assert count(DeliveryAttempt) == 3


def test_webhook_pages_are_for_the_organisations_administrator_only(world, endpoint, as_user,
                                                                    client):
    ep, _ = endpoint("http://127.0.0.1:9/")
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    delivery = db.session.scalar(select(WebhookDelivery))
    as_user(world.partner_b)
    assert client.get("/partner/webhooks").status_code == 200
    assert f"{ep.url}" not in client.get("/partner/webhooks").get_data(as_text=True)
    assert client.post(f"/partner/webhooks/{ep.id}/deactivate").status_code == 404
    assert client.post(f"/partner/webhooks/deliveries/{delivery.id}/resend").status_code == 404
    assert str(delivery.event_id) not in client.get(
        "/partner/webhooks/deliveries").get_data(as_text=True)
    client.post("/logout")
    as_user(world.agent_a)
    for path in ("/partner/webhooks", "/partner/webhooks/deliveries", "/partner/api-keys"):
        assert client.get(path).status_code == 403


def test_a_partner_admin_adds_an_endpoint_and_sees_the_secret_once(world, as_user):
    client = as_user(world.partner_a)
    response = client.post("/partner/webhooks", data={
        "url": "https://crm.partner-a.example/portal-events", "description": "CRM",
        "event_types": ["referral.status_changed", "agreement.issued"]})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="new-webhook-secret"' in html
    ep = db.session.scalar(select(webhooks.WebhookEndpoint))
    secret = webhooks.secret_of(ep)
    assert secret in html
    assert ep.event_types == ["agreement.issued", "referral.status_changed"]
    again = client.get("/partner/webhooks").get_data(as_text=True)
    assert secret not in again and ep.secret_prefix in again
    bad = client.post("/partner/webhooks", data={"url": "ftp://x", "event_types": []})
    assert bad.status_code == 422
    response = client.post(f"/partner/webhooks/{ep.id}/deactivate")
    assert response.status_code == 302
    db.session.expire_all()
    assert not db.session.get(webhooks.WebhookEndpoint, ep.id).active


# --- on Redis (RQ) -----------------------------------------------------------------------------

@pytest.fixture
def redis_url():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    from redis import Redis

    for _ in range(50):
        try:
            Redis.from_url(url).ping()
            break
        except Exception:  # noqa: BLE001 — not up yet
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_with_redis_jobs_are_queued_on_commit_and_run_by_an_rq_worker(world, endpoint, app,
                                                                       monkeypatch, redis_url):
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    with Receiver((500, 200)) as receiver:
        _ep, secret = endpoint(receiver.url)
        referral = factories.submit(world.partner_a)
        referrals.transition(Ctx(user=world.officer), referral, "under_review")
        queue = Queue("portal", connection=worker.jobqueue.redis_connection(redis_url))
        assert queue.count == 0            # nothing before the commit ...
        db.session.commit()
        assert queue.count == 1            # ... one delivery job after it
        referrals.transition(Ctx(user=world.officer), referral, "approved")
        db.session.rollback()
        assert queue.count == 1            # a rolled-back change queues nothing

        worker.run_rq(burst=True)          # attempt 1 fails: a retry is scheduled on RQ
        assert len(receiver.requests) == 1
        scheduled = ScheduledJobRegistry(queue=queue)
        assert any(job_id for job_id in scheduled.get_job_ids())
        delivery = db.session.scalar(select(WebhookDelivery))
        db.session.refresh(delivery)
        assert delivery.status == "pending" and delivery.attempts == 1
        # Make the retry due now and let the worker's scheduler pick it up.
        delivery.next_attempt_at = utcnow()
        db.session.commit()
        for job_id in scheduled.get_job_ids():
            queue.enqueue_job(queue.fetch_job(job_id))
            scheduled.remove(job_id)
        worker.run_rq(burst=True)
    db.session.refresh(delivery)
    assert delivery.status == "delivered"
    assert [r["answered"] for r in receiver.requests] == [500, 200]
    check_signature(secret, receiver.requests[-1])


def test_an_endpoint_names_every_field_it_refuses_at_once(world):
    with pytest.raises(ValidationFailed) as err:
        webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "https://u:p@x.example/",
                                 event_types=["nothing"], description="x" * 201)
    fields = {k: str(v) for k, v in err.value.fields.items()}
    assert fields == {"url": "Leave user names and passwords out of the address.",
                      "event_types": "Choose at least one event.",
                      "description": "At most 200 characters."}
