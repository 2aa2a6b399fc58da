"""Every journey of issue 13 end to end in Debian's Chromium, in English and in Chinese: each
step is a click or a keystroke on the real pages, served by one live server.

1. an agent submits a referral and uploads a document with it;
2. an officer asks for exactly one item, and the partner uploads exactly that item from a
   390 px page and sends the referral back;
3. the officer approves with terms, records the contract and the disbursement, and the partner
   sees each step and the terms on its referral page and timeline;
4. a partner administrator accepts an agreement and downloads its PDF;
5. a channel manager settles a duplicate registration and reads the partner's scorecard;
6. a wrong password, a form sent with errors and an expired session each behave well.

Only what the portal has no page for, or what the journey does not walk (the accounts, a
second partner's earlier registration of the same buyer, an issued agreement, the computed
scorecards, half an hour of idleness), is set up in the database. Every page visited is
checked with axe-core (WCAG 2.1 A/AA, as tests/test_browser_a11y.py) and must not scroll
sideways at 390 px; screenshots at 390 and 1366 px go to tests/artifacts/journeys/<lang>/,
the axe findings per page to tests/artifacts/journeys/axe-summary.json."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pikepdf
import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from models import Agreement, Referral, UserSession, utcnow
from portal.extensions import db
from portal.labels import DOCUMENT_KINDS, PARTNER_STATES
from portal.services import agreements
from tests import factories
from tests.integration_helpers import pdf_bytes
from tests.test_browser_a11y import AXE, RUN_AXE
from tests.test_scorecard_pages import scored  # noqa: F401  (a fixture: computed scorecards)

pytestmark = pytest.mark.walk

LANGUAGES = {"en": "en-US", "zh": "zh-CN"}
CATALOG = {"en": "en", "zh": "zh_CN"}
HTML_LANG = {"en": "en", "zh": "zh-CN"}
PHONE, LAPTOP = 390, 1366
OUT = AXE.parent.parent.parent / "artifacts" / "journeys"
SUMMARY = OUT / "axe-summary.json"
AXE_SCRIPT = AXE.read_text(encoding="utf-8") + "\n;true"
CJK = re.compile(r"[\u4e00-\u9fff]")

# A button's or badge's word split over two lines ("Wit/hdr/aw"): squeezed by its neighbours.
# Latin words only: Chinese text may break between any two characters.
BROKEN_WORDS = """
() => {
  const out = [];
  document.querySelectorAll('main button, main .btn, main .badge').forEach(el => {
    if (!el.offsetParent) { return; }
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/[A-Za-z]{3,}/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                .map(r => Math.round(r.bottom)));
        if (lines.size > 1) { out.push(m[0] + ' in "' + el.textContent.trim().slice(0, 40) + '"'); }
      }
    }
  });
  return out;
}
"""

# What is shown but cannot be read: an amount with two yuan signs, a date field too narrow for
# a date (the sidebar's three columns once left "mm/dd/" of it).
CRAMPED = """
() => {
  const out = [];
  if (document.body.innerText.includes('¥¥')) { out.push('an amount written ¥¥'); }
  document.querySelectorAll('main input[type=date]').forEach(e => {
    const width = e.getBoundingClientRect().width;
    if (e.offsetParent && width < 130) { out.push(`#${e.id} is ${Math.round(width)}px wide`); }
  });
  return out;
}
"""


class Walk:
    """One language's browser contexts (a role each), and what every page visited showed."""

    def __init__(self, app, chromium, live_server, lang):
        self.app, self.chromium, self.base, self.lang = app, chromium, live_server, lang
        self.contexts, self.problems, self.dialogs = [], [], []

    def t(self, msgid, **values) -> str:
        """The text the page shows for msgid in this walk's language (the catalog's own)."""
        with self.app.test_request_context(), force_locale(CATALOG[self.lang]):
            text = gettext(msgid, **values)
        if self.lang == "zh":
            assert CJK.search(text), f"not translated: {msgid}"
        return text

    def label(self, lazy) -> str:
        with self.app.test_request_context(), force_locale(CATALOG[self.lang]):
            return str(lazy)

    def browser(self, width=LAPTOP):
        context = self.chromium.new_context(base_url=self.base, locale=LANGUAGES[self.lang],
                                            viewport={"width": width, "height": 900},
                                            accept_downloads=True)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        # Every confirmation the portal asks for is answered yes, and kept to be read.
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.accept()))
        return page

    def log_in(self, page, user, step, password=factories.PASSWORD):
        page.goto("/login")
        self.check(page, step)
        page.fill("input[name=email]", user.email)
        page.fill("input[name=password]", password)
        page.click("input[type=submit]")
        if password == factories.PASSWORD:
            expect(page).not_to_have_url(re.compile(r".*/login(\?.*)?$"))
            expect(page.locator("[data-testid=menu-toggle]")).to_be_attached()

    def check(self, page, step):
        """axe, the width at a phone, screenshots at both widths, the page's language."""
        page.wait_for_load_state("load")
        expect(page.locator("html")).to_have_attribute("lang", HTML_LANG[self.lang])
        # The page speaks the walk's language: its title (no buyer's name in it).
        title = page.title()
        if bool(CJK.search(title)) != (self.lang == "zh"):
            self.problems.append(f"{step} {page.url}: not in {self.lang}: {title!r}")
        width = page.viewport_size["width"]
        page.evaluate(AXE_SCRIPT)
        assert page.evaluate("axe.version").startswith("4."), "axe-core did not load"
        found = page.evaluate(RUN_AXE)
        serious = [v for v in found if v["impact"] in ("serious", "critical")]
        self.problems += [f"{step} {page.url}: {v['id']} ({v['impact']}) {v['help']}: "
                          f"{v['nodes'][:3]}" for v in serious]
        record(self.lang, step, page.url.removeprefix(self.base), width, found)
        out = OUT / self.lang
        out.mkdir(parents=True, exist_ok=True)
        for shown in (PHONE, LAPTOP):
            page.set_viewport_size({"width": shown, "height": 900})
            if shown == PHONE:
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > PHONE:
                    self.problems.append(f"{step} {page.url}: {scroll}px wide at {PHONE}px")
                self.problems += [f"{step} {page.url}: a word broken at {PHONE}px: {word}"
                                  for word in page.evaluate(BROKEN_WORDS)]
            self.problems += [f"{step} {page.url} at {shown}px: {wrong}"
                              for wrong in page.evaluate(CRAMPED)]
            page.screenshot(path=str(out / f"{step}-{shown}.png"), full_page=True)
        page.set_viewport_size({"width": width, "height": 900})

    def close(self):
        for context in self.contexts:
            context.close()


