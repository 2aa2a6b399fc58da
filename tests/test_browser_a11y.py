"""Every role's main pages, in English and in Chinese, in Debian's Chromium (issue 13):

- axe-core (tests/vendor/axe, 4.14.1, MPL-2.0; kept out of the portal's own pages) finds no
  serious or critical violation, and no id is used twice on a page;
- on a 390 px phone nothing is wider than the screen, and at 1366 px the header holds all of
  its items on one line, inside the window.

Screenshots of every page at both widths go to tests/artifacts/ (not committed), with each
page's axe findings in tests/artifacts/axe-<role>-<language>.json."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Referral, utcnow
from portal.extensions import db
from portal.services import Ctx, customer_leads, sites
from tests import factories
from tests.test_browser import log_in
from tests.test_scorecard_pages import scored  # noqa: F401  (a fixture: cards with charts)

AXE = Path(__file__).parent / "vendor" / "axe" / "axe.min.js"
ARTIFACTS = Path(__file__).parent / "artifacts"

PAGES = {
    "anonymous": ["/login", "/agreements/verify", "/apply"],
    "partner_a": ["/partner/", "/partner/referrals", "/partner/referrals/new",
                  "/partner/referrals/{rid}", "/partner/agreements", "/partner/agreements/{aid}",
                  "/partner/users", "/partner/api-keys", "/partner/webhooks",
                  "/partner/webhooks/deliveries", "/partner/notifications", "/partner/scorecard",
                  "/partner/messages", "/partner/products", "/partner/leads",
                  "/partner/leads/{lead}", "/partner/sites", "/partner/sites/{site}",
                  "/partner/calculator?product=housing_mortgage&amount=1200000&months=240",
                  "/account"],
    "agent_a": ["/partner/", "/partner/referrals", "/partner/referrals/new",
                "/partner/referrals/{rid}", "/partner/products", "/partner/referrals/group"],
    "partner_b": ["/partner/referrals/{conflict}"],
    "officer": ["/bank/queue", "/bank/queue?view=mine", "/bank/referrals",
                "/bank/referrals/{rid}", "/bank/messages", "/bank/portfolio"],
    "manager": ["/bank/queue", "/bank/conflicts", "/bank/held", "/bank/reveal-requests",
                "/bank/reveals",
                "/bank/referrals/{conflict}", "/bank/scorecards", "/bank/scorecards/{org}",
                "/bank/followups", "/bank/contacts", "/bank/disputes", "/bank/agreements",
                "/bank/agreements/{aid}", "/bank/portfolio", "/bank/applications",
                "/bank/annual-reviews?view=all", "/bank/partners/{org}/annual-review",
                "/bank/leads", "/bank/leads/new", "/bank/leads/{lead}",
                "/bank/partners/{org}/sites", "/bank/sites/{site}"],
    "admin": ["/admin/", "/admin/orgs", "/admin/orgs/new", "/admin/users", "/admin/audit",
              "/admin/scoring", "/admin/imports", "/admin/products", "/admin/branches",
              "/bank/agreement-templates",
              "/bank/agreements/new"],
}
LANGUAGES = {"en": "en-US", "zh": "zh-CN"}

# Six minutes of Chromium: `make test-walk` and CI run it, `make test` stays quick.
pytestmark = pytest.mark.walk

# Run axe on the whole page for WCAG 2.1 A/AA and best practice; return what it found.
RUN_AXE = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').slice(0, 160))}));
}
"""

DUPLICATE_IDS = """
() => {
  const seen = {};
  document.querySelectorAll('[id]').forEach(e => { seen[e.id] = (seen[e.id] || 0) + 1; });
  return Object.entries(seen).filter(([, n]) => n > 1).map(([id, n]) => id + ' x' + n);
}
"""

# Whatever sticks out of the header or of the window, at the width the page is shown.
HEADER = """
() => {
  const header = document.querySelector('header nav');
  const width = document.documentElement.clientWidth;
  const out = [];
  header.querySelectorAll('a, button, summary, .navbar-text').forEach(e => {
    const box = e.getBoundingClientRect();
    if (box.width && (box.right > width + 0.5 || box.left < -0.5)) {
      out.push((e.textContent || '').trim().slice(0, 30) + ' at ' + Math.round(box.left) + '-'
               + Math.round(box.right));
    }
  });
  return {height: header.getBoundingClientRect().height, out: out,
          scroll: header.scrollWidth, client: header.clientWidth};
}
"""


