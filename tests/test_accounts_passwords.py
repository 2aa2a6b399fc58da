"""Passwords, as the attacks they stop: a one-time password used twice; a one-time session that
goes anywhere but the change page; an administrator who sees a user's new password; a stolen
session that survives a password change; a reset link used twice."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEntry, PasswordResetToken, User, UserSession, utcnow
from portal.extensions import db
from portal.services import accounts
from tests import factories
from tests.conftest import login
from tests.test_notifications import SmtpSink

NEW = "a-brand-new-password-2026"


def page(response) -> str:
    return response.get_data(as_text=True)


def post_login(client, email, password):
    return client.post("/login", data={"email": email, "password": password})


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


@pytest.fixture
def mail(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", sink.port)
        monkeypatch.setitem(app.config, "PORTAL_URL", "https://portal.bank.test")
        yield sink


def one_time_from_cli(cli, *args) -> str:
    result = cli.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return re.search(r"One-time password(?: for \S+)?: (\S+)", result.output).group(1)


# --- one-time passwords ------------------------------------------------------------------------

def test_a_one_time_password_works_once_and_only_to_choose_a_new_one(app, world, cli):
    password = one_time_from_cli(cli, "users", "create", "--email", "new@a.test", "--role",
                                 "partner_agent", "--org", world.org_a.code)
    client = app.test_client()
    first = post_login(client, "new@a.test", password)
    assert first.status_code == 302 and first.headers["Location"].endswith("/account/new-password")
    # Held: every other page leads back to the change, GET or POST.
    for url in ("/partner/", "/partner/referrals", "/account", "/partner/referrals.csv"):
        held = client.get(url)
        assert held.headers["Location"].endswith("/account/new-password"), url
    assert client.post("/partner/referrals/new").headers["Location"].endswith(
        "/account/new-password")

    # Whoever else holds the one-time password (it was read aloud, or written down) is late.
    second = post_login(app.test_client(), "new@a.test", password)
    assert second.status_code == 200 and "expired" in page(second)

    weak = client.post("/account/new-password", data={"new_password": "short",
                                                      "confirm": "short"})
    assert weak.status_code == 422 and "at least 12 characters" in page(weak)
    done = client.post("/account/new-password", data={"new_password": NEW, "confirm": NEW})
    assert done.status_code == 302
    assert client.get("/partner/").status_code == 200
    login(app.test_client(), db.session.scalar(select(User).where(User.email == "new@a.test")),
          password=NEW)


def test_an_unused_one_time_password_expires(app, world, cli):
    password = one_time_from_cli(cli, "users", "create", "--email", "late@a.test", "--role",
                                 "partner_agent", "--org", world.org_a.code)
    user = db.session.scalar(select(User).where(User.email == "late@a.test"))
    assert user.password_expires_at <= utcnow() + timedelta(
        hours=app.config["ONE_TIME_PASSWORD_HOURS"])
    user.password_expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    refused = post_login(app.test_client(), "late@a.test", password)
    assert refused.status_code == 200 and "expired" in page(refused)


def test_cli_reset_prints_a_one_time_password_and_ends_every_session(app, world, cli):
    victim = app.test_client()
    login(victim, world.agent_a)
    password = one_time_from_cli(cli, "users", "reset-password", "--email", "agent@a.test")
    assert victim.get("/partner/").status_code == 302  # the old session is gone
    assert post_login(app.test_client(), "agent@a.test", factories.PASSWORD).status_code == 200
    client = app.test_client()
    assert post_login(client, "agent@a.test", password).headers["Location"].endswith(
        "/account/new-password")
    assert cli.invoke(args=["users", "reset-password", "--email", "nobody@a.test"]).exit_code != 0


def test_users_create_with_a_given_password_is_not_one_time(app, world, cli):
    result = cli.invoke(args=["users", "create", "--email", "own@bank.test", "--role", "admin",
                              "--password", "a-long-enough-password"])
    assert result.exit_code == 0 and "One-time password" not in result.output
    response = post_login(app.test_client(), "own@bank.test", "a-long-enough-password")
    assert response.headers["Location"].endswith("/admin/")


# --- self-service change -----------------------------------------------------------------------

def test_a_stolen_session_does_not_survive_a_password_change(app, world):
    thief = app.test_client()
    login(thief, world.agent_a)
    owner = app.test_client()
    login(owner, world.agent_a)
    assert thief.get("/partner/").status_code == 200

    changed = owner.post("/account/password", data={
        "current_password": factories.PASSWORD, "new_password": NEW, "confirm": NEW})
    assert changed.status_code == 302
    assert owner.get("/partner/").status_code == 200  # the session that changed it continues
    assert thief.get("/partner/").headers["Location"].startswith("/login")
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 1
    assert post_login(app.test_client(), world.agent_a.email, factories.PASSWORD
                      ).status_code == 200
    login(app.test_client(), world.agent_a, password=NEW)


def test_change_needs_the_current_password_and_guesses_count_toward_the_lock(app, world):
    client = app.test_client()
    login(client, world.agent_a)
    mismatch = client.post("/account/password", data={
        "current_password": factories.PASSWORD, "new_password": NEW, "confirm": NEW + "x"})
    assert mismatch.status_code == 422 and "not the same" in page(mismatch)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        wrong = client.post("/account/password", data={
            "current_password": "a-wrong-guess-123", "new_password": NEW, "confirm": NEW})
        assert wrong.status_code == 200 and "Wrong password" in page(wrong)
    db.session.expire_all()
    user = db.session.get(User, world.agent_a.id)
    assert user.locked_until is not None
    assert accounts._verify(user.password_hash, factories.PASSWORD)  # unchanged


# --- administrators' resets --------------------------------------------------------------------

def test_an_admins_reset_shows_no_password_and_mails_a_single_use_link(app, world, as_user,
                                                                       mail):
    victim = app.test_client()
    login(victim, world.agent_a)
    admin = as_user(world.admin)

    response = admin.post(f"/admin/users/{world.agent_a.id}/reset-password")

    assert response.status_code == 302
    after = page(admin.get(response.headers["Location"]))
    assert "A link to choose a new password was sent to agent@a.test" in after
    [message] = mail.parsed()
    assert message["To"].addresses[0].addr_spec == "agent@a.test"
    link = re.search(r"https://portal\.bank\.test(/password/reset/\S+)",
                     message.get_content()).group(1)
    token = link.rsplit("/", 1)[1]
    assert token not in after and token not in page(admin.get("/admin/users"))
    stored = db.session.scalars(select(PasswordResetToken.token_hash)).all()
    assert token not in stored  # kept hashed
    assert victim.get("/partner/").status_code == 302  # sessions ended
    assert post_login(app.test_client(), "agent@a.test", factories.PASSWORD).status_code == 200

    anyone = app.test_client()
    assert "agent@a.test" in page(anyone.get(link))
    assert anyone.post(link, data={"new_password": NEW, "confirm": NEW}).status_code == 302
    login(app.test_client(), world.agent_a, password=NEW)
    # The same link a second time (forwarded, or read from the mailbox later) is dead.
    reused = app.test_client().post(link, data={"new_password": NEW + "2", "confirm": NEW + "2"})
    assert reused.status_code == 404
    login(app.test_client(), world.agent_a, password=NEW)


def test_a_reset_link_expires(app, world, as_user, mail):
    as_user(world.admin).post(f"/admin/users/{world.agent_a.id}/reset-password")
    link = re.search(r"(/password/reset/\S+)", mail.parsed()[0].get_content()).group(1)
    db.session.execute(PasswordResetToken.__table__.update().values(
        expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    client = app.test_client()
    assert client.get(link).status_code == 404
    assert client.post(link, data={"new_password": NEW, "confirm": NEW}).status_code == 404


def test_new_users_by_admins_and_partner_admins_get_a_link_not_a_password(app, world, as_user,
                                                                         mail):
    client = as_user(world.partner_a)
    response = client.post("/partner/users", data={"email": "fresh@a.test", "name": "Fresh",
                                                   "role": "partner_agent"})
    assert response.status_code == 302
    shown = page(client.get("/partner/users"))
    assert "A link to choose a password was sent" in shown
    [message] = mail.parsed()
    link = re.search(r"(/password/reset/\S+)", message.get_content()).group(1)
    assert link.rsplit("/", 1)[1] not in shown
    app.test_client().post(link, data={"new_password": NEW, "confirm": NEW})
    created = db.session.scalar(select(User).where(User.email == "fresh@a.test"))
    assert login(app.test_client(), created, password=NEW).headers["Location"].endswith(
        "/partner/")


def test_a_failing_mail_server_changes_nothing(app, world, as_user, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", port)
    admin = as_user(world.admin)
    response = admin.post(f"/admin/users/{world.agent_a.id}/reset-password")
    assert response.status_code == 302
    assert "could not be sent" in page(admin.get(response.headers["Location"]))
    login(app.test_client(), world.agent_a)
    assert db.session.scalar(select(func.count(PasswordResetToken.id))) == 0


def test_the_audit_log_records_password_events_without_secrets(app, world, cli):
    password = one_time_from_cli(cli, "users", "reset-password", "--email", "agent@a.test")
    client = app.test_client()
    post_login(client, "agent@a.test", password)
    client.post("/account/new-password", data={"new_password": NEW, "confirm": NEW})
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action.like("user.password%"))).all()
    assert {e.action for e in entries} == {"user.password_reset", "user.password_change"}
    assert not any(password in repr(e.detail) or NEW in repr(e.detail) for e in entries)
