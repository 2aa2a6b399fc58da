"""Sessions and fresh logins, as the attacks they stop: a session left open (or stolen) that
reveals buyers' IDs, exports them, issues an agreement or changes a user; a session that lives for
ever; a session the owner cannot see or end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Agreement, AuditEntry, User, UserSession, utcnow
from portal.extensions import db
from portal.services import agreements
from tests import factories
from tests.conftest import login


def page(response) -> str:
    return response.get_data(as_text=True)


def age_sessions(minutes: int, *, field: str = "authenticated_at") -> None:
    db.session.execute(UserSession.__table__.update().values(
        **{field: utcnow() - timedelta(minutes=minutes)}))
    db.session.commit()


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- fresh login before sensitive actions ------------------------------------------------------

def test_a_reveal_without_a_fresh_login_asks_for_the_password_first(app, world):
    national_id = factories.national_id()
    referral = factories.submit(world.partner_a, national_id=national_id)
    db.session.commit()
    client = app.test_client()
    login(client, world.officer)
    age_sessions(app.config["FRESH_LOGIN_MINUTES"] + 1)  # the officer went to lunch
    form_page = f"/bank/referrals/{referral.id}"

    stale = client.post(f"{form_page}/reveal", headers={"Referer": f"http://localhost{form_page}"})

    assert stale.status_code == 302
    assert national_id not in page(stale)
    assert count(AuditEntry, AuditEntry.action == "referral.reveal") == 0
    reauth = stale.headers["Location"]
    assert reauth.startswith("/reauthenticate")
    wrong = client.post(reauth, data={"password": "not-the-password"})
    assert wrong.status_code == 200 and "Wrong password" in page(wrong)
    back = client.post(reauth, data={"password": factories.PASSWORD})
    # Back to the page that holds the reveal form, not a replay of the POST.
    assert back.status_code == 302 and back.headers["Location"] == form_page
    assert count(AuditEntry, AuditEntry.action == "referral.reveal") == 0
    revealed = client.post(f"{form_page}/reveal", data={"reason_code": "identity_verification"})
    assert revealed.status_code == 200 and national_id in page(revealed)


def test_a_csv_export_needs_a_fresh_login_and_comes_back_to_it(app, world):
    factories.submit(world.partner_a, buyer_name="Export Buyer")
    db.session.commit()
    client = app.test_client()
    login(client, world.partner_a)
    age_sessions(30)
    stale = client.get("/partner/referrals.csv?q=Export")
    assert stale.status_code == 302 and "Export Buyer" not in page(stale)
    back = client.post(stale.headers["Location"], data={"password": factories.PASSWORD})
    assert back.headers["Location"] == "/partner/referrals.csv?q=Export"
    assert "Export Buyer" in page(client.get(back.headers["Location"]))


def test_issuing_an_agreement_needs_a_fresh_login(app, world):
    from portal.services import Ctx
    from tests.test_agreements import terms

    org = factories.OrgFactory(agreement=False)
    draft = agreements.draft(Ctx(user=world.manager), org, terms())
    db.session.commit()
    client = app.test_client()
    login(client, world.manager)
    age_sessions(30)
    stale = client.post(f"/bank/agreements/{draft.id}/issue")
    assert "/reauthenticate" in stale.headers["Location"]
    assert db.session.get(Agreement, draft.id).status == "draft"


@pytest.mark.parametrize("who,url", [
    ("admin", "/admin/users/{user}/deactivate"),
    ("admin", "/admin/users/{user}/reset-password"),
    ("partner_a", "/partner/users/{user}/deactivate"),
])
def test_changing_a_user_needs_a_fresh_login(app, world, who, url):
    client = app.test_client()
    login(client, getattr(world, who))
    age_sessions(30)
    stale = client.post(url.format(user=world.agent_a.id))
    assert "/reauthenticate" in stale.headers["Location"]
    assert db.session.get(User, world.agent_a.id).active
    created = client.post("/admin/users" if who == "admin" else "/partner/users",
                          data={"email": "sneaky@a.test", "role": "partner_admin",
                                "org_id": str(world.org_a.id)})
    assert "/reauthenticate" in created.headers["Location"]
    assert count(User, User.email == "sneaky@a.test") == 0


# --- lifetimes and the user's own sessions -----------------------------------------------------

def test_a_busy_session_still_ends_at_its_absolute_lifetime(app, world):
    client = app.test_client()
    login(client, world.officer)
    hours = app.config["SESSION_MAX_AGE"] / timedelta(hours=1)
    # Used a minute ago (never idle), but opened longer ago than the lifetime.
    age_sessions(int(hours * 60) + 1, field="created_at")
    age_sessions(1, field="last_seen_at")
    response = client.get("/bank/queue")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert count(UserSession) == 0


def test_a_user_sees_their_sessions_and_ends_the_others(app, world):
    laptop = app.test_client()
    laptop.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36")
    login(laptop, world.agent_a)
    phone = app.test_client()
    phone.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36")
    login(phone, world.agent_a)
    other_user = app.test_client()
    login(other_user, world.partner_a)

    html = page(phone.get("/account"))
    assert html.count('data-testid="session-row"') == 2
    assert "Chrome · Windows" in html and "Chrome · Android" in html and "This session" in html
    assert "127.0.0.1" in html
    for session in db.session.scalars(select(UserSession)):  # no cookie value on the page
        assert session.id not in html

    assert phone.post("/account/sessions/end-others").status_code == 302
    assert laptop.get("/partner/").status_code == 302
    assert phone.get("/partner/").status_code == 200
    assert other_user.get("/partner/").status_code == 200  # another user's session is theirs


def test_ending_one_session_by_its_public_id(app, world):
    from portal.services.sessions import public_id

    first = app.test_client()
    login(first, world.agent_a)
    second = app.test_client()
    login(second, world.agent_a)
    older = db.session.scalars(select(UserSession).order_by(UserSession.created_at)).first()
    target = public_id(older.id)
    assert f'data-session="{target}"' in page(second.get("/account"))
    # Another user cannot end it by its id: it is not theirs.
    third = app.test_client()
    login(third, world.partner_a)
    assert third.post(f"/account/sessions/{target}/end").status_code == 404
    assert first.get("/partner/").status_code == 200
    assert second.post(f"/account/sessions/{target}/end").status_code == 302
    assert first.get("/partner/").status_code == 302
    assert second.get("/partner/").status_code == 200


def test_deactivation_ends_every_session(app, world, as_user):
    victim = app.test_client()
    login(victim, world.agent_a)
    as_user(world.partner_a).post(f"/partner/users/{world.agent_a.id}/deactivate")
    assert victim.get("/partner/").status_code == 302
    assert count(UserSession, UserSession.user_id == world.agent_a.id) == 0


@pytest.mark.parametrize("role", ["agent_a", "partner_a", "officer", "manager", "admin"])
def test_every_role_reaches_the_account_page_from_the_header(app, world, role):
    client = app.test_client()
    login(client, getattr(world, role))
    home = client.get("/", follow_redirects=True)
    assert 'data-testid="account-link"' in page(home)
    assert client.get("/account").status_code == 200
