"""The core loop in a real browser: a partner refers a buyer, the bank asks for documents, the
partner uploads them and sends the referral back, the bank approves; and the language switch."""

import re

import pytest

from portal.extensions import db
from tests import factories
from tests.integration_helpers import pdf_bytes

PDF = pdf_bytes()


def log_in(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def log_out(page):
    page.click("text=Log out")
    page.wait_for_url(re.compile(r".*/login$"))


@pytest.fixture
def people(world):
    db.session.commit()
    return world


def test_core_loop_through_the_browser(page, people, tmp_path):
    nid = factories.national_id(77)
    # 1. The partner's agent refers a buyer.
    log_in(page, people.agent_a)
    page.goto("/partner/referrals/new")
    page.select_option("select[name=product]", "consumer_loan")
    page.fill("input[name=buyer_name]", "李娜")
    page.fill("input[name=national_id]", nid[:-1] + ("0" if nid[-1] != "0" else "1"))
    page.fill("input[name=mobile]", "13912345678")
    page.fill("input[name=employer]", "国家电网")
    page.select_option("select[name=industry]", "utilities")
    page.fill("input[name=monthly_income]", "18000")
    page.fill("input[name=amount]", "80000")
    page.fill("input[name=term_months]", "36")
    page.check("input[name=consent]")
    page.click("input[type=submit]")
    # A wrong check digit: the error sits on its field and nothing typed is lost.
    assert page.locator("[data-error-for=national_id]").count() == 1
    assert page.input_value("input[name=buyer_name]") == "李娜"
    assert page.input_value("input[name=amount]") == "80000"
    page.fill("input[name=national_id]", nid)
    page.check("input[name=consent]")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/partner/referrals/\d+$"))
    referral_url = page.url
    referral_id = int(referral_url.rsplit("/", 1)[1])
    assert page.locator("[data-status=submitted]").count() >= 1
    assert nid not in page.content()  # masked for the partner
    log_out(page)

    # 2. The officer finds it in the queue and asks for proof of income.
    log_in(page, people.officer)
    page.goto("/bank/queue")
    # Every row's "Take" posts the one form above the table to its own referral (formaction).
    row = page.locator(f"tr[data-referral-id='{referral_id}']")
    row.locator("[data-testid=take]").click()
    page.wait_for_url(re.compile(r".*/bank/queue$"))
    assert page.locator(f"tr[data-referral-id='{referral_id}'] [data-testid=assignee]"
                        ).inner_text().startswith(people.officer.name)
    page.click(f"a[href='/bank/referrals/{referral_id}']")
    page.wait_for_url(re.compile(rf".*/bank/referrals/{referral_id}$"))
    page.check("#kind-income_proof")
    page.fill("#request-note", "请提供近六个月工资流水")
    page.click("form[data-action=documents_requested] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-status=documents_requested]").count() >= 1
    log_out(page)

    # 3. The agent uploads both checklist documents and sends the referral back.
    log_in(page, people.agent_a)
    page.goto(referral_url)
    assert "请提供近六个月工资流水" in page.content()
    pdf = tmp_path / "payslips.pdf"
    pdf.write_bytes(PDF)
    for kind in ("id_card", "income_proof"):
        page.select_option("select[name=kind]", kind)
        page.set_input_files("input[name=file]", str(pdf))
        page.click("form[enctype='multipart/form-data'] input[type=submit]")
        page.wait_for_load_state()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Documents provided — send back to the bank")
    page.wait_for_load_state()
    assert page.locator("[data-status=under_review]").count() >= 1
    log_out(page)

    # 4. The officer approves.
    log_in(page, people.officer)
    page.goto(f"/bank/referrals/{referral_id}")
    # With terms (issue 13): the amount asked is filled in; a lower one is a counter-offer.
    page.fill("form[data-action=approved] input[name=amount]", "60000")
    page.fill("form[data-action=approved] input[name=rate_percent]", "3.85")
    page.fill("form[data-action=approved] textarea[name=conditions]",
              "Co-borrower's income proof before signing")
    page.click("form[data-action=approved] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("[data-status=approved]").count() >= 1
    assert page.locator("[data-testid=approved-amount]").inner_text() == "¥60,000.00"


def test_language_switch_turns_the_page_chinese(page, people):
    page.goto("/login")
    assert page.get_attribute("html", "lang") == "en"
    page.click("[data-testid=lang-switch]")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "登录" in page.content()
