"""Figures people read correctly, and what stands behind them (issue 12): the class on the bank's
lists, the class mix for any period, the referrals and loans behind each KPI (their counts are
the card's numerator and denominator), a loan's statements on the referral page for the bank
only, the observed value with its count first, and no tier for a month without data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from models import LoanPerformance, ScorecardSnapshot, utcnow
from portal.bank_time import bank_date
from portal.extensions import db
from portal.services import Ctx, referrals, scoring
from tests import factories
from tests.integration_helpers import auth, make_key


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.fixture
def card(world):
    """Partner A: six referrals in the last weeks (classes 1, 1, 2, 3, 3, 3), four decided
    (three approved), two disbursed with a statement each (one non-performing); cards computed."""
    officer = Ctx(user=world.officer)
    now = utcnow()
    industries = ["government", "finance_insurance", "commerce_trade", "other", "other", "other"]
    made = []
    for i, industry in enumerate(industries):
        at = now - timedelta(days=40 - i)
        r = factories.submit(world.partner_a, at=at, industry=industry)
        made.append(r)
        if i >= 4:
            continue
        referrals.transition(officer, r, "under_review", at=at + timedelta(hours=3))
        if i == 3:
            referrals.transition(officer, r, "declined", at=at + timedelta(hours=20),
                                 reason_code="income_insufficient", note="n")
            continue
        referrals.transition(officer, r, "approved", at=at + timedelta(hours=20))
        if i < 2:
            referrals.transition(officer, r, "contract_signed", at=at + timedelta(days=1))
            referrals.transition(officer, r, "disbursed", at=at + timedelta(days=2))
    for i, (status, dpd) in enumerate([("current", 0), ("npl", 95)]):
        loan = made[i]
        as_of = bank_date(now) - timedelta(days=3)
        db.session.add(LoanPerformance(
            referral_id=loan.id, org_id=loan.org_id, as_of=as_of,
            days_on_book=(as_of - bank_date(loan.disbursed_at)).days, outstanding=500_000,
            days_past_due=dpd, status=status))
    factories.submit(world.partner_b, industry="government")  # another partner: never counted
    scoring.recompute_all()
    db.session.commit()
    world.made = made
    return world


def test_the_bank_lists_show_and_filter_the_class(card, as_user):
    client = as_user(card.officer)
    listing = html(client.get("/bank/referrals?customer_class=3"))
    ids = re.findall(r'data-testid="referral-row" data-referral-id="(\d+)"', listing)
    assert sorted(map(int, ids)) == sorted(r.id for r in card.made[3:])
    assert listing.count('data-testid="class"') == 3
    queue = html(client.get("/bank/queue?customer_class=3"))
    queued = re.findall(r'data-testid="queue-row" data-referral-id="(\d+)"', queue)
    assert sorted(map(int, queued)) == sorted(r.id for r in card.made[4:])  # still waiting
    assert html(client.get("/bank/queue?customer_class=1")).count('data-testid="queue-row"') == 1


@pytest.mark.parametrize("name", ["approval_rate", "class1_share", "class3_share", "npl_rate"])
def test_each_figure_opens_its_numerator_and_denominator(card, as_user, name):
    snapshot = db.session.query(ScorecardSnapshot).filter_by(
        org_id=card.org_a.id, period_kind="rolling90").one()
    entry = snapshot.kpis[name]
    assert entry["n"] > 0
    client = as_user(card.manager)
    page = html(client.get(f"/bank/scorecards/{card.org_a.id}"))
    assert f'/bank/scorecards/{card.org_a.id}/kpis/{name}?period=current' in page
    den = html(client.get(f"/bank/scorecards/{card.org_a.id}/kpis/{name}?period=current"))
    num = html(client.get(f"/bank/scorecards/{card.org_a.id}/kpis/{name}?period=current"
                          "&part=num"))
    assert den.count('data-testid="drill-row"') == entry["n"]
    assert num.count('data-testid="drill-row"') == entry["x"]
    assert re.search(r'data-testid="den-count">(\d+)<', den).group(1) == str(entry["n"])
    assert re.search(r'data-testid="num-count">(\d+)<', den).group(1) == str(entry["x"])
    assert den.count(">yes<") == entry["x"]


def test_drill_down_is_for_the_bank_and_for_a_card_that_exists(card, as_user, client):
    manager = as_user(card.manager)
    assert manager.get(f"/bank/scorecards/{card.org_a.id}/kpis/nonsense").status_code == 404
    assert manager.get(f"/bank/scorecards/{card.org_a.id}/kpis/npl_rate?period=1999-01"
                       ).status_code == 404


def test_class_mix_for_any_period_on_both_cards(card, as_user, client):
    today = bank_date(utcnow())
    manager = as_user(card.manager)
    page = html(manager.get(f"/bank/scorecards/{card.org_a.id}?from="
                            f"{(today - timedelta(days=365)).isoformat()}&to={today.isoformat()}"))
    mix = page.split('data-testid="class-mix-period"', 1)[1].split("</table>", 1)[0]
    shares = re.findall(r'data-class="(\d)">.*?data-testid="share">([^<]+)<', mix, re.S)
    assert shares == [("1", "33.3%"), ("2", "16.7%"), ("3", "50.0%")]
    # A period before any referral: nothing, shown as nothing rather than zero shares.
    early = html(manager.get(f"/bank/scorecards/{card.org_a.id}?from=2020-01-01&to=2020-02-01"))
    assert re.findall(r'data-testid="share">([^<]+)<', early) == ["—", "—", "—"]
    client.post("/logout")
    partner = as_user(card.partner_a)
    own = html(partner.get("/partner/scorecard"))
    assert 'data-testid="class-mix-period"' in own and "50.0%" in own
    assert "/bank/referrals" not in own.split('data-testid="class-mix-period"', 1)[1]


def test_the_cards_class_mix_defaults_to_the_stored_months(card, as_user):
    """Without dates the table sums the stored monthly cards (no count of the partner's
    referrals on each view); a referral since the computation appears once dates are chosen."""
    months = scoring.monthly_cards(card.org_a.id)
    expected = [sum((m.extra or {}).get("mix", {}).get(str(c), 0) for m in months)
                for c in (1, 2, 3)]
    assert sum(expected) == 6
    factories.submit(card.partner_a, industry="government")
    db.session.commit()
    manager = as_user(card.manager)
    page = html(manager.get(f"/bank/scorecards/{card.org_a.id}"))
    assert 'data-testid="mix-from-months"' in page
    mix = page.split('data-testid="class-mix-period"', 1)[1].split("</table>", 1)[0]
    counts = re.findall(r'data-class="\d">.*?customer_class=\d">(\d+)<', mix, re.S)
    assert list(map(int, counts)) == expected
    assert f'value="{bank_date(months[0].period_start).isoformat()}"' in page
    today = bank_date(utcnow())
    dated = html(manager.get(f"/bank/scorecards/{card.org_a.id}?to={today.isoformat()}"))
    assert 'data-testid="mix-from-months"' not in dated
    mix = dated.split('data-testid="class-mix-period"', 1)[1].split("</table>", 1)[0]
    assert sum(map(int, re.findall(r'customer_class=\d">(\d+)<', mix))) == 7


def test_the_api_card_has_class3_share(card):
    key = make_key(card.manager, "cards")
    from flask import current_app

    body = current_app.test_client().get("/api/v1/scorecard?org_code=PARTNERA",
                                         headers=auth(key)).get_json()
    assert body["kpis"]["class3_share"]["raw"] == pytest.approx(3 / 6)
    assert body["kpis"]["class1_share"]["raw"] == pytest.approx(2 / 6)


def test_observed_value_and_count_come_first_and_the_adjusted_is_marked(card, as_user):
    client = as_user(card.manager)
    cockpit = html(client.get("/bank/scorecards"))
    row = cockpit.split('data-org-code="PARTNERA"', 1)[1].split("</tr>", 1)[0]
    npl = row.split('data-kpi="npl_rate"', 1)[1].split("</td>", 1)[0]
    observed, adjusted = npl.split('data-testid="adjusted"', 1)
    assert "50.0%" in observed and "(1 / 2)" in observed
    assert "adj." in adjusted
    detail = html(client.get(f"/bank/scorecards/{card.org_a.id}"))
    approval = detail.split('data-kpi="approval_rate"', 1)[1].split("</tr>", 1)[0]
    assert "75.0%" in approval and "(3 / 4)" in approval
    assert approval.index("(3 / 4)") < approval.index("adj.")


def test_a_month_without_data_is_a_gap_without_a_tier(card, as_user):
    # Six months back nothing happened; whatever the recompute stored for it (a card shrunk to
    # the portfolio's priors, with a composite and a tier) is shown as no data.
    today = bank_date(utcnow())
    y, m = divmod(today.year * 12 + today.month - 1 - 6, 12)
    key = f"{y:04d}-{m + 1:02d}"
    empty = db.session.query(ScorecardSnapshot).filter_by(
        org_id=card.org_a.id, period_kind="month", period_key=key).one_or_none()
    if empty is None:
        empty = ScorecardSnapshot(org_id=card.org_a.id, period_kind="month", period_key=key,
                                  period_start=utcnow(), period_end=utcnow())
        db.session.add(empty)
    empty.sample_size, empty.composite, empty.tier = 0, 55.0, "core"
    empty.kpis = {"approval_rate": {"value": 0.8, "raw": None, "n": 0}}
    db.session.commit()
    page = html(as_user(card.manager).get(f"/bank/scorecards/{card.org_a.id}"))
    row = page.split(f'data-month="{key}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-testid="no-data"' in row and "data-tier" not in row and "55.0" not in row
    months = scoring.monthly_cards(card.org_a.id)
    trend = scoring.views.org_trend(months)
    composite = trend["data"]["datasets"][0]
    assert composite["spanGaps"] is False
    assert composite["data"][trend["data"]["labels"].index(key)] is None
    assert composite["data"][-1] is not None


def test_the_referral_page_shows_the_loans_statements_to_the_bank_only(card, as_user, client):
    loan = card.made[1]
    page = html(as_user(card.officer).get(f"/bank/referrals/{loan.id}"))
    table = page.split('data-testid="loan-performance"', 1)[1].split("</table>", 1)[0]
    assert "Non-performing" in table and ">95<" in table and "500,000.00" in table
    client.post("/logout")
    partner_page = html(as_user(card.partner_a).get(f"/partner/referrals/{loan.id}"))
    assert "loan-performance" not in partner_page and "Non-performing" not in partner_page


def test_months_between_cards_are_listed(app):
    from portal.services.scoring.views import _month_range

    assert _month_range("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
