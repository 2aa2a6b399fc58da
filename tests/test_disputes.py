"""Disputes: a partner administrator flags a figure or one of its loans; the channel manager
answers and corrects the loan's record (audited); the partner reads the answer and nothing the
bank keeps to itself, and never reaches another organisation's loan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, Dispute, LoanPerformance, utcnow
from portal.bank_time import bank_date
from portal.extensions import db
from portal.services import Ctx, referrals
from tests import factories


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _loan(user, officer, *, status="npl", dpd=95):
    now = utcnow()
    r = factories.submit(user, at=now - timedelta(days=60))
    for i, state in enumerate(["under_review", "approved", "contract_signed", "disbursed"]):
        referrals.transition(officer, r, state, at=now - timedelta(days=59 - i))
    as_of = bank_date(now) - timedelta(days=2)
    statement = LoanPerformance(referral_id=r.id, org_id=r.org_id, as_of=as_of,
                                days_on_book=(as_of - bank_date(r.disbursed_at)).days,
                                outstanding=650_000, days_past_due=dpd, status=status)
    db.session.add(statement)
    db.session.commit()
    return r, statement


def test_a_loan_is_disputed_answered_and_corrected(world, as_user, client):
    officer = Ctx(user=world.officer)
    loan, statement = _loan(world.partner_a, officer)
    partner = as_user(world.partner_a)
    page = partner.get("/partner/scorecard").get_data(as_text=True)
    assert f'value="loan:{loan.id}"' in page
    sent = partner.post("/partner/disputes", data={
        "subject": f"loan:{loan.id}", "note": "The buyer paid in full on the 3rd."})
    assert sent.status_code == 302
    dispute = db.session.scalar(select(Dispute))
    assert (dispute.subject, dispute.referral_id, dispute.status) == ("loan", loan.id, "open")
    client.post("/logout")

    manager = as_user(world.manager)
    listing = manager.get("/bank/disputes").get_data(as_text=True)
    assert f'data-dispute-id="{dispute.id}"' in listing
    refused = manager.post(f"/bank/disputes/{dispute.id}/answer",
                           data={"answer": " ", "internal_note": "collections confirm"})
    assert refused.status_code == 422 and "collections confirm" in refused.get_data(as_text=True)
    manager.post(f"/bank/disputes/{dispute.id}/answer", data={
        "answer": "You are right: the statement was wrong and is corrected.",
        "internal_note": "Core system posted the payment late; ticket OPS-77."})
    corrected = manager.post(f"/bank/disputes/{dispute.id}/correct", data={
        "statement_id": statement.id, "outstanding": "0", "days_past_due": "0",
        "status": "closed", "reason": "Paid in full on the 3rd (core system)."})
    assert corrected.status_code == 302
    db.session.refresh(statement)
    assert (statement.status, statement.days_past_due, float(statement.outstanding)) == (
        "closed", 0, 0.0)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "loan.correct"))
    assert entry.detail["before"] == {"outstanding": "650000.00", "days_past_due": 95,
                                      "status": "npl"}
    assert entry.detail["after"]["status"] == "closed" and entry.actor_id == world.manager.id
    client.post("/logout")

    own = as_user(world.partner_a).get("/partner/scorecard").get_data(as_text=True)
    assert "the statement was wrong and is corrected" in own
    assert "OPS-77" not in own and "Core system" not in own  # the bank's internal note


def test_a_partner_cannot_dispute_another_partners_loan(world, as_user):
    loan, _statement = _loan(world.partner_a, Ctx(user=world.officer))
    attacker = as_user(world.partner_b)
    response = attacker.post("/partner/disputes", data={"subject": f"loan:{loan.id}",
                                                        "note": "Tell me about this buyer"})
    assert response.status_code == 404
    assert db.session.scalar(select(Dispute)) is None
    page = attacker.get("/partner/scorecard").get_data(as_text=True)
    assert f"loan:{loan.id}" not in page and loan.buyer_name not in page


def test_agents_and_bank_staff_do_not_open_disputes(world, as_user, client):
    assert as_user(world.agent_a).post("/partner/disputes", data={
        "subject": "kpi:approval_rate", "note": "x"}).status_code == 403
    client.post("/logout")
    assert as_user(world.officer).get("/bank/disputes").status_code == 403


def test_a_dispute_needs_a_subject_and_a_note_and_keeps_what_was_typed(world, as_user):
    partner = as_user(world.partner_a)
    response = partner.post("/partner/disputes", data={"subject": "kpi:approval_rate",
                                                       "note": "   "})
    assert response.status_code == 422
    assert 'value="kpi:approval_rate" selected' in response.get_data(as_text=True)
    bad = partner.post("/partner/disputes", data={"subject": "kpi:nonsense",
                                                  "note": "Typed words stay"})
    assert bad.status_code == 422 and "Typed words stay" in bad.get_data(as_text=True)
    ok = partner.post("/partner/disputes", data={"subject": "kpi:npl_rate",
                                                 "note": "Our NPL looks too high"})
    assert ok.status_code == 302
    assert db.session.scalar(select(Dispute.kpi_name)) == "npl_rate"


def test_a_statement_of_another_loan_cannot_be_corrected_through_a_dispute(world, as_user):
    officer = Ctx(user=world.officer)
    loan, _mine = _loan(world.partner_a, officer)
    _other, theirs = _loan(world.partner_b, officer)
    from portal.services import disputes

    dispute = disputes.open_dispute(Ctx(user=world.partner_a), world.org_a,
                                    {"subject": f"loan:{loan.id}", "note": "check"})
    db.session.commit()
    response = as_user(world.manager).post(f"/bank/disputes/{dispute.id}/correct", data={
        "statement_id": theirs.id, "outstanding": "0", "days_past_due": "0",
        "status": "closed", "reason": "x"})
    assert response.status_code == 404
    db.session.refresh(theirs)
    assert theirs.status == "npl"
