"""Charts fit their labels, in both languages, in a real browser: every axis title fits along its
axis and every chart draws inside its canvas (issue 12: a clipped y-axis label)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from models import LoanPerformance, utcnow
from portal.bank_time import bank_date
from portal.extensions import db
from portal.services import Ctx, referrals, scoring
from tests import factories

# For each chart on the page: the axis titles that do not fit along their axis, and whether the
# plot area leaves the canvas.
CHECK = """() => Array.from(document.querySelectorAll('canvas[data-chart]')).map(c => {
  const chart = Chart.getChart(c);
  if (!chart) { return {id: c.dataset.chart, problems: ['not drawn']}; }
  const problems = [];
  for (const [id, scale] of Object.entries(chart.scales)) {
    const title = scale.options.title;
    if (!title || !title.display) { continue; }
    const ctx = chart.ctx;
    ctx.save();
    ctx.font = Chart.helpers.toFont(title.font).string;
    const width = ctx.measureText(title.text).width;
    ctx.restore();
    const room = scale.isHorizontal() ? scale.width : scale.height;
    if (width > room) { problems.push(id + ' title "' + title.text + '" ' + width + ' > ' + room); }
    if (scale.left < 0 || scale.right > chart.width + 0.5) { problems.push(id + ' outside'); }
  }
  for (const [id, scale] of Object.entries(chart.scales)) {
    // A vertical axis's tick labels must fit in the axis's own width.
    if (scale.isHorizontal() || !scale.options.ticks.display) { continue; }
    const ctx = chart.ctx;
    ctx.save();
    ctx.font = Chart.helpers.toFont(scale.options.ticks.font).string;
    for (const tick of scale.ticks) {
      const width = ctx.measureText(String(tick.label)).width;
      if (width > scale.width) { problems.push(id + ' tick "' + tick.label + '" ' + width); }
    }
    ctx.restore();
  }
  const area = chart.chartArea;
  if (area.left < 0 || area.right > chart.width || area.bottom > chart.height) {
    problems.push('plot area outside the canvas');
  }
  return {id: c.dataset.chart, problems};
})"""


def log_in(page, user):
    page.goto("/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def book(world):
    """Loans of every class for partner A, some behind; months of cards computed."""
    officer = Ctx(user=world.officer)
    now = utcnow()
    industries = ["government", "real_estate_construction", "other", "finance_insurance",
                  "commerce_trade", "other"]
    for i, industry in enumerate(industries * 2):
        at = now - timedelta(days=20 + 25 * i)
        r = factories.submit(world.partner_a, at=at, industry=industry)
        for j, state in enumerate(["under_review", "approved", "contract_signed", "disbursed"]):
            referrals.transition(officer, r, state, at=at + timedelta(days=j + 1))
        as_of = bank_date(now) - timedelta(days=2)
        late = industry == "other" and i % 4 == 2
        db.session.add(LoanPerformance(
            referral_id=r.id, org_id=r.org_id, as_of=as_of,
            days_on_book=(as_of - bank_date(r.disbursed_at)).days, outstanding=400_000,
            days_past_due=120 if late else 0, status="npl" if late else "current"))
    scoring.recompute_all()
    db.session.commit()
    return world


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_charts_fit_their_labels(chromium, live_server, book, language, tmp_path):
    for width in (1280, 1024):
        context = chromium.new_context(base_url=live_server, locale=language,
                                       viewport={"width": width, "height": 900},
                                       extra_http_headers={"Accept-Language": language})
        page = context.new_page()
        page.set_default_timeout(10_000)
        log_in(page, book.manager)
        for url in ("/bank/portfolio", "/bank/portfolio?group_by=industry",
                    "/bank/portfolio?group_by=month", "/bank/scorecards",
                    f"/bank/scorecards/{book.org_a.id}"):
            page.goto(url)
            page.wait_for_function("() => typeof Chart !== 'undefined'")
            charts = page.evaluate(CHECK)
            assert charts, url
            for chart in charts:
                assert chart["problems"] == [], (language, width, url, chart)
            name = re.sub(r"\W", "_", url)
            page.screenshot(path=str(tmp_path / f"{name}-{language}-{width}.png"), full_page=True)
        context.close()
