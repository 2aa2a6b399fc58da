"""Two app instances (two gunicorn processes started with deploy/gunicorn.conf.py, as
portal@PORT.service runs them) on ONE database and ONE Redis: whatever one instance starts — a
session, a login lockout, an address's login budget, an API key's rate limit, a webhook job —
the other honours. Nothing lives in an instance's memory.

The database is the suite's (PostgreSQL in CI's second pass, where several machines would share
it; SQLite's one file for two processes on one machine otherwise). Redis is a redis-server of
this module's own. Each test comes from its own client address (X-Forwarded-For, believed with
TRUSTED_PROXIES=1 as behind nginx), so the tests' login budgets do not mix.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select

from models import WebhookDelivery
from portal.extensions import db
from portal.services import Ctx, api_keys, webhooks
from tests import factories
from tests.instances import Gunicorn, Redis, Worker, portal_env, wait_until

LOGIN_BUDGET = 8  # LOGIN_RATE_LIMIT_PER_ADDRESS for these instances: per hour, per address


@pytest.fixture(scope="module")
def redis():
    try:
        server = Redis()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pair(app, redis):
    env = portal_env(app.config, REDIS_URL=redis.url, TRUSTED_PROXIES=1,
                     LOGIN_RATE_LIMIT_PER_ADDRESS=f"{LOGIN_BUDGET} per hour",
                     LOGIN_MAX_FAILURES=3)
    one = Gunicorn(env)
    try:
        two = Gunicorn(env)
    except BaseException:
        one.stop()
        raise
    yield one, two, env
    one.stop()
    two.stop()


class Browser:
    """A person's browser: one cookie jar, one address, sent to whichever instance is asked."""

    def __init__(self, address: str):
        self.http = httpx.Client(timeout=30, follow_redirects=False,
                                 headers={"X-Forwarded-For": address, "Accept-Language": "en"})

    def login(self, base: str, email: str, password: str) -> httpx.Response:
        page = self.http.get(f"{base}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return self.http.post(f"{base}/login", data={"csrf_token": token, "email": email,
                                                     "password": password})


def test_a_session_started_on_one_instance_is_used_and_ended_on_the_other(world, pair):
    one, two, _ = pair
    browser = Browser("203.0.113.10")
    assert browser.login(one.url, world.agent_a.email, factories.PASSWORD).status_code == 302

    page = browser.http.get(f"{two.url}/partner/")
    assert page.status_code == 200
    # The header names who is logged in: the session read on the other instance.
    assert f'data-testid="who">{world.agent_a.name}<' in page.text
    assert "Partner sales agent · Partner A" in page.text

    # Logging out on instance 2 ends the session everywhere: instance 1 sends the cookie's
    # holder to the login page.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert browser.http.post(f"{two.url}/logout", data={"csrf_token": token}).status_code == 302
    again = browser.http.get(f"{one.url}/partner/")
    assert again.status_code == 302 and "/login" in again.headers["Location"]


def test_a_lockout_earned_on_one_instance_holds_on_the_other(world, pair):
    one, two, _ = pair
    browser = Browser("203.0.113.20")
    for base in (one.url, two.url, one.url):  # LOGIN_MAX_FAILURES=3, spread over both
        refused = browser.login(base, world.officer.email, "wrong-password-guess")
        assert refused.status_code == 200 and "Wrong e-mail or password" in refused.text

    # The right password on the other instance is refused: the account is locked for all.
    locked = browser.login(two.url, world.officer.email, factories.PASSWORD)
    assert locked.status_code == 200
    assert "Too many failed attempts" in locked.text


def test_an_address_login_budget_is_counted_across_instances(world, pair):
    one, two, _ = pair
    browser = Browser("203.0.113.30")
    answers = [browser.login(base, f"nobody{i}@a.test", "wrong-password-guess").status_code
               for i, base in enumerate([one.url, two.url] * (LOGIN_BUDGET // 2))]
    assert answers == [200] * LOGIN_BUDGET
    # The budget is spent, half of it on each instance: both refuse the next attempt.
    assert browser.login(one.url, world.agent_a.email, factories.PASSWORD).status_code == 429
    assert browser.login(two.url, world.agent_a.email, factories.PASSWORD).status_code == 429
    # Another address is not affected.
    other = Browser("203.0.113.31")
    assert other.login(two.url, world.agent_a.email, factories.PASSWORD).status_code == 302


def test_an_api_key_rate_limit_is_spent_across_instances(world, pair):
    one, two, _ = pair
    _row, key = api_keys.create(Ctx(user=None), world.partner_a, "two instances",
                                rate_limit="5 per hour")
    db.session.commit()
    http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"})
    calls = [http.get(f"{base}/api/v1/referrals")
             for base in (one.url, two.url, one.url, two.url, one.url)]
    assert [c.status_code for c in calls] == [200] * 5
    # One budget: what is left goes down by one per call, whichever instance answers.
    assert [c.headers["X-RateLimit-Remaining"] for c in calls] == ["4", "3", "2", "1", "0"]
    over = [http.get(f"{base}/api/v1/referrals") for base in (two.url, one.url)]
    assert [c.status_code for c in over] == [429, 429]
    assert over[0].json()["error"]["code"] == "rate_limited"


class Receiver:
    """A partner's webhook receiver on 127.0.0.1, answering 200."""

    def __init__(self):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's naming
                outer.bodies.append(json.loads(self.rfile.read(
                    int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_job_queued_by_one_instance_is_delivered_by_the_worker(world, pair, redis):
    from redis import Redis as Client
    from rq import Queue

    one, _two, env = pair
    receiver = Receiver()
    try:
        webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, receiver.url)
        referral = factories.submit(world.partner_a, external_ref="TWO-INSTANCES-1")
        _row, key = api_keys.create(Ctx(user=None), world.officer, "officer")
        db.session.commit()

        moved = httpx.post(f"{one.url}/api/v1/referrals/{referral.id}/transitions",
                           json={"to": "under_review"},
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert moved.status_code == 200, moved.text
        # The request on instance 1 queued the delivery in the shared Redis on commit.
        assert Queue("portal", connection=Client.from_url(redis.url)).count == 1
        assert receiver.bodies == []

        worker = Worker(env)
        try:
            wait_until(lambda: receiver.bodies, "the webhook delivery", 60, worker.process)
        finally:
            worker.stop()
        assert [(b["type"], b["data"]["referral"]["external_ref"], b["data"]["to"])
                for b in receiver.bodies] == [
            ("referral.status_changed", "TWO-INSTANCES-1", "under_review")]
        db.session.expire_all()
        assert db.session.scalar(select(WebhookDelivery.status)) == "delivered"
    finally:
        receiver.close()


def test_without_redis_the_instances_still_answer_and_still_limit(world, pair, redis):
    # Last in this module: it stops the module's Redis.
    one, two, _ = pair
    _row, key = api_keys.create(Ctx(user=None), world.partner_a, "redis gone",
                                rate_limit="2 per hour")
    db.session.commit()
    redis.stop()
    http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"})
    # Each instance falls back to counting in its own memory: answers, and limits.
    assert [http.get(f"{one.url}/api/v1/referrals").status_code for _ in range(3)] == [
        200, 200, 429]
    assert http.get(f"{two.url}/api/v1/referrals").status_code == 200
    browser = Browser("203.0.113.40")
    assert browser.login(two.url, world.agent_a.email, factories.PASSWORD).status_code == 302