def record(lang, step, path, width, violations):
    summary = json.loads(SUMMARY.read_text(encoding="utf-8")) if SUMMARY.exists() else {}
    counts = {}
    for v in violations:
        counts[v["impact"]] = counts.get(v["impact"], 0) + 1
    summary.setdefault(lang, {})[step] = {
        "path": path, "axe_width": width, "violations": len(violations), "by_impact": counts,
        "rules": sorted(f"{v['id']} ({v['impact']})" for v in violations)}
    OUT.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, ensure_ascii=False, indent=1, sort_keys=True),
                       encoding="utf-8")


@pytest.fixture(params=list(LANGUAGES))
def walk(request, app, chromium, live_server):
    w = Walk(app, chromium, live_server, request.param)
    yield w
    w.close()


def fill_intake(page, zh, nid):
    """A consumer loan for 李娜 typed into the new-referral form (in Chinese with 万), sent."""
    page.select_option("#product", "consumer_loan")
    page.fill("#amount", "8万" if zh else "80,000")
    page.fill("#term_months", "36")
    page.fill("#buyer_name", "李娜")
    page.fill("#national_id", nid)
    page.fill("#mobile", factories.mobile(901))
    page.fill("#employer", "国家电网")
    page.select_option("#industry", "utilities")
    page.fill("#monthly_income", "18000")
    page.check("#consent")
    page.click("form[data-draft] input[type=submit]")


def status(page, state):
    return expect(page.locator(f"[data-status={state}]").first)


# --- 1 to 3: a referral from the partner's form to the money paid out ---------------------------

