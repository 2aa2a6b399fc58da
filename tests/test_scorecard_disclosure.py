"""A partner's own scorecard tells it nothing about how single buyers repay (issue 10, point 2).

The attack: with one to four loans, the card a dealer reads (page and API) named a buyer's
repayment, directly ("1 of 1 loans 30+ days past due") or by difference (the composite less the
points the dealer can see; a tier that falls when the one buyer defaults). Each test reads the card
as the partner's administrator would, on the page and through the API, and as bank staff.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.extensions import db
from portal.services import Ctx, imports, referrals, scoring
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key

NOW = datetime(2026, 6, 28, 4, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
CREDIT = ("delinquency_rate", "npl_rate", "early_payment_default")


def _disburse(user, officer, count: int, prefix: str, seq: int) -> list[str]:
    refs = []
    for i in range(count):
        t = NOW - 60 * D + i * H
        ref = f"{prefix}-{i}"
        referral = factories.submit(user, at=t, external_ref=ref,
                                    national_id=factories.national_id(seq + i))
        for step, to in enumerate(("under_review", "approved", "contract_signed", "disbursed"), 1):
            referrals.transition(officer, referral, to, at=t + step * H)
        refs.append(ref)
    return refs


def _statements(rows: list[tuple[str, str, str, int, str]]) -> None:
    body = "org_code,external_ref,as_of,outstanding,days_past_due,status\n" + "".join(
        f"{org},{ref},{as_of},500000,{dpd},{status}\n" for org, ref, as_of, dpd, status in rows)
    report = imports.import_loans(Ctx(user=None), body.encode(), now=NOW)
    assert not report.rejects, report.rejects


def _book(world, loans: int, *, defaulted: bool = True) -> list[str]:
    """Partner A with `loans` disbursed loans, the first 45 days past due (or current); partner B
    with ten loans, one delinquent, so the portfolio has a rate to shrink toward."""
    officer = Ctx(user=world.officer)
    mine = _disburse(world.partner_a, officer, loans, "A", 100)
    theirs = _disburse(world.partner_b, officer, 10, "B", 300)
    _statements([("PARTNERA", ref, "2026-06-20", 45 if defaulted and i == 0 else 0,
                  "delinquent" if defaulted and i == 0 else "current")
                 for i, ref in enumerate(mine)]
                + [("PARTNERB", ref, "2026-06-20", 40 if i == 0 else 0,
                    "delinquent" if i == 0 else "current") for i, ref in enumerate(theirs)])
    db.session.commit()
    scoring.recompute_all(NOW)
    db.session.commit()
    return mine


def _partner_api(client, world) -> dict:
    response = client.get("/api/v1/scorecard", headers=auth(make_key(world.partner_a)))
    assert response.status_code == 200
    return response.json


def _bank_api(client, world) -> dict:
    response = client.get("/api/v1/scorecard?org_code=PARTNERA",
                          headers=auth(make_key(world.officer)))
    assert response.status_code == 200
    return response.json


def _row(page: str, kpi: str) -> str:
    """The figure cells of a KPI's row in the explanation (its label and definition left out)."""
    row = page[page.index(f'data-kpi="{kpi}"'):]
    row = row[:row.index("</tr>")]
    return row[row.index("</td>"):]


def _signed_in(client, user):
    fresh = client.application.test_client()
    login(fresh, user)
    return fresh


def _partner_page(client, world) -> str:
    response = _signed_in(client, world.partner_a).get("/partner/scorecard")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _assert_withheld(card: dict, page: str, loans: int) -> None:
    for name in CREDIT:
        entry = card["kpis"][name]
        assert entry["withheld"] is True, name
        assert [entry[k] for k in ("value", "raw", "interval", "contribution")] == [None] * 4
        assert entry["note"].startswith("Not enough loans yet")
        row = _row(page, name)
        assert "Not enough loans yet" in row
        assert "%" not in row and " / " not in row  # no rate, no "1 / 1"
    assert card["kpis"]["delinquency_rate"]["n"] == loans
    assert card["kpis"]["approval_rate"]["value"] is not None  # the rest stays readable


def _assert_shown(card: dict, page: str | None, raw: float) -> None:
    entry = card["kpis"]["delinquency_rate"]
    assert entry["withheld"] is False and entry["note"] is None
    assert entry["raw"] == pytest.approx(raw)
    assert entry["value"] is not None and entry["interval"] is not None
    if page is not None:
        row = _row(page, "delinquency_rate")
        assert "Not enough loans yet" not in row and f"{round(raw * 100, 1)}%" in row


@pytest.mark.parametrize("loans", [1, 4])
def test_on_one_and_on_four_loans_the_partner_reads_not_enough_loans_yet(client, world, loans):
    _book(world, loans)
    _assert_withheld(_partner_api(client, world), _partner_page(client, world), loans)
    # Bank staff keep the full card: the default is there, with its count.
    bank = _bank_api(client, world)
    assert bank["kpis"]["delinquency_rate"]["raw"] == pytest.approx(1 / loans)
    assert bank["kpis"]["delinquency_rate"]["withheld"] is False
    bank_page = _signed_in(client, world.manager).get(
        f"/bank/scorecards/{world.org_a.id}").get_data(as_text=True)
    assert f"1 / {loans}" in _row(bank_page, "delinquency_rate")
    assert 'data-testid="too-few"' in _row(bank_page, "delinquency_rate")


