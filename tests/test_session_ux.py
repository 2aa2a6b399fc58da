"""Not losing work to the idle timeout, and reaching the menu on a phone (issue 13).

Through the pages (the test client) and in Debian's Chromium, with Playwright's clock standing in
for half an hour of a partner's coffee break."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from models import Referral, UserSession, utcnow
from portal.extensions import db
from tests import factories
from tests.test_browser import log_in


def idle(minutes: int) -> None:
    """Every session was last used `minutes` ago."""
    db.session.execute(UserSession.__table__.update().values(
        last_seen_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()


# --- the server: an ended session is named as such ---------------------------------------------

def test_a_form_sent_after_the_idle_timeout_lands_on_a_login_that_says_so(world, as_user, app):
    client = as_user(world.agent_a)
    idle(31)

    response = client.post("/partner/referrals/new", data={"buyer_name": "王芳"})

    assert response.status_code == 302
    location = response.headers["Location"]
    assert "reason=expired" in location and "next=" in location
    page = client.get(location).get_data(as_text=True)
    assert 'data-testid="session-expired"' in page
    assert "it was unused for 30 minutes" in page
    assert "Please log in to see this page." not in page
    assert db.session.query(Referral).count() == 0


def test_a_visitor_who_never_logged_in_is_not_told_of_an_expiry(client, world):
    response = client.get("/partner/referrals/new")
    assert "reason=expired" not in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="session-expired"' not in page
    assert "Please log in to see this page." in page


def test_the_login_page_states_the_configured_timeout(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "IDLE_TIMEOUT", timedelta(minutes=12))
    page = client.get("/login").get_data(as_text=True)
    assert "Sessions end after 12 minutes without activity." in page
    assert "30 minutes" not in page


def test_keep_alive_restarts_the_idle_clock(world, as_user):
    client = as_user(world.agent_a)
    idle(25)
    answer = client.post("/session/keep-alive")
    assert answer.status_code == 200 and answer.get_json() == {"idle_minutes": 30}
    idle_before = db.session.scalar(db.select(UserSession.last_seen_at))
    assert utcnow() - idle_before.replace(tzinfo=utcnow().tzinfo) < timedelta(minutes=1)
    idle(31)
    assert client.post("/session/keep-alive").status_code == 302  # nothing left to keep


def test_every_logged_in_page_carries_the_timeout_for_the_warning(world, as_user, app,
                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "IDLE_TIMEOUT", timedelta(minutes=15))
    page = as_user(world.officer).get("/bank/queue").get_data(as_text=True)
    assert 'data-idle-minutes="15"' in page and 'data-keep-alive-url="/session/keep-alive"' in page
    assert "session.js" in page and 'data-testid="idle-warning"' in page


# --- the browser: warning, stay signed in, expiry, the draft -----------------------------------

@pytest.fixture
def agent(world):
    db.session.commit()
    return world.agent_a


def test_warning_then_stay_signed_in_then_expiry_and_the_draft_comes_back(page, agent):
    page.clock.install()
    log_in(page, agent)
    page.goto("/partner/referrals/new")
    page.fill("#buyer_name", "王芳")
    page.fill("#employer", "市第二医院")
    page.fill("#national_id", factories.national_id(5))
    page.fill("#mobile", factories.mobile(5))
    page.fill("#amount", "650000")
    dialog = page.locator("[data-testid=idle-warning]")
    assert not dialog.is_visible()

    # 30 minutes, counted from a minute before the page: the warning two minutes before the end.
    page.clock.run_for("26:30")
    assert not dialog.is_visible()
    page.clock.run_for("00:40")
    assert dialog.is_visible()
    assert re.fullmatch(r"1:\d\d", page.text_content("[data-idle-left]"))
    with page.expect_response("**/session/keep-alive") as answer:
        page.click("[data-testid=stay-signed-in]")
    assert answer.value.status == 200
    page.wait_for_function("!document.querySelector('[data-testid=idle-warning]').open")

    # Away for good: the page ends the session and says why on the login page.
    page.clock.run_for("29:30")
    page.wait_for_url(re.compile(r".*/login\?reason=expired&next=.*"))
    assert page.is_visible("[data-testid=session-expired]")
    page.fill("input[name=email]", agent.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/partner/referrals/new$"))

    assert page.is_visible("[data-testid=draft-restored]")
    assert page.input_value("#buyer_name") == "王芳"
    assert page.input_value("#employer") == "市第二医院"
    assert page.input_value("#amount") == "650000"
    # The buyer's identifiers were never written to the browser's storage.
    assert page.input_value("#national_id") == "" and page.input_value("#mobile") == ""
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    stored += page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert factories.national_id(5) not in stored and factories.mobile(5) not in stored


def test_the_draft_is_gone_once_the_referral_is_submitted(page, agent):
    log_in(page, agent)
    page.goto("/partner/referrals/new")
    for name, value in factories.intake(national_id=factories.national_id(6),
                                        mobile=factories.mobile(6)).items():
        if name == "consent":
            page.check("#consent")
        elif page.locator(f"select#{name}").count():
            page.select_option(f"#{name}", value)
        elif page.locator(f"#{name}").count():
            page.fill(f"#{name}", value)
    page.click("form[data-draft] input[type=submit]")
    page.wait_for_url(re.compile(r".*/partner/referrals/\d+$"))
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('portal.draft'))"
                         ) == []
    page.goto("/partner/referrals/new")
    assert page.input_value("#buyer_name") == ""
    assert not page.is_visible("[data-testid=draft-restored]")


def test_errors_are_tied_to_their_fields_and_take_the_focus(page, agent):
    log_in(page, agent)
    page.goto("/partner/referrals/new")
    page.fill("#national_id", "123")
    page.click("form[data-draft] input[type=submit]")
    page.wait_for_load_state()
    first = page.evaluate("document.activeElement.id")
    invalid = page.evaluate("[...document.querySelectorAll('[aria-invalid=true]')].map(e => e.id)")
    assert invalid and first == invalid[0]
    described = page.get_attribute("#national_id", "aria-describedby").split()
    messages = [page.text_content(f"#{i}") for i in described if "error" in i]
    assert messages and all(messages)


# --- the menu on a phone -----------------------------------------------------------------------

@pytest.mark.parametrize("script", [True, False])
def test_the_phone_menu_opens_with_and_without_javascript(chromium, live_server, world, script):
    db.session.commit()
    context = chromium.new_context(base_url=live_server, viewport={"width": 390, "height": 800},
                                   java_script_enabled=script)
    page = context.new_page()
    try:
        log_in(page, world.manager)
        page.goto("/bank/queue")
        conflicts = page.locator("#main-menu a[href='/bank/conflicts']")
        assert not conflicts.is_visible()
        toggle = page.locator("[data-testid=menu-toggle]")
        assert toggle.get_attribute("aria-expanded") == "false"
        toggle.click()
        assert conflicts.is_visible()
        if script:
            assert toggle.get_attribute("aria-expanded") == "true"
        # The "More" group opens as a disclosure, script or not.
        page.click("[data-testid=nav-more] summary")
        assert page.locator("#main-menu a[href='/bank/contacts']").is_visible()
        assert page.get_attribute("#main-menu a[href='/bank/queue']", "aria-current") == "page"
    finally:
        context.close()


def test_grant_asks_before_it_sends(page, world):
    holder_id = factories.national_id(4343)
    factories.submit(world.partner_a, national_id=holder_id)
    challenger = factories.submit(world.partner_b, national_id=holder_id)
    db.session.commit()
    log_in(page, world.manager)
    page.goto("/bank/conflicts")
    page.fill(f"#reason-{challenger.id}", "Buyer chose B in writing")
    page.check(f"#confirm-{challenger.id}")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click(f"tr[data-referral-id='{challenger.id}'] button[value=grant]")
    assert asked and f"#{challenger.id}" in asked[0] and "Partner B" in asked[0]
    db.session.refresh(challenger)
    assert challenger.status == "conflict"