def test_referral_from_intake_to_disbursement(walk, world, tmp_path):
    db.session.commit()
    zh = walk.lang == "zh"
    pdf = tmp_path / "id-card.pdf"
    pdf.write_bytes(pdf_bytes())
    nid = factories.national_id(901 if zh else 902)

    # 1. The agent refers a buyer (in Chinese with the amount in 万) and uploads the ID card.
    agent = walk.browser()
    walk.log_in(agent, world.agent_a, "1-01-login")
    walk.check(agent, "1-02-dashboard")
    agent.goto("/partner/referrals/new")
    expect(agent.locator("h1")).to_have_text(walk.t("New referral"))
    walk.check(agent, "1-03-new-referral")
    fill_intake(agent, zh, nid)
    expect(agent).to_have_url(re.compile(r".*/partner/referrals/\d+$"))
    status(agent, "submitted").to_be_visible()
    rid = int(agent.url.rsplit("/", 1)[1])
    expect(agent.locator("body")).not_to_contain_text(nid)  # masked for the partner
    walk.check(agent, "1-04-referral-submitted")
    agent.select_option("#kind", "id_card")
    agent.set_input_files("#file", str(pdf))
    agent.click("form[action$='/documents'] input[type=submit]")
    expect(agent.locator("[data-testid=checklist] [data-kind=id_card] a")).to_have_text(
        "id-card.pdf")
    walk.check(agent, "1-05-document-uploaded")

    # 2. The officer finds it in the queue and asks for proof of income, and only that.
    officer = walk.browser()
    walk.log_in(officer, world.officer, "2-01-login")
    expect(officer.locator(f"a[href='/bank/referrals/{rid}']").first).to_be_visible()
    walk.check(officer, "2-02-queue")
    officer.click(f"a[href='/bank/referrals/{rid}']")
    expect(officer).to_have_url(re.compile(rf".*/bank/referrals/{rid}$"))
    walk.check(officer, "2-03-bank-referral")
    officer.check("#kind-income_proof")
    officer.fill("#request-note", "近六个月工资流水" if zh else "Six months of payslips")
    officer.click("form[data-action=documents_requested] button[type=submit]")
    status(officer, "documents_requested").to_be_visible()
    walk.check(officer, "2-04-documents-requested")

    # The partner, on a phone, is asked for exactly that one item, and uploads exactly it.
    phone = walk.browser(PHONE)
    walk.log_in(phone, world.agent_a, "2-05-phone-login")
    phone.goto(f"/partner/referrals/{rid}")
    status(phone, "documents_requested").to_be_visible()
    expect(phone.locator("[data-testid=outstanding] strong")).to_have_text(
        [walk.label(DOCUMENT_KINDS["income_proof"])])
    asked = phone.locator("[data-testid=checklist] [data-item-status=missing]")
    expect(asked).to_have_count(1)
    expect(asked).to_have_attribute("data-kind", "income_proof")
    expect(phone.locator("[data-testid=send-back-blocked]")).to_be_disabled()
    # Nothing else of the product's checklist: only the item asked and the ID card sent.
    kinds = phone.locator("[data-testid=checklist] > li")
    expect(kinds).to_have_count(2)
    assert sorted(kinds.evaluate_all("items => items.map(i => i.dataset.kind)")) == [
        "id_card", "income_proof"]
    walk.check(phone, "2-06-phone-asked")
    payslips = tmp_path / "payslips.pdf"
    payslips.write_bytes(pdf_bytes())
    item = asked.get_attribute("data-item")
    phone.set_input_files(f"#files-{item}", str(payslips))
    phone.click(f"[data-item='{item}'] form[data-item-upload] button[type=submit]")
    expect(phone.locator(f"[data-item='{item}']")).to_have_attribute("data-item-status",
                                                                    "uploaded")
    expect(phone.locator(f"[data-item='{item}'] a")).to_have_text("payslips.pdf")
    walk.check(phone, "2-07-phone-uploaded")
    phone.click(f"text={walk.t('Documents provided — send back to the bank')}")
    status(phone, "under_review").to_be_visible()
    walk.check(phone, "2-08-phone-sent-back")

    # 3. The officer accepts the payslips and approves less than asked, with conditions; a
    # rate that is no number first comes back as an error on its own field.
    officer.goto(f"/bank/referrals/{rid}")
    status(officer, "under_review").to_be_visible()
    officer.click(f"[data-testid=accept-item-{item}]")
    expect(officer.locator(f"tr[data-item='{item}'] [data-stipulation-status]")).to_have_attribute(
        "data-stipulation-status", "accepted")
    walk.check(officer, "3-01-item-accepted")
    approve = "form[data-action=approved]"
    officer.fill(f"{approve} #approve-amount", "60000")
    officer.fill(f"{approve} #approve-term", "24")
    officer.fill(f"{approve} #approve-rate", "three")
    officer.click(f"{approve} button[type=submit]")
    expect(officer.locator("[data-testid=form-refused]")).to_be_visible()
    rate = officer.locator("#approve-rate")
    expect(rate).to_have_attribute("aria-invalid", "true")
    expect(rate).to_be_focused()
    described = rate.get_attribute("aria-describedby").split()
    expect(officer.locator(f"#{described[-1]}")).not_to_be_empty()
    expect(officer.locator("#approve-amount")).to_have_value("60000")
    walk.check(officer, "3-02-approval-refused")
    conditions = (["签约前提供共同借款人收入证明", "放款至售楼处监管账户"] if zh
                  else ["Co-borrower's income proof before signing", "Paid to the escrow account"])
    officer.fill("#approve-rate", "3.85")
    officer.fill(f"{approve} #approve-conditions", "\n".join(conditions))
    officer.click(f"{approve} button[type=submit]")
    status(officer, "approved").to_be_visible()
    expect(officer.locator("[data-testid=approved-amount]")).to_have_text("¥60,000.00")
    walk.check(officer, "3-03-approved")

    def partner_sees(step, *texts):
        phone.goto(f"/partner/referrals/{rid}")
        for text in texts:
            expect(phone.locator("[data-testid=decision]")).to_contain_text(text)
            expect(phone.locator("[data-testid=timeline]")).to_contain_text(text)
        walk.check(phone, step)

    partner_sees("3-04-partner-approved", "¥60,000.00", "3.85%", *conditions)
    status(phone, "approved").to_be_visible()
    expect(phone.locator("[data-testid=counter-offer]")).to_contain_text(
        walk.t("Approved with changes:"))
    expect(phone.locator("[data-testid=conditions] li")).to_have_text(conditions)

    today = agreements.local_today().isoformat()
    officer.fill("#contract-number", "HT-2026-0042")
    officer.fill("#contract-date", today)
    officer.click("form[data-action=contract_signed] button[type=submit]")
    status(officer, "contract_signed").to_be_visible()
    walk.check(officer, "3-05-contract-signed")
    partner_sees("3-06-partner-contract", "HT-2026-0042")
    status(phone, "contract_signed").to_be_visible()

    officer.fill("#disburse-date", today)
    officer.fill("#disburse-number", "JJ-0042")
    officer.click("form[data-action=disbursed] button[type=submit]")
    status(officer, "disbursed").to_be_visible()
    assert walk.dialogs and walk.dialogs[-1] == walk.t(
        "Record the disbursement? This closes the referral.")
    walk.check(officer, "3-07-disbursed")
    partner_sees("3-08-partner-disbursed", "JJ-0042", today)
    status(phone, "disbursed").to_be_visible()
    # The files stay true after the decision: the accepted payslips do not read "awaiting".
    expect(phone.locator(f"[data-item='{item}']")).to_have_attribute("data-item-status",
                                                                    "accepted")
    assert walk.problems == [], "\n".join(walk.problems)