def test_on_five_loans_the_partner_reads_its_figures(client, world):
    _book(world, 5)
    card = _partner_api(client, world)
    _assert_shown(card, _partner_page(client, world), 1 / 5)
    assert card["kpis"]["delinquency_rate"]["contribution"] is not None
    _assert_shown(_bank_api(client, world), None, 1 / 5)


def test_the_minimum_is_the_setting(client, world, app, monkeypatch):
    _book(world, 4)
    monkeypatch.setitem(app.config, "SCORING_PARTNER_MIN_LOANS", 4)
    scoring.recompute_all(NOW)
    db.session.commit()
    _assert_shown(_partner_api(client, world), _partner_page(client, world), 1 / 4)
    monkeypatch.setitem(app.config, "SCORING_PARTNER_MIN_LOANS", 6)
    scoring.recompute_all(NOW)
    db.session.commit()
    card = _partner_api(client, world)
    _assert_withheld(card, _partner_page(client, world), 4)
    assert card["kpis"]["delinquency_rate"]["note"] == "Not enough loans yet: shown from 6 loans."
    _assert_shown(_bank_api(client, world), None, 1 / 4)


def _partner_sees(client, world) -> tuple[dict, str]:
    card = _partner_api(client, world)
    card.pop("computed_at")
    # Each sign-in has its own CSRF token; nothing else on the page may differ.
    page = re.sub(r'"[\w.-]{60,}"', '"csrf"', _partner_page(client, world))
    return card, page


@pytest.mark.parametrize("loans", [1, 4])
def test_nothing_the_partner_reads_depends_on_how_its_buyer_repays(client, world, loans):
    # The attack by difference: before, the composite less the points the partner could see gave
    # the withheld KPIs' points, and so whether the one buyer was 45 days late. Here two books
    # differ only in that buyer's repayment: the partner's card, page and API alike, must be the
    # same, composite, tier, every point and the monthly history included.
    refs = _book(world, loans, defaulted=False)
    current = _partner_sees(client, world)
    bank_before = _bank_api(client, world)
    _statements([("PARTNERA", refs[0], "2026-06-25", 45, "delinquent")])
    db.session.commit()
    scoring.recompute_all(NOW)
    db.session.commit()
    late = _partner_sees(client, world)
    bank_after = _bank_api(client, world)
    assert bank_after["kpis"]["delinquency_rate"]["raw"] > bank_before["kpis"][
        "delinquency_rate"]["raw"]  # the bank sees the default ...
    assert late[0] == current[0]  # ... the partner's API answer does not move
    assert late[1] == current[1]  # nor its page (trend chart and explanation included)
    assert late[0]["composite"] is not None and late[0]["tier"] is not None


def test_the_composite_a_partner_reads_adds_up_from_the_points_it_sees(client, world):
    _book(world, 1)
    card = _partner_api(client, world)
    visible = sum(e["contribution"] or 0 for e in card["kpis"].values())
    assert card["composite"] == pytest.approx(visible, abs=0.06)


def test_a_raised_minimum_holds_the_composite_back_until_the_recompute(client, world, app,
                                                                       monkeypatch):
    # Cards computed with a minimum of 4 count the credit KPIs of a 4-loan partner; raising the
    # minimum to 6 hides them at once, and the stored composite (which still counts them) with
    # them, until the cards are computed again.
    monkeypatch.setitem(app.config, "SCORING_PARTNER_MIN_LOANS", 4)
    _book(world, 4)
    monkeypatch.setitem(app.config, "SCORING_PARTNER_MIN_LOANS", 6)
    card = _partner_api(client, world)
    assert card["composite"] is None and card["tier"] is None
    page = _partner_page(client, world)
    assert 'data-testid="held-back"' in page
    composite = re.search(r'data-testid="composite">([^<]*)<', page).group(1)
    assert composite == "—"
    trend = json.loads(re.search(r'id="chart-trend">([^<]*)<', page).group(1))
    months = dict(zip(trend["data"]["labels"], trend["data"]["datasets"][0]["data"], strict=True))
    assert months["2026-06"] is None  # the month whose card counts the four loans' statements
    assert _bank_api(client, world)["composite"] is not None  # the bank's card is whole
    scoring.recompute_all(NOW)
    db.session.commit()
    assert _partner_api(client, world)["composite"] is not None


def test_agents_get_the_card_on_no_face(client, world):
    _book(world, 5)
    key = make_key(world.agent_a)
    assert client.get("/api/v1/scorecard", headers=auth(key)).status_code == 403
    assert client.get("/api/v1/scorecards", headers=auth(key)).status_code == 403
    agent = _signed_in(client, world.agent_a)
    assert agent.get("/partner/scorecard").status_code == 403
    # No other page of the agent's carries the card: no link, no composite, no tier.
    for url in ("/partner/", "/partner/referrals"):
        page = agent.get(url, follow_redirects=True).get_data(as_text=True)
        assert "/partner/scorecard" not in page and "data-tier" not in page


def test_not_enough_loans_yet_is_said_in_chinese_too(client, world):
    _book(world, 1)
    chinese = {"Accept-Language": "zh-CN"}
    card = client.get("/api/v1/scorecard",
                      headers=auth(make_key(world.partner_a), **chinese)).json
    assert card["kpis"]["npl_rate"]["note"] == "贷款笔数尚不足：满 5 笔后显示。"
    partner = _signed_in(client, world.partner_a)
    page = partner.get("/partner/scorecard", headers=chinese).get_data(as_text=True)
    assert "贷款笔数尚不足" in _row(page, "early_payment_default")