@pytest.fixture
def people(scored):  # noqa: F811
    """The scorecard world, with a referral of A's buyer by B waiting in the conflict queue."""
    scored.rid = db.session.scalar(select(Referral.id).where(
        Referral.org_id == scored.org_a.id).order_by(Referral.id))
    first = db.session.get(Referral, scored.rid)
    taken = factories.intake(national_id=factories.national_id(4242))
    factories.submit(scored.partner_a, **taken)
    scored.conflict = factories.submit(scored.partner_b, **taken).id
    scored.aid = factories.active_agreement(scored.org_a).id
    scored.lead = customer_leads.create(Ctx(user=scored.manager), scored.org_a, {
        "customer_name": "周建国", "mobile": "13812345678", "need": "home_decoration",
        "consent": True, "consent_method": "signed_form",
        "consent_at": utcnow() - timedelta(hours=1)}).id
    site = sites.create(Ctx(user=scored.manager), scored.org_a, {
        "kind": "project", "code": "GARDEN", "name": "Garden", "quota_amount": "1000000"})
    sites.assign(Ctx(user=scored.manager), site, scored.officer, ["mon", "wed"], "021-5888 1234")
    scored.site = site.id
    assert first is not None
    db.session.commit()
    return scored


def open_as(chromium, live_server, people, role, language, width):
    context = chromium.new_context(base_url=live_server, locale=LANGUAGES[language],
                                   viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    if role != "anonymous":
        log_in(page, getattr(people, role))
    return context, page


def paths(people, role):
    ids = {"rid": people.rid, "aid": people.aid, "org": people.org_a.id,
           "conflict": people.conflict, "lead": people.lead, "site": people.site}
    return [template.format(**ids) for template in PAGES[role]]


def shot(page, role, language, width, path):
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"{role}-{language}-{width}-{path.strip('/').replace('/', '_') or 'home'}.png"
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("role", list(PAGES))
def test_no_serious_accessibility_violation(chromium, live_server, people, role, language):
    context, page = open_as(chromium, live_server, people, role, language, 1366)
    script = AXE.read_text(encoding="utf-8")
    found, serious = {}, []
    try:
        for path in paths(people, role):
            response = page.goto(path)
            assert response.status == 200, path
            page.wait_for_load_state("networkidle")
            # Evaluated through the DevTools protocol: the page's CSP stays on, axe is no part
            # of the page's own scripts.
            page.evaluate(script + "\n;true")
            violations = page.evaluate(RUN_AXE)
            duplicates = page.evaluate(DUPLICATE_IDS)
            found[path] = {"violations": violations, "duplicate_ids": duplicates}
            serious += [f"{path}: {v['id']} ({v['impact']}) {v['help']}: {v['nodes'][:3]}"
                        for v in violations if v["impact"] in ("serious", "critical")]
            serious += [f"{path}: duplicate id {d}" for d in duplicates]
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"axe-{role}-{language}.json").write_text(
            json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
        context.close()
    assert serious == [], "\n".join(serious)


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("role", list(PAGES))
def test_pages_fit_a_phone_and_the_header_fits_a_laptop(chromium, live_server, people, role,
                                                         language):
    wrong = []
    for width in (390, 1366):
        context, page = open_as(chromium, live_server, people, role, language, width)
        try:
            for path in paths(people, role):
                assert page.goto(path).status == 200, path
                page.wait_for_load_state("networkidle")
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > width:
                    wrong.append(f"{path} at {width}px: the page is {scroll}px wide")
                header = page.evaluate(HEADER)
                if header["out"] or header["scroll"] > header["client"]:
                    wrong.append(f"{path} at {width}px: header overflows {header}")
                # At a laptop's width the whole menu is one line: brand, links, the user.
                if width == 1366 and header["height"] > 72:
                    wrong.append(f"{path} at {width}px: header {header['height']}px tall")
                if width == 390 and header["height"] > 80:
                    wrong.append(f"{path} at {width}px: closed menu {header['height']}px tall")
                shot(page, role, language, width, path)
        finally:
            context.close()
    assert wrong == [], "\n".join(wrong)