# --- 4: an agreement accepted and its PDF downloaded ----------------------------------------------

def test_partner_admin_accepts_an_agreement_and_downloads_the_pdf(walk, world):
    db.session.commit()
    # The channel manager drafts the agreement and issues it to the partner.
    manager = walk.browser()
    walk.log_in(manager, world.manager, "4-01-manager-login")
    manager.goto("/bank/agreements/new")
    walk.check(manager, "4-02-choose-partner")
    manager.select_option("#org_id", str(world.org_a.id))
    manager.click("main form button[type=submit]")
    expect(manager.locator("[data-testid=agreement-form]")).to_be_visible()
    walk.check(manager, "4-03-agreement-form")
    manager.check("input[name=products][value=housing_mortgage]")
    manager.click("[data-testid=agreement-form] input[type=submit]")
    expect(manager).to_have_url(re.compile(r".*/bank/agreements/\d+$"))
    aid = int(manager.url.rsplit("/", 1)[1])
    issue = manager.locator(f"form[action='/bank/agreements/{aid}/issue'] button")
    expect(issue).to_be_visible()
    walk.check(manager, "4-04-draft")
    issue.click()
    expect(issue).to_have_count(0)
    assert walk.dialogs[-1] == walk.t("Issue this agreement? Its text and PDF are then fixed.")
    walk.check(manager, "4-05-issued")
    issued = db.session.get(Agreement, aid)
    assert issued.status == "issued"

    admin = walk.browser()
    walk.log_in(admin, world.partner_a, "4-06-login")
    admin.goto("/partner/agreements")
    link = admin.locator(f"a[href='/partner/agreements/{issued.id}']").first
    expect(link).to_be_visible()
    walk.check(admin, "4-07-agreements")
    link.click()
    expect(admin).to_have_url(re.compile(rf".*/partner/agreements/{issued.id}$"))
    expect(admin.locator("[data-testid=accept-form]")).to_be_visible()
    walk.check(admin, "4-08-agreement")
    admin.check("[data-testid=accept-form] input[type=checkbox]")
    admin.click("[data-testid=accept-form] input[type=submit]")
    expect(admin.locator("[data-testid=accept-form]")).to_have_count(0)
    expect(admin.locator("main")).to_contain_text(issued.number)
    walk.check(admin, "4-09-accepted")
    db.session.refresh(issued)
    assert issued.status in ("accepted", "active")
    with admin.expect_download() as download:
        admin.click("[data-testid=download-pdf]")
    data = open(download.value.path(), "rb").read()
    assert data.startswith(b"%PDF")
    with pikepdf.open(io.BytesIO(data)) as opened:
        assert len(opened.pages) >= 1
    assert download.value.suggested_filename.endswith(".pdf")
    assert walk.problems == [], "\n".join(walk.problems)


