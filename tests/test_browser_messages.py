"""Messages on a referral in a real browser: the partner's agent asks, the officer sees the
menu badge, answers from the referral page, and the agent reads the answer."""

from playwright.sync_api import expect

from portal.extensions import db
from portal.services import Ctx, referrals
from tests import factories
from tests.test_browser import log_in, log_out


def test_a_question_and_its_answer_through_the_pages(page, world, tmp_path):
    referral = factories.submit(world.agent_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()

    log_in(page, world.agent_a)
    page.goto(f"/partner/referrals/{referral.id}")
    contact = page.get_by_test_id("bank-contact")
    assert world.officer.name in contact.inner_text()
    page.fill("#message-body", "")
    page.click("[data-testid=message-form] button[type=submit]")
    # expect() waits for the answer to the submit (an assertion on the spot raced the POST).
    expect(page.get_by_test_id("message-refused")).to_be_visible()
    page.fill("#message-body", "Can the signing be on Friday afternoon?")
    page.click("[data-testid=message-form] button[type=submit]")
    expect(page.get_by_test_id("thread")).to_contain_text("Can the signing be on Friday afternoon?")
    page.screenshot(path=str(tmp_path / "partner.png"), full_page=True)
    log_out(page)

    log_in(page, world.officer)
    assert page.get_by_test_id("unread-messages").inner_text() == "1"
    page.click("[data-testid=nav-messages]")
    page.click(f"[data-referral-id='{referral.id}'] a")
    expect(page.get_by_test_id("thread-unread")).to_be_visible()
    page.fill("#message-body", "Yes, 14:00 at the Pudong branch.")
    page.click("[data-testid=message-form] button[type=submit]")
    expect(page.get_by_test_id("thread")).to_contain_text("14:00 at the Pudong branch")
    expect(page.get_by_test_id("unread-messages")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "bank.png"), full_page=True)
    log_out(page)

    log_in(page, world.agent_a)
    assert page.get_by_test_id("unread-messages").inner_text() == "1"
    page.goto(f"/partner/referrals/{referral.id}")
    assert "14:00 at the Pudong branch" in page.get_by_test_id("thread").inner_text()
    assert "Read by the bank" in page.get_by_test_id("thread").inner_text()
