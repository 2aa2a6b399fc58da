"""The API fails closed (issue 10), each test the attack it stops:

- a caller without a valid key got an unlimited stream of 401s (the documented address budget did
  not apply, because the key is checked before the rate limit); now such calls share a budget per
  address, kept in the limiter's storage, so every process (and, with Redis, every machine)
  counts them together;
- a partner asking `transitions` for a move only the bank may make got 409, as if it were only a
  matter of timing; now a move the role may never make is 403, one the lifecycle forbids now 409,
  and another organisation's referral is still 404.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from portal.extensions import db
from portal.services import Ctx, referrals
from tests import factories
from tests.integration_helpers import auth, make_key
from tests.test_webhooks import redis_url  # noqa: F401  (a private redis-server per test)

ROOT = Path(__file__).resolve().parent.parent
WRONG = auth("ppk_" + "x" * 43)


def _referrals(client, headers=WRONG, address="203.0.113.7"):
    return client.get("/api/v1/referrals", headers=headers,
                      environ_base={"REMOTE_ADDR": address})


# --- the unauthenticated budget ------------------------------------------------------------------

def test_thirty_one_calls_with_a_wrong_key_get_429_with_retry_after(client, world):
    answers = [_referrals(client) for _ in range(30)]
    assert [a.status_code for a in answers] == [401] * 30
    limited = _referrals(client)
    assert limited.status_code == 429
    assert limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # No key at all, and a key of the right shape that does not exist, share the same budget.
    assert _referrals(client, headers={}).status_code == 429
    assert client.post("/api/v1/referrals", headers=WRONG, json={},
                       environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 429


def test_the_budget_is_per_address_and_holds_no_valid_key_back(client, world):
    key = make_key(world.partner_a)
    for _ in range(31):
        _referrals(client)
    assert _referrals(client).status_code == 429
    # Another address has its own budget ...
    assert _referrals(client, address="198.51.100.9").status_code == 401
    # ... and a valid key from the spent address still works: only keyless calls are counted.
    assert _referrals(client, headers=auth(key)).status_code == 200


def test_a_revoked_key_counts_as_no_key(client, world):
    from portal.services import api_keys

    key = make_key(world.partner_a)
    row = api_keys.authenticate(key)
    api_keys.revoke(Ctx(user=world.partner_a), row)
    db.session.commit()
    codes = [_referrals(client, headers=auth(key)).status_code for _ in range(31)]
    assert codes == [401] * 30 + [429]


def test_the_budget_is_a_setting(client, world, app, monkeypatch):
    monkeypatch.setitem(app.config, "API_UNAUTHENTICATED_RATE_LIMIT", "3 per minute")
    assert [_referrals(client).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_the_document_says_so(client):
    document = client.get("/api/v1/openapi.json").json
    transitions = document["paths"]["/referrals/{referral_id}/transitions"]["post"]
    assert {"403", "409", "429"} <= set(transitions["responses"])
    assert "Retry-After" in transitions["responses"]["429"]["headers"]
    assert "API_UNAUTHENTICATED_RATE_LIMIT" in transitions["responses"]["429"]["description"]
    # The public document itself needs no key and spends no budget.
    for _ in range(40):
        assert client.get("/api/v1/openapi.json").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str) -> int:
    request = urllib.request.Request(url, headers=WRONG)  # noqa: S310 — our own loopback server
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_two_processes_share_the_budget_through_redis(app, world, redis_url, tmp_path):  # noqa: F811
    # Two separate gunicorn servers on one Redis: 15 wrong keys to each. Were the count kept in
    # each process's memory, neither would have reached 30 and the 31st call would be a 401.
    env = {**os.environ, "PORTAL_ENV": "testing", "SECRET_KEY": app.config["SECRET_KEY"],
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": redis_url,
           "UPLOAD_DIR": str(tmp_path / "uploads"), "PDF_CACHE_DIR": str(tmp_path / "pdf")}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    ports = [_free_port(), _free_port()]
    servers = [subprocess.Popen([gunicorn, "--workers", "1", "--graceful-timeout", "2",
                                 "--no-control-socket",
                                 "--bind", f"127.0.0.1:{port}", "wsgi:app"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}/api/v1/referrals" for port in ports]
        for url in urls:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url.replace("/api/v1/referrals", "/healthz"),  # noqa: S310
                                           timeout=2)
                    break
                except OSError:  # refused, or accepted before the worker is up
                    time.sleep(0.1)
        first = [_status(urls[0]) for _ in range(15)]
        second = [_status(urls[1]) for _ in range(15)]
        assert first + second == [401] * 30
        assert _status(urls[0]) == 429
        assert _status(urls[1]) == 429
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


# --- who may move a referral ---------------------------------------------------------------------

def _move(client, key, referral, to, **body):
    return client.post(f"/api/v1/referrals/{referral.id}/transitions", headers=auth(key),
                       json={"to": to, **body})


def test_a_partner_asking_to_approve_is_forbidden_not_a_conflict(client, world):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    for user in (world.partner_a, world.agent_a):
        response = _move(client, make_key(user), referral, "approved")
        assert response.status_code == 403, response.json
        assert response.json["error"]["code"] == "forbidden"
    db.session.refresh(referral)
    assert referral.status == "under_review"


def test_an_officer_approving_in_the_wrong_state_is_a_conflict(client, world):
    referral = factories.submit(world.partner_a)  # submitted: not yet under review
    db.session.commit()
    response = _move(client, make_key(world.officer), referral, "approved")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "state_conflict"
    # A partner may withdraw, but not once the contract is signed: the lifecycle says no (409).
    signed = factories.submit(world.partner_a)
    for to in ("under_review", "approved", "contract_signed"):
        referrals.transition(Ctx(user=world.officer), signed, to)
    db.session.commit()
    assert _move(client, make_key(world.partner_a), signed, "withdrawn").status_code == 409


def test_another_organisations_referral_is_still_404(client, world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    key_b = make_key(world.partner_b)
    # Whether the move is never the partner's (approved) or one it could make (withdrawn), the
    # referral of another organisation does not exist for it: 404, never 403.
    assert _move(client, key_b, referral, "approved").status_code == 404
    assert _move(client, key_b, referral, "withdrawn").status_code == 404