# --- 5: a duplicate registration settled, a scorecard read --------------------------------------

def test_manager_settles_a_conflict_and_reads_a_scorecard(walk, scored):  # noqa: F811
    zh = walk.lang == "zh"
    nid = factories.national_id(4545)
    factories.submit(scored.partner_a, product="consumer_loan", national_id=nid, amount="80000",
                     term_months="36")
    db.session.commit()

    # Partner B, on a phone, registers a buyer partner A registered first.
    partner = walk.browser(PHONE)
    walk.log_in(partner, scored.partner_b, "5-01-partner-login")
    partner.goto("/partner/referrals/new")
    expect(partner.locator("form[data-draft]")).to_be_visible()
    walk.check(partner, "5-02-partner-new-referral")
    fill_intake(partner, zh, nid)
    expect(partner).to_have_url(re.compile(r".*/partner/referrals/\d+$"))
    status(partner, "conflict").to_have_text(walk.label(PARTNER_STATES["conflict"]))
    cid = int(partner.url.rsplit("/", 1)[1])
    walk.check(partner, "5-03-partner-conflict")
    challenger = db.session.get(Referral, cid)
    assert challenger.status == "conflict"

    manager = walk.browser()
    walk.log_in(manager, scored.manager, "5-04-login")
    manager.goto("/bank/conflicts?scope=all")
    row = manager.locator(f"tr[data-referral-id='{challenger.id}']")
    expect(row).to_be_visible()
    walk.check(manager, "5-05-conflicts")
    row.locator("textarea[name=reason]").fill(
        "先登记者持有客户" if walk.lang == "zh" else "The first registration holds the buyer")
    row.locator("input[type=checkbox]").check()
    row.locator("button[value=reject]").click()
    expect(row).to_have_count(0)
    assert walk.dialogs and f"#{challenger.id}" in walk.dialogs[-1]
    walk.check(manager, "5-06-conflict-settled")
    db.session.refresh(challenger)
    assert challenger.status == "rejected_duplicate"

    # The partner is told in neutral words, with no name of the holder.
    partner.goto(f"/partner/referrals/{cid}")
    status(partner, "rejected_duplicate").to_have_text(
        walk.label(PARTNER_STATES["rejected_duplicate"]))
    expect(partner.locator("main")).not_to_contain_text(scored.org_a.name)
    expect(partner.locator("main")).not_to_contain_text(scored.org_a.code)
    # Each line of the timeline says a change ("A → B"), never "A → A".
    for line in partner.locator("[data-testid=timeline] > li").all_inner_texts():
        before, _, after = line.partition("→")
        assert not after or before.split("\n")[-1].strip() != after.strip().split("\n")[0], line
    walk.check(partner, "5-07-partner-duplicate")

    manager.goto("/bank/scorecards")
    card = manager.locator(f"a[href='/bank/scorecards/{scored.org_a.id}']").first
    expect(card).to_be_visible()
    walk.check(manager, "5-08-scorecards")
    card.click()
    expect(manager).to_have_url(re.compile(rf".*/bank/scorecards/{scored.org_a.id}$"))
    expect(manager.locator("h1")).to_contain_text(scored.org_a.name)
    expect(manager.locator("main")).to_contain_text(walk.t("Approval rate"))
    walk.check(manager, "5-09-scorecard")
    assert walk.problems == [], "\n".join(walk.problems)


