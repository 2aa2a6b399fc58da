"""Decisions with terms (issue 13): the officer approves with amount, term, rate and conditions
(less than asked is a counter-offer), records the contract and the disbursement; the partner
reads all of it on its pages, the API and webhooks; the portfolio and the scorecards count the
amount disbursed."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from models import AuditEntry, LoanDecision, Notification, OutboxEvent, Referral, utcnow
from portal.bank_time import bank_today
from portal.extensions import db
from portal.services import Ctx, notifications, referrals, webhooks
from portal.services.portfolio import PortfolioQuery, portfolio
from portal.services.scoring import aggregation
from portal.services.scoring.periods import rolling_period
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key

CONDITION = "Co-borrower's income proof before signing"


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _under_review(world, **overrides) -> Referral:
    referral = factories.submit(world.partner_a, **overrides)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    return referral


def _post(client, referral, to, **data):
    db.session.refresh(referral)
    data.setdefault("version", referral.version)
    return client.post(f"/bank/referrals/{referral.id}/transition", data={"to": to, **data})


def _approve(client, referral, **terms):
    values = {"amount": "700,000", "term_months": "240", "rate_percent": "3.85",
              "conditions": CONDITION + "\n\nProperty valuation report\n"}
    values.update(terms)
    return _post(client, referral, "approved", **values)


def _rows() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LoanDecision))


def _fresh(app, user):
    """A second browser, logged in as `user` (the test's client stays the officer's)."""
    other = app.test_client()
    other.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(other, user)
    return other


def _partner_page(app, world, referral) -> str:
    partner = _fresh(app, world.partner_a)
    return partner.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)


# --- the officer's pages ---------------------------------------------------------------------

def test_the_officer_approves_with_terms_through_the_page(world, as_user, client):
    referral = _under_review(world)
    officer = as_user(world.officer)
    page = officer.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    form = re.search(r'<form[^>]*data-action="approved".*?</form>', page, re.S).group(0)
    for name in ("amount", "term_months", "rate_percent", "conditions"):
        assert f'name="{name}"' in form
    assert 'value="700000.00"' in form  # the amount asked, to approve as it is
    assert "Requested: ¥700,000.00." in form and "¥¥" not in page

    response = _approve(officer, referral)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    row = db.session.get(LoanDecision, referral.id)
    assert row.approved_amount == Decimal("700000.00") and row.approved_term_months == 240
    assert row.rate_percent == Decimal("3.85")
    assert row.conditions == CONDITION + "\nProperty valuation report"
    assert db.session.get(Referral, referral.id).status == "approved"
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "referral.transition").order_by(AuditEntry.id.desc())).first()
    assert "700000.00" in str(entry.detail)

    shown = officer.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert "¥700,000.00" in shown and CONDITION.replace("'", "&#39;") in shown
    assert 'data-testid="counter-offer"' not in shown


def test_a_lower_amount_is_a_counter_offer_the_partner_sees_as_such(app, world, as_user):
    referral = _under_review(world, amount="1000000", down_payment="200000")
    assert _approve(as_user(world.officer), referral, amount="800000",
                    term_months="180").status_code == 302
    page = _partner_page(app, world, referral)
    offer = re.search(r'data-testid="counter-offer".*?</div>', page, re.S).group(0)
    assert "Approved with changes" in offer
    assert "¥800,000.00 instead of ¥1,000,000.00 requested" in offer
    assert "180 months instead of 240 requested" in offer
    assert "3.85%" in page


@pytest.mark.parametrize(("terms", "field", "message"), [
    ({"amount": ""}, "amount", "Enter the approved amount."),
    ({"amount": "-5"}, "amount", "more than zero"),
    ({"amount": "abc"}, "amount", "Enter an amount in yuan"),
    ({"amount": "50000"}, "amount", "This product lends from ¥100,000.00 to ¥10,000,000.00"),
    ({"amount": "900000"}, "amount", "not more"),
    ({"term_months": "400"}, "term_months", "1 to 360 months"),
    ({"term_months": "12.5"}, "term_months", "whole number of months"),
    ({"rate_percent": ""}, "rate_percent", "Enter the annual interest rate."),
    ({"rate_percent": "0"}, "rate_percent", "above 0 % and below 36 %"),
    ({"rate_percent": "36"}, "rate_percent", "above 0 % and below 36 %"),
    ({"conditions": "\n".join(f"condition {i}" for i in range(11))}, "conditions",
     "At most 10 conditions"),
    ({"conditions": "before\x00signing"}, "conditions", "plain text"),
])
def test_bad_terms_are_refused_on_their_field_and_nothing_is_written(world, as_user, terms,
                                                                      field, message):
    referral = _under_review(world)
    response = _approve(as_user(world.officer), referral, **terms)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'data-error-for="{field}"[^>]*>([^<]*)<', html)
    assert error and message in error.group(1).replace("&#39;", "'"), html[:0]
    # Tied to its control, which says it is invalid (a screen reader reads the two together).
    control_id = {"amount": "approve-amount", "term_months": "approve-term",
                  "rate_percent": "approve-rate", "conditions": "approve-conditions"}[field]
    control = re.search(rf'<(?:input|textarea)[^>]* id="{control_id}"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in control
    described = re.search(r'aria-describedby="([^"]*)"', control).group(1).split()
    assert f"{control_id}-error-1" in described
    assert f'data-error-for="{field}" id="{control_id}-error-1"' in html
    assert "Nothing was changed" in html
    assert _rows() == 0
    assert db.session.get(Referral, referral.id).status == "under_review"


def _approved(world, client, as_user, **overrides):
    referral = _under_review(world, **overrides)
    assert _approve(as_user(world.officer), referral, amount="600000").status_code == 302
    return referral


def test_contract_and_disbursement_are_recorded_with_number_amount_and_date(world, as_user,
                                                                           client):
    referral = _approved(world, client, as_user)
    officer = as_user(world.officer)
    page = officer.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    form = re.search(r'<form[^>]*data-action="contract_signed".*?</form>', page, re.S).group(0)
    assert 'name="number"' in form and 'name="date"' in form and 'value="600000.00"' in form

    today = bank_today()
    assert _post(officer, referral, "contract_signed", number="GD-2026-0042",
                 amount="600000", date=today.isoformat()).status_code == 302
    assert _post(officer, referral, "disbursed", amount="590000", date=today.isoformat(),
                 number="JJ-7").status_code == 302
    db.session.expire_all()
    row = db.session.get(LoanDecision, referral.id)
    assert (row.contract_number, row.contract_amount, row.contract_signed_on) == (
        "GD-2026-0042", Decimal("600000.00"), today)
    assert (row.disbursed_amount, row.disbursed_on, row.loan_number) == (
        Decimal("590000.00"), today, "JJ-7")
    assert db.session.get(Referral, referral.id).status == "disbursed"


def test_a_contract_or_disbursement_out_of_bounds_is_refused(world, as_user, client):
    referral = _approved(world, client, as_user)
    officer = as_user(world.officer)
    today = bank_today()
    tomorrow = (today + timedelta(days=1)).isoformat()
    cases = [
        ({"number": "", "amount": "600000", "date": today.isoformat()}, "number",
         "Enter the contract number."),
        ({"number": "C1", "amount": "600000.01", "date": today.isoformat()}, "amount",
         "cannot be more than the approved amount (¥600,000.00)"),
        ({"number": "C1", "amount": "600000", "date": tomorrow}, "date",
         "cannot be in the future"),
        ({"number": "C1", "amount": "600000", "date": "18/03/2026"}, "date", "YYYY-MM-DD"),
        ({"number": "C1", "amount": "600000", "date": "2020-01-01"}, "date",
         "cannot be before"),
    ]
    for data, field, message in cases:
        response = _post(officer, referral, "contract_signed", **data)
        assert response.status_code == 422, data
        error = re.search(rf'data-error-for="{field}"[^>]*>([^<]*)<',
                          response.get_data(as_text=True))
        assert error and message in error.group(1), (data, error and error.group(1))
    db.session.expire_all()
    assert db.session.get(LoanDecision, referral.id).contract_number is None

    assert _post(officer, referral, "contract_signed", number="C1", amount="550000",
                 date=today.isoformat()).status_code == 302
    over = _post(officer, referral, "disbursed", amount="550000.50", date=today.isoformat())
    assert over.status_code == 422
    assert "cannot be more than the contract amount (¥550,000.00)" in over.get_data(as_text=True)
    future = _post(officer, referral, "disbursed", amount="550000", date=tomorrow)
    assert future.status_code == 422 and "cannot be in the future" in future.get_data(
        as_text=True)
    db.session.expire_all()
    assert db.session.get(LoanDecision, referral.id).disbursed_amount is None
    assert db.session.get(Referral, referral.id).status == "contract_signed"


def test_a_decline_shows_the_partner_the_category_never_the_internal_note(app, world,
                                                                          as_user):
    referral = _under_review(world)
    assert _post(as_user(world.officer), referral, "declined", reason_code="income_insufficient",
                 note="INTERNAL-scoring-band-7").status_code == 302
    page = _partner_page(app, world, referral)
    card = re.search(r'data-testid="decision".*?</section>', page, re.S).group(0)
    assert "Declined on" in card and "Income insufficient" in card
    assert "INTERNAL-scoring-band-7" not in page


# --- what the partner reads ------------------------------------------------------------------

def test_the_partner_sees_terms_contract_and_disbursement_on_detail_and_timeline(app, world,
                                                                               as_user, client):
    referral = _approved(world, client, as_user)
    officer = as_user(world.officer)
    today = bank_today().isoformat()
    _post(officer, referral, "contract_signed", number="GD-77", amount="600000", date=today)
    _post(officer, referral, "disbursed", amount="600000", date=today, note="INTERNAL-pay-run")
    page = _partner_page(app, world, referral)
    card = re.search(r'data-testid="decision".*?</section>', page, re.S).group(0)
    assert "¥600,000.00" in card and "3.85%" in card and CONDITION in card.replace("&#39;", "'")
    assert "GD-77" in card and "value date " + today in card
    assert "instead of ¥700,000.00 requested" in card  # 600,000 of 700,000: a counter-offer
    timeline = re.search(r'data-testid="timeline".*?</ul>', page, re.S).group(0)
    line = re.search(r'data-testid="decision-terms">.*?</div>', timeline, re.S).group(0)
    assert "Approved with changes" in line and "¥600,000.00 for 240 months at 3.85% a year" in line
    assert CONDITION in line.replace("&#39;", "'")
    assert "Contract GD-77" in timeline and "paid out" in timeline
    assert "INTERNAL-pay-run" not in page


def test_another_partner_cannot_read_the_decision(app, world, as_user, client):
    referral = _approved(world, client, as_user)
    assert _fresh(app, world.partner_b).get(
        f"/partner/referrals/{referral.id}").status_code == 404
    key = make_key(world.partner_b)
    assert client.get(f"/api/v1/referrals/{referral.id}",
                      headers=auth(key)).status_code == 404


# --- the API ---------------------------------------------------------------------------------

def test_the_api_shows_the_decision_to_the_partner_in_detail_and_list(world, as_user, client):
    referral = _approved(world, client, as_user)
    key = auth(make_key(world.partner_a))
    body = client.get(f"/api/v1/referrals/{referral.id}", headers=key).json
    assert body["decision"] == {
        "outcome": "approved", "decided_at": body["decision"]["decided_at"],
        "amount": 600000.0, "term_months": 240, "rate_percent": 3.85,
        "conditions": [CONDITION, "Property valuation report"], "counter_offer": True,
        "requested_amount": 700000.0, "requested_term_months": 240, "reason_code": None}
    assert body["contract"] is None and body["disbursement"] is None
    listed = client.get("/api/v1/referrals", headers=key).json["items"]
    assert listed[0]["decision"]["amount"] == 600000.0
    undecided = factories.submit(world.partner_a)
    db.session.commit()
    assert client.get(f"/api/v1/referrals/{undecided.id}", headers=key).json["decision"] is None


def test_the_api_moves_with_terms_and_without_them_as_before(app, world, client):
    key = auth(make_key(world.officer))
    with_terms = _under_review(world)
    url = f"/api/v1/referrals/{with_terms.id}/transitions"
    bad = client.post(url, headers=key, json={"to": "approved", "decision": {
        "amount": 9_000_000, "term_months": 240, "rate_percent": 3.1}})
    assert bad.status_code == 422 and "decision.amount" in bad.json["error"]["fields"]
    wrong = client.post(url, headers=key, json={"to": "approved", "contract": {"number": "X"}})
    assert wrong.status_code == 422 and "contract" in wrong.json["error"]["fields"]
    missing = client.post(url, headers=key, json={"to": "approved", "decision": {"amount": 1}})
    assert missing.status_code == 422
    assert {"decision.term_months", "decision.rate_percent"} <= set(
        missing.json["error"]["fields"])
    assert _rows() == 0
    done = client.post(url, headers=key, json={"to": "approved", "decision": {
        "amount": 650000, "term_months": 240, "rate_percent": 3.1,
        "conditions": ["Salary account at the bank"]}})
    assert done.status_code == 200, done.json
    assert done.json["decision"]["counter_offer"] is True
    assert done.json["decision"]["conditions"] == ["Salary account at the bank"]
    today = bank_today().isoformat()
    signed = client.post(url, headers=key, json={"to": "contract_signed", "contract": {
        "number": "API-1", "amount": 650000, "date": today}})
    assert signed.json["contract"] == {"number": "API-1", "amount": 650000.0, "date": today}
    paid = client.post(url, headers=key, json={"to": "disbursed", "disbursement": {
        "amount": 700000, "date": today}})
    assert paid.status_code == 422 and "disbursement.amount" in paid.json["error"]["fields"]

    # The old request shape still works: a move without terms records none.
    plain = _under_review(world)
    old = client.post(f"/api/v1/referrals/{plain.id}/transitions", headers=key,
                      json={"to": "approved", "note": "as before"})
    assert old.status_code == 200
    assert old.json["decision"]["outcome"] == "approved"
    assert old.json["decision"]["amount"] is None and old.json["decision"]["counter_offer"] is False
    page = _partner_page(app, world, plain)
    assert 'data-testid="no-terms"' in page and 'data-testid="counter-offer"' not in page


def test_the_webhook_payload_carries_the_decision(world, as_user, client):
    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a,
                             "http://127.0.0.1:9/hook")
    db.session.commit()
    _approved(world, client, as_user)
    db.session.expire_all()
    events = db.session.scalars(select(OutboxEvent).where(
        OutboxEvent.type == "referral.status_changed").order_by(OutboxEvent.created_at)).all()
    data = events[-1].payload
    assert data["to"] == "approved"
    assert data["referral"]["decision"]["amount"] == 600000.0
    assert data["referral"]["decision"]["conditions"][0] == CONDITION


def test_the_openapi_document_describes_the_decision(client):
    doc = client.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    assert {"decision", "contract", "disbursement"} <= set(schemas["ReferralOut"]["properties"])
    assert {"amount", "term_months", "rate_percent", "conditions", "counter_offer"} <= set(
        schemas["DecisionOut"]["properties"])
    assert {"decision", "contract", "disbursement"} <= set(schemas["TransitionIn"]["properties"])


# --- amounts in the portfolio and the scorecards -----------------------------------------------

def _disbursed(world, amount: str | None, requested: str = "700000") -> Referral:
    referral = _under_review(world, amount=requested)
    officer = Ctx(user=world.officer)
    today = bank_today()
    if amount is None:  # history without terms
        for to in ("approved", "contract_signed", "disbursed"):
            referrals.transition(officer, referral, to)
    else:
        referrals.transition(officer, referral, "approved", terms={
            "amount": amount, "term_months": 240, "rate_percent": "4"})
        referrals.transition(officer, referral, "contract_signed", terms={
            "number": f"C{referral.id}", "amount": amount, "date": today})
        referrals.transition(officer, referral, "disbursed", terms={
            "amount": amount, "date": today})
    db.session.commit()
    return referral


def test_the_portfolio_and_scorecards_count_the_amount_disbursed(world):
    _disbursed(world, "500000", requested="700000")  # counter-offer: 500,000 lent
    _disbursed(world, None, requested="300000")  # no terms recorded: the amount asked
    book = portfolio(PortfolioQuery(group_by="org"))
    assert book.total.disbursed_amount == 800000.0
    assert book.total.balance == 800000.0  # no statements yet: the amount lent
    period = rolling_period(utcnow())
    figures = aggregation.aggregate([period], world.org_a.id)[(world.org_a.id, period.key)]
    assert figures.totals["disbursed_amount"] == 800000.0


def test_the_partners_notice_of_an_approval_gives_the_terms(world, as_user, client):
    _approved(world, client, as_user)
    db.session.expire_all()
    note = db.session.scalars(select(Notification).where(
        Notification.user_id == world.agent_a.id,
        Notification.kind == "referral_status").order_by(Notification.id.desc())).first()
    with force_locale("en"):
        text = notifications.render(note)["text"]
    assert ("Approved with changes: ¥600,000.00 instead of ¥700,000.00 requested, 240 months at "
            "3.85% a year.") in text
