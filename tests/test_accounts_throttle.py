"""Login throttles, as the attacks they stop: telling real accounts from unknown e-mails by the
lock message; counters that each process keeps for itself (see test_accounts_gunicorn.py for two
real workers); a Redis outage that switches the limits off."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from models import Throttle
from portal.extensions import db
from portal.services import throttle
from tests import factories
from tests.test_webhooks import redis_url  # noqa: F401  (a redis-server of this test's own)


def _login(client, email, password="wrong-password-123", **kwargs):  # noqa: S107
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


def _text(response, email) -> str:
    """What the visitor reads, with the e-mail they typed and the clock time set aside."""
    html = response.get_data(as_text=True).replace(email, "EMAIL")
    html = re.sub(r'[\w-]{20,}\.[\w-]{6}\.[\w-]{20,}', "CSRF-TOKEN", html)
    return re.sub(r"\d\d:\d\d UTC", "HH:MM UTC", html)


def test_a_real_and_an_unknown_email_get_the_same_answers(app, world):
    # The attack (issue 10): "too many failed attempts" appeared only for real accounts, so
    # five wrong tries told an attacker which e-mails have accounts.
    real, unknown = world.officer.email, "nobody@bank.test"
    real_client, unknown_client = app.test_client(), app.test_client()
    for attempt in range(app.config["LOGIN_MAX_FAILURES"] + 2):
        a = _login(real_client, real, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        b = _login(unknown_client, unknown, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert a.status_code == b.status_code == 200
        assert _text(a, real) == _text(b, unknown), f"attempt {attempt + 1}"
    assert "Too many failed attempts" in _text(b, unknown)
    # The right password of the real account is refused the same way while locked.
    locked = _login(real_client, real, factories.PASSWORD)
    assert "Too many failed attempts" in locked.get_data(as_text=True)


def test_the_per_address_budget_is_counted_in_the_database_without_redis(app, world,
                                                                         monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "3 per minute")
    client = app.test_client()
    codes = [_login(client, f"someone{i}@bank.test").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Too many login attempts from your network" in _login(
        client, "x@bank.test").get_data(as_text=True)
    # Every process reads the same row.
    address_key = throttle.key_for("address", "127.0.0.1")
    assert db.session.get(Throttle, address_key).count >= 4
    # Another address (another office) is not held up.
    other = _login(client, world.officer.email, factories.PASSWORD,
                   environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 302


def _claim_together(app, key: str, n: int) -> list[int]:
    barrier = threading.Barrier(n)
    counts: list = [None] * n

    def claim(i):
        with app.app_context():
            barrier.wait()
            counts[i] = throttle.claim(key, 60).count

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return counts


def test_database_counter_claims_are_atomic(app):
    counts = _claim_together(app, "test:parallel", 12)
    assert sorted(counts) == list(range(1, 13))


def test_redis_counter_claims_are_atomic_and_nothing_lands_in_the_database(
        app, monkeypatch, redis_url):  # noqa: F811
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    counts = _claim_together(app, "test:parallel", 12)
    assert sorted(counts) == list(range(1, 13))
    assert db.session.scalar(select(func.count()).select_from(Throttle)) == 0


def test_with_redis_the_limits_live_in_redis(app, world, monkeypatch, redis_url):  # noqa: F811
    from redis import Redis

    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "3 per minute")
    client = app.test_client()
    assert [_login(client, "ghost@bank.test").status_code for _ in range(4)] == [200, 200, 200,
                                                                                429]
    store = Redis.from_url(redis_url)
    assert int(store.get(throttle.key_for("address", "127.0.0.1"))) == 4
    assert db.session.scalar(select(func.count()).select_from(Throttle)) == 0
    store.flushdb()
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "60 per minute")

    # The unknown e-mail's lock, like a real account's, after the same number of tries.
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(client, "ghost@bank.test")
    assert store.exists(throttle.key_for("account", "ghost@bank.test") + ":lock")
    assert "Too many failed attempts" in _login(client, "ghost@bank.test").get_data(as_text=True)


def test_an_unreachable_redis_falls_back_to_the_database_not_to_no_limit(app, world,
                                                                        monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setitem(app.config, "REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT_PER_ADDRESS", "2 per minute")
    client = app.test_client()
    assert [_login(client, "ghost@bank.test").status_code for _ in range(3)] == [200, 200, 429]
    assert db.session.get(Throttle, throttle.key_for("address", "127.0.0.1")).count == 3


@pytest.mark.parametrize("spec,expected", [("60 per 5 minutes", (60, 300)),
                                           ("3 per minute", (3, 60))])
def test_the_limit_notation_is_flask_limiters(spec, expected):
    assert throttle.limit_of(spec) == expected


def test_housekeeping_forgets_ended_throttles_and_password_links(app, world):
    from datetime import timedelta

    from models import PasswordResetToken, utcnow
    from portal import worker

    now = utcnow()
    db.session.add_all([
        Throttle(key="ended", count=3, window_ends_at=now - timedelta(minutes=1)),
        Throttle(key="locked", count=0, window_ends_at=now - timedelta(minutes=1),
                 locked_until=now + timedelta(minutes=5)),
        Throttle(key="running", count=1, window_ends_at=now + timedelta(minutes=1)),
        PasswordResetToken(user_id=world.agent_a.id, token_hash="a" * 64,
                           expires_at=now - timedelta(seconds=1)),
        PasswordResetToken(user_id=world.agent_a.id, token_hash="b" * 64,
                           expires_at=now + timedelta(hours=1)),
    ])
    db.session.commit()
    done = worker.housekeeping(now)
    assert done["throttles_pruned"] == 1 and done["password_links_pruned"] == 1
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Throttle.key))) == ["locked", "running"]
