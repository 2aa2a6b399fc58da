"""The Content-Security-Policy in a real browser (Debian's Chromium through Playwright): the main
pages of every role, the charts and the API documentation load with no script or style refused,
so the policy's strictness costs nothing that works today (issue 10)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Referral
from portal.extensions import db
from tests import factories
from tests.test_browser import log_in
from tests.test_scorecard_pages import scored  # noqa: F401  (a fixture: cards with charts)

# Every violation the page sees, collected before any of its own scripts run.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' +
                    (e.sourceFile || document.location.pathname) + ':' + e.lineNumber);
});
"""

PAGES = {
    "anonymous": ["/login", "/agreements/verify"],
    "partner_a": ["/partner/", "/partner/referrals", "/partner/referrals/new",
                  "/partner/referrals/{rid}", "/partner/agreements", "/partner/agreements/{aid}",
                  "/partner/users",
                  "/partner/api-keys", "/partner/webhooks", "/partner/webhooks/deliveries",
                  "/partner/notifications", "/partner/scorecard", "/partner/messages",
                  "/partner/products",
                  "/partner/calculator?product=housing_mortgage&amount=120%E4%B8%87&months=240"
                  "&method=equal_principal"],
    "agent_a": ["/partner/", "/partner/referrals/new", "/partner/referrals/{rid}"],
    "officer": ["/bank/queue", "/bank/referrals", "/bank/referrals/{rid}", "/bank/messages"],
    "manager": ["/bank/scorecards", "/bank/scorecards/{org}", "/bank/followups", "/bank/contacts",
                "/bank/conflicts", "/bank/agreements", "/bank/agreements/{aid}"],
    "admin": ["/admin/", "/admin/orgs", "/admin/orgs/new", "/admin/users", "/admin/audit",
              "/admin/scoring", "/admin/imports", "/bank/agreement-templates",
              "/admin/products", "/admin/products/housing_mortgage/rates",
              "/bank/agreements/new"],
}

# Which charts each scorecard page draws, and the height its box has (a CSS class now, where a
# style attribute used to set it).
CHARTS = {
    "/bank/scorecards": {"chart-tiers": 260, "chart-portfolio": 260},
    "/bank/scorecards/{org}": {"chart-mix": 160, "chart-split": 160},
    "/partner/scorecard": {"chart-split": 160},
}

READY = """
(id) => {
  const canvas = document.querySelector('canvas[data-chart="' + id + '"]');
  return canvas && typeof Chart !== 'undefined' && !!Chart.getChart(canvas);
}
"""

DRAWN = """
(id) => {
  const canvas = document.querySelector('canvas[data-chart="' + id + '"]');
  if (!canvas) { return null; }
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted++; } }
  return {chart: typeof Chart !== 'undefined' && !!Chart.getChart(canvas), painted: painted,
          height: canvas.parentElement.getBoundingClientRect().height};
}
"""


@pytest.fixture
def people(scored):  # noqa: F811
    scored.rid = db.session.scalar(select(Referral.id).where(
        Referral.org_id == scored.org_a.id).order_by(Referral.id))
    scored.aid = factories.active_agreement(scored.org_a).id
    db.session.commit()
    return scored


def watch(page):
    """Refused loads and script errors, from the page's events and the console."""
    seen = []
    page.add_init_script(LISTEN)
    page.on("pageerror", lambda error: seen.append(f"script error: {error}"))
    page.on("console", lambda message: seen.append(f"console: {message.text}")
            if "Content Security Policy" in message.text else None)
    return seen


def visit(page, path, seen):
    response = page.goto(path)
    page.wait_for_load_state("networkidle")
    assert response.status == 200, path
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    seen.extend(f"{path}: {v}" for v in page.evaluate("window.__csp"))


@pytest.mark.parametrize("role", list(PAGES))
def test_main_pages_load_without_a_csp_violation(page, people, role):
    seen = watch(page)
    if role != "anonymous":
        log_in(page, getattr(people, role))
    ids = {"rid": people.rid, "aid": people.aid, "org": people.org_a.id}
    for template in PAGES[role]:
        path = template.format(**ids)
        visit(page, path, seen)
        for chart, height in CHARTS.get(template, {}).items():
            page.wait_for_function(READY, arg=chart)
            drawn = page.evaluate(DRAWN, chart)
            assert drawn is not None, f"{path}: no canvas for {chart}"
            assert drawn["chart"] and drawn["painted"] > 500, f"{path}: {chart} not drawn {drawn}"
            assert drawn["height"] == height, f"{path}: {chart} box {drawn}"
    assert seen == []


def test_swagger_ui_works_under_the_policy(page, people):
    seen = watch(page)
    visit(page, "/api/v1/docs", seen)
    page.wait_for_selector(".opblock-summary")
    # Open an operation and a schema: the parts that render code samples and nested models.
    page.locator(".opblock-summary").first.click()
    page.wait_for_selector(".opblock-body")
    models = page.locator("section.models")
    before = models.locator("*").count()
    models.get_by_text("ReferralOut", exact=True).first.click()
    page.wait_for_function("n => document.querySelectorAll('section.models *').length > n",
                           arg=before)
    page.locator("button.authorize").click()
    page.wait_for_selector(".modal-ux")
    seen.extend(f"after clicks: {v}" for v in page.evaluate("window.__csp"))
    assert page.locator(".opblock").count() >= 5
    assert seen == []


def test_the_check_sees_a_refused_inline_script(page, people, live_server):
    """The violation listener works: a page that tries inline code under the portal's policy
    reports it (the test above would fail the same way)."""
    seen = watch(page)
    visit(page, "/login", seen)
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.appendChild(s);
        document.body.setAttribute('onclick', 'x()');
        document.body.click();
    }""")
    page.wait_for_function("window.__csp.length >= 2")
    assert page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
