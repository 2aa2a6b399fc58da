"""The TOTP second factor, as the attacks it stops: a password alone opens nothing; a code is
accepted once; guessing codes locks the account; a staff role cannot skip enrolment."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import func, select

from models import RecoveryCode, User, UserSession
from portal.extensions import db
from tests import factories
from tests.conftest import login


def page(response) -> str:
    return response.get_data(as_text=True)


def enrol(client) -> tuple[pyotp.TOTP, list[str]]:
    """Through the pages, as a person does: start, read the key off the page, confirm a code."""
    assert client.post("/account/two-factor/start").status_code == 302
    html = page(client.get("/account/two-factor"))
    assert "<svg" in html and 'data-testid="totp-qr"' in html  # the QR code, drawn inline
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    totp = pyotp.TOTP(secret.replace(" ", ""))
    done = client.post("/account/two-factor/confirm", data={"code": totp.now()})
    assert done.status_code == 200, page(done)[:400]
    codes = re.findall(r"<code>([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})</code>",
                       page(done))
    assert len(codes) == 10
    return totp, codes


def next_code(totp: pyotp.TOTP) -> str:
    """A code of the next 30-second step: accepted (clocks drift) and not yet used."""
    return totp.at(time.time() + 30)


def password_step(client, user):
    return client.post("/login", data={"email": user.email, "password": factories.PASSWORD})


def test_enrol_log_out_and_log_in_with_a_code(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    totp, _codes = enrol(client)
    assert db.session.get(User, world.agent_a.id).has_totp
    client.post("/logout")

    step = password_step(client, world.agent_a)
    assert step.status_code == 302 and step.headers["Location"].endswith("/login/code")
    # The password alone opened no session: every page still sends the visitor to log in.
    assert client.get("/partner/").headers["Location"].startswith("/login")
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0

    done = client.post("/login/code", data={"code": next_code(totp)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/partner/")
    assert client.get("/partner/").status_code == 200


def test_a_code_is_never_accepted_twice(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    totp, _codes = enrol(client)
    client.post("/logout")
    code = next_code(totp)
    password_step(client, world.agent_a)
    assert client.post("/login/code", data={"code": code}).status_code == 302
    client.post("/logout")

    # The attacker who watched that code being typed replays it within its window.
    thief = app.test_client()
    password_step(thief, world.agent_a)
    replay = thief.post("/login/code", data={"code": code})
    assert replay.status_code == 200 and "already used" in page(replay)
    assert thief.get("/partner/").status_code == 302


def test_a_recovery_code_works_once(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    _totp, codes = enrol(client)
    client.post("/logout")
    password_step(client, world.agent_a)
    assert client.post("/login/code", data={"code": codes[0].lower()}).status_code == 302
    client.post("/logout")
    password_step(client, world.agent_a)
    again = client.post("/login/code", data={"code": codes[0]})
    assert again.status_code == 200 and client.get("/partner/").status_code == 302
    assert db.session.scalar(select(func.count(RecoveryCode.id)).where(
        RecoveryCode.used_at.is_(None))) == 9
    # Only hashes are kept: no code is in the table in clear.
    stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert not set(codes) & set(stored)


def test_guessing_codes_locks_the_account(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    totp, _codes = enrol(client)
    client.post("/logout")
    password_step(client, world.agent_a)
    for i in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login/code", data={"code": f"{i:06d}"})
    db.session.expire_all()
    assert db.session.get(User, world.agent_a.id).locked_until is not None
    # Now even the right password and the right code are refused until the lock ends.
    again = app.test_client()
    refused = password_step(again, world.agent_a)
    assert refused.status_code == 200 and "Too many failed attempts" in page(refused)


def test_staff_roles_must_enrol_before_anything_else(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "MFA_REQUIRED_ROLES", frozenset({"admin", "credit_officer"}))
    client = app.test_client()
    response = password_step(client, world.officer)
    assert response.headers["Location"].endswith("/account/two-factor")
    # Held at enrolment: the queue, a referral, the account page all lead back to it.
    for url in ("/bank/queue", "/bank/referrals", "/account", "/admin/users"):
        held = client.get(url)
        assert held.status_code == 302 and held.headers["Location"].endswith(
            "/account/two-factor"), url
    assert "Your role must log in with a second step" in page(client.get("/account/two-factor"))
    totp, _codes = enrol(client)
    assert client.get("/bank/queue").status_code == 200
    # And the factor cannot be turned off for that role.
    refused = client.post("/account/two-factor/remove")
    assert refused.status_code == 302
    assert db.session.get(User, world.officer.id).has_totp
    # A partner (not a required role) is not held.
    other = app.test_client()
    login(other, world.agent_a)
    assert other.get("/partner/").status_code == 200


def test_an_optional_factor_is_removed_only_after_a_fresh_login(app, world):
    from datetime import timedelta

    from models import utcnow

    client = app.test_client()
    login(client, world.agent_a)
    totp, _codes = enrol(client)
    db.session.execute(UserSession.__table__.update().values(
        authenticated_at=utcnow() - timedelta(minutes=30)))
    db.session.commit()
    stale = client.post("/account/two-factor/remove",
                        headers={"Referer": "http://localhost/account/two-factor"})
    assert stale.status_code == 302 and "/reauthenticate" in stale.headers["Location"]
    assert db.session.get(User, world.agent_a.id).has_totp
    # Re-authenticating needs the password and a code.
    target = stale.headers["Location"]
    without_code = client.post(target, data={"password": factories.PASSWORD})
    assert without_code.status_code == 200
    ok = client.post(target, data={"password": factories.PASSWORD, "code": next_code(totp)})
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/account/two-factor")
    assert client.post("/account/two-factor/remove").status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, world.agent_a.id).has_totp
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_account_and_enrolment_pages_in_both_languages(app, world, lang):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    login(client, world.officer)
    client.post("/account/two-factor/start")
    for url in ("/account", "/account/two-factor"):
        html = page(client.get(url))
        assert ('<html lang="zh-CN">' in html) == (lang == "zh-CN"), url
    words = "两步登录" if lang == "zh-CN" else "Two-step login"
    assert words in page(client.get("/account"))


def test_a_lost_phone_is_handled_at_the_cli_only(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    enrol(client)
    result = app.test_cli_runner().invoke(args=["users", "reset-password", "--email",
                                                world.agent_a.email, "--remove-second-factor"])
    assert result.exit_code == 0, result.output
    password = result.output.split(": ")[1].split()[0]
    db.session.expire_all()
    user = db.session.get(User, world.agent_a.id)
    assert not user.has_totp and user.totp_secret is None
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0
    first = app.test_client().post("/login", data={"email": user.email, "password": password})
    assert first.headers["Location"].endswith("/account/new-password")  # no code asked