# --- 6: things going wrong ------------------------------------------------------------------------

def test_wrong_password_errors_and_an_expired_session(walk, world):
    db.session.commit()
    page = walk.browser()

    # A wrong password: said plainly, the address kept, the password not.
    walk.log_in(page, world.agent_a, "6-01-login", password="not-the-password")
    expect(page.locator(".alert-danger")).to_have_text(walk.t("Wrong e-mail or password."))
    expect(page.locator("input[name=email]")).to_have_value(world.agent_a.email)
    expect(page.locator("input[name=password]")).to_have_value("")
    walk.check(page, "6-02-wrong-password")

    # A form with errors: each error on its field, the focus on the first, nothing lost.
    walk.log_in(page, world.agent_a, "6-03-login")
    page.goto("/partner/referrals/new")
    page.select_option("#product", "consumer_loan")
    page.fill("#buyer_name", "王芳")
    page.fill("#national_id", "110105198506120")
    page.fill("#employer", "市第二医院")
    page.fill("#amount", "abc")
    page.fill("#term_months", "36")
    page.click("form[data-draft] input[type=submit]")
    expect(page.locator(".alert-danger").first).to_have_text(
        walk.t("Please correct the highlighted fields. Nothing you typed has been lost."))
    invalid = page.locator("[aria-invalid=true]")
    expect(invalid.first).to_be_focused()
    ids = page.evaluate("[...document.querySelectorAll('[aria-invalid=true]')].map(e => e.id)")
    assert {"amount", "national_id", "mobile", "consent"} <= set(ids), ids
    for name in ids:
        described = (page.get_attribute(f"#{name}", "aria-describedby") or "").split()
        errors = [i for i in described if "-error-" in i]
        assert errors, f"{name}: no error tied to it"
        for error in errors:
            expect(page.locator(f"#{error}")).not_to_be_empty()
    expect(page.locator("#buyer_name")).to_have_value("王芳")
    expect(page.locator("#employer")).to_have_value("市第二医院")
    expect(page.locator("#amount")).to_have_value("abc")
    expect(page.locator("#national_id")).to_have_value("110105198506120")
    walk.check(page, "6-04-form-errors")

    # Half an hour away: Submit lands on a login page that says so, and after logging in again
    # the form is filled in from the tab's draft (without the ID number and mobile).
    page.goto("/partner/referrals/new")
    page.select_option("#product", "consumer_loan")
    page.fill("#buyer_name", "赵敏")
    page.fill("#employer", "市第三医院")
    page.fill("#amount", "50000")
    page.fill("#term_months", "24")
    page.fill("#national_id", factories.national_id(903))
    db.session.execute(UserSession.__table__.update().values(
        last_seen_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    page.click("form[data-draft] input[type=submit]")
    expect(page).to_have_url(re.compile(r".*/login\?(?=.*reason=expired)(?=.*next=).*"))
    expect(page.locator("[data-testid=session-expired]")).to_have_text(walk.t(
        "Your session has ended: it was unused for %(n)d minutes, or it reached its time limit. "
        "Please log in again. A new referral you were typing is kept in this browser tab and "
        "will be filled in again.", n=30))
    walk.check(page, "6-05-session-expired")
    page.fill("input[name=email]", world.agent_a.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r".*/partner/referrals/new$"))
    expect(page.locator("[data-testid=draft-restored]")).to_be_visible()
    expect(page.locator("#buyer_name")).to_have_value("赵敏")
    expect(page.locator("#employer")).to_have_value("市第三医院")
    expect(page.locator("#amount")).to_have_value("50000")
    expect(page.locator("#term_months")).to_have_value("24")
    expect(page.locator("#product")).to_have_value("consumer_loan")
    expect(page.locator("#national_id")).to_have_value("")
    walk.check(page, "6-06-draft-restored")
    assert walk.problems == [], "\n".join(walk.problems)
