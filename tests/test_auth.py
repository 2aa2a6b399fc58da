"""Accounts: login, throttling, logout that ends the session, idle timeout, safe redirects, CSRF."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEntry, UserSession, utcnow
from portal.extensions import db
from tests import factories
from tests.conftest import login


def _login(client, email, password, **kwargs):
    return client.post("/login", data={"email": email, "password": password}, **kwargs)


def test_login_lands_on_the_role_home_and_is_audited(client, world):
    response = _login(client, world.officer.email, factories.PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/bank/queue")
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "login" in actions


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, world):
    response = _login(client, world.officer.email, "wrong-password-123")
    assert response.status_code == 200
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    unknown = _login(client, "nobody@bank.test", "wrong-password-123")
    assert "Wrong e-mail or password" in unknown.get_data(as_text=True)
    assert client.get("/bank/queue").status_code == 302  # still anonymous


def test_account_is_locked_after_repeated_failures_even_with_the_right_password(client, world, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(client, world.officer.email, "wrong-password-123")
    db.session.expire_all()
    assert world.officer.locked_until is not None
    response = _login(client, world.officer.email, factories.PASSWORD)
    assert response.status_code == 200
    assert "Too many failed attempts" in response.get_data(as_text=True)
    # Another account from the same address is not affected: the lock is per account.
    assert _login(client, world.manager.email, factories.PASSWORD).status_code == 302


def test_lock_expires(client, world):
    world.officer.locked_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert _login(client, world.officer.email, factories.PASSWORD).status_code == 302


def test_login_is_throttled_per_address(client, world, app):
    app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"] = "3 per minute"
    try:
        codes = [_login(client, f"nobody{i}@bank.test", "wrong-password-123").status_code
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]
        other = _login(client, world.officer.email, factories.PASSWORD,
                       environ_base={"REMOTE_ADDR": "10.9.8.7"})
        assert other.status_code == 302
    finally:
        app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"] = "60 per 5 minutes"


def test_logout_ends_the_session_on_the_server_and_a_replayed_cookie_is_refused(app, world):
    client = app.test_client()
    login(client, world.officer)
    cookie = client.get_cookie("portal_session").value
    assert client.get("/bank/queue").status_code == 200
    assert client.post("/logout").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0

    replay = app.test_client()
    replay.set_cookie("portal_session", cookie)
    response = replay.get("/bank/queue")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_idle_session_expires(app, world):
    client = app.test_client()
    login(client, world.officer)
    session = db.session.scalar(select(UserSession))
    session.last_seen_at = utcnow() - app.config["IDLE_TIMEOUT"] - timedelta(minutes=1)
    db.session.commit()
    response = client.get("/bank/queue")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_no_remember_me_cookie_by_default(client, world):
    response = _login(client, world.officer.email, factories.PASSWORD)
    cookies = response.headers.getlist("Set-Cookie")
    assert not any(c.startswith("remember_token") for c in cookies)
    session_cookie = next(c for c in cookies if c.startswith("portal_session="))
    assert "HttpOnly" in session_cookie and "Expires" not in session_cookie


def test_deactivated_user_loses_their_session(app, world):
    client = app.test_client()
    login(client, world.officer)
    world.officer.active = False
    db.session.commit()
    assert client.get("/bank/queue").status_code == 302


def test_password_hashes_are_argon2(world):
    from portal.services import accounts

    hashed = accounts.hash_password("a-long-enough-password")
    assert hashed.startswith("$argon2")
    with pytest.raises(accounts.ValidationFailed):
        accounts.check_password_strength("short-pass")


@pytest.mark.parametrize("target,expected", [
    ("/bank/referrals", "/bank/referrals"),
    ("https://evil.example/", "/bank/queue"),
    ("//evil.example/", "/bank/queue"),
    ("/\\evil.example", "/bank/queue"),
    ("javascript:alert(1)", "/bank/queue"),
])
def test_next_redirect_only_goes_to_this_site(client, world, target, expected):
    response = client.post("/login", query_string={"next": target},
                           data={"email": world.officer.email, "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_forms_need_a_csrf_token(app, world):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        response = _login(client, world.officer.email, factories.PASSWORD)
        assert response.status_code == 400
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        response = client.post("/login", data={"email": world.officer.email,
                                                "password": factories.PASSWORD,
                                                "csrf_token": token})
        assert response.status_code == 302
        assert client.post("/logout").status_code == 400  # logout without a token is refused
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_language_switch_and_browser_choice(client, world):
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert 'lang="zh-CN"' in page.get_data(as_text=True)
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="en"' in page.get_data(as_text=True)
    client.post("/language/zh_CN", data={"next": "/login"})
    page = client.get("/login", headers={"Accept-Language": "en-US"})
    assert 'lang="zh-CN"' in page.get_data(as_text=True)


def test_the_chosen_language_outlives_a_logout(client, world):
    client.post("/language/zh_CN", data={"next": "/login"})
    login(client, world.officer)
    client.post("/logout")
    page = client.get("/login", headers={"Accept-Language": "en-US"})
    assert 'lang="zh-CN"' in page.get_data(as_text=True)


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_buyers_data_is_never_cached_and_https_is_pinned(client, world, as_user):
    # Downloads used send_file's "no-cache" (a copy may still be stored) and API JSON with buyer
    # data had no Cache-Control at all (issue 10).
    from portal.services import Ctx, documents
    from tests.integration_helpers import auth, make_key, pdf_bytes

    referral = factories.submit(world.partner_a)
    doc = documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "pay.pdf",
                           pdf_bytes())
    db.session.commit()
    key = make_key(world.partner_a)
    api = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(key))
    assert api.status_code == 200 and api.headers["Cache-Control"] == "no-store"
    as_user(world.officer)
    download = client.get(f"/bank/referrals/{referral.id}/documents/{doc.id}")
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://portal.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
