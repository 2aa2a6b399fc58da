"""Reveals with a purpose (issue 10, point 5), written as the insider it stops: an officer who
reveals buyer after buyer. A reveal needs a reason; the 21st within an hour is refused and
audited; past the limit a manager approves one reveal at a time; managers see reveals per person.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Reveal, RevealRequest, utcnow
from portal.extensions import db
from portal.services import Ctx, reveals
from portal.services.errors import Forbidden
from tests import factories


def _audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id)))


def _reveals() -> int:
    return db.session.scalar(select(func.count(Reveal.id)))


@pytest.fixture
def buyers(world):
    made = [factories.submit(world.partner_a, national_id=factories.national_id(700 + n))
            for n in range(22)]
    db.session.commit()
    return made


def _reveal(client, referral, reason="identity_verification", text=""):
    return client.post(f"/bank/referrals/{referral.id}/reveal",
                       data={"reason_code": reason, "reason_text": text})


def test_a_reveal_without_a_reason_is_refused_and_the_refusal_audited(world, as_user, buyers):
    referral = buyers[0]
    national_id = referrals_clear(referral)
    client = as_user(world.officer)
    for data in ({}, {"reason_code": "because"}, {"reason_code": "other", "reason_text": "  "}):
        response = client.post(f"/bank/referrals/{referral.id}/reveal", data=data)
        assert response.status_code == 302
        assert national_id not in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _reveals() == 0
    refusals = _audits("referral.reveal_refused")
    assert [r.detail["refusal"] for r in refusals] == ["no_reason"] * 3
    assert refusals[1].detail["reason_code"] == "because"
    assert all(r.actor_id == world.officer.id and r.target_id == str(referral.id)
               for r in refusals)
    assert _audits("referral.reveal") == []

    shown = _reveal(client, referral, "other", "Buyer called about a wrong mobile")
    assert shown.status_code == 200 and national_id in shown.get_data(as_text=True)
    [entry] = _audits("referral.reveal")
    assert entry.detail["reason_code"] == "other"
    assert entry.detail["reason_text"] == "Buyer called about a wrong mobile"
    row = db.session.scalar(select(Reveal))
    assert (row.user_id, row.referral_id, row.reason_code) == (world.officer.id, referral.id,
                                                                "other")


def referrals_clear(referral) -> str:
    from portal.services import pii
    return pii.decrypt(referral.national_id_enc)


def test_the_21st_reveal_within_the_hour_is_refused_and_audited(world, as_user, buyers, app):
    assert app.config["REVEAL_LIMIT_PER_HOUR"] == 20
    # Reveals older than an hour do not count against the limit.
    for referral in buyers[:5]:
        db.session.add(Reveal(referral_id=referral.id, user_id=world.officer.id,
                              at=utcnow() - timedelta(minutes=61), reason_code="other",
                              reason_text="last week's fraud case"))
    db.session.commit()
    client = as_user(world.officer)
    for referral in buyers[:20]:
        response = _reveal(client, referral)
        assert response.status_code == 200
        assert referrals_clear(referral) in response.get_data(as_text=True)
    twenty_first = buyers[20]
    response = _reveal(client, twenty_first, "fraud_investigation")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert referrals_clear(twenty_first) not in page
    assert "Ask a manager" in page and 'data-testid="reveal-limit"' in page
    assert _reveals() == 25
    [refusal] = _audits("referral.reveal_refused")
    assert refusal.detail == {"refusal": "over_limit", "limit": 20,
                              "reason_code": "fraud_investigation", "reason_text": None}
    assert refusal.target_id == str(twenty_first.id)
    # Another officer is not held back by this one's count.
    other = factories.UserFactory.bank("credit_officer", email="officer2@bank.test")
    db.session.commit()
    client.post("/logout")
    as_user(other)
    assert _reveal(client, twenty_first).status_code == 200


def test_past_the_limit_a_manager_approves_one_reveal(world, as_user, buyers, app, monkeypatch):
    monkeypatch.setitem(app.config, "REVEAL_LIMIT_PER_HOUR", 2)
    client = as_user(world.officer)
    assert _reveal(client, buyers[0]).status_code == 200
    assert _reveal(client, buyers[1]).status_code == 200
    target = buyers[2]
    assert _reveal(client, target).status_code == 302
    page = client.get(f"/bank/referrals/{target.id}").get_data(as_text=True)
    assert 'data-testid="ask-reveal-form"' in page

    # No reason, no request.
    client.post(f"/bank/referrals/{target.id}/reveal-request", data={"reason_code": ""})
    assert db.session.scalar(select(func.count(RevealRequest.id))) == 0
    asked = client.post(f"/bank/referrals/{target.id}/reveal-request",
                        data={"reason_code": "customer_complaint",
                              "reason_text": "Complaint 2026-118 names this buyer"})
    assert asked.status_code == 302
    request = db.session.scalar(select(RevealRequest))
    assert request.status == "pending" and request.requested_by_id == world.officer.id
    assert "waiting for a manager" in client.get(f"/bank/referrals/{target.id}").get_data(
        as_text=True)
    assert _reveal(client, target).status_code == 302  # still refused while pending

    # The manager sees the request in the menu and decides; a refusal needs a note.
    client.post("/logout")
    as_user(world.manager)
    menu = client.get("/bank/held").get_data(as_text=True)
    assert 'data-testid="reveal-requests-count">1<' in menu
    listing = client.get("/bank/reveal-requests").get_data(as_text=True)
    assert "Complaint 2026-118 names this buyer" in listing
    client.post(f"/bank/reveal-requests/{request.id}/decide", data={"decision": "refuse"})
    db.session.refresh(request)
    assert request.status == "pending"
    client.post(f"/bank/reveal-requests/{request.id}/decide", data={"decision": "approve"})
    db.session.refresh(request)
    assert request.status == "approved" and request.decided_by_id == world.manager.id
    [approval] = _audits("reveal.approve")
    assert approval.actor_id == world.manager.id

    # The approval works once.
    client.post("/logout")
    as_user(world.officer)
    shown = _reveal(client, target, "customer_complaint")
    assert shown.status_code == 200 and referrals_clear(target) in shown.get_data(as_text=True)
    db.session.refresh(request)
    assert request.status == "used"
    used = db.session.scalar(select(Reveal).where(Reveal.referral_id == target.id))
    assert used.request_id == request.id
    assert _reveal(client, target).status_code == 302
    assert [r.detail["refusal"] for r in _audits("referral.reveal_refused")] == [
        "over_limit", "over_limit", "over_limit"]


def test_nobody_approves_their_own_request(world, buyers, app, monkeypatch):
    monkeypatch.setitem(app.config, "REVEAL_LIMIT_PER_HOUR", 0)
    request = reveals.ask(Ctx(user=world.manager), buyers[0], "fraud_investigation", None)
    with pytest.raises(Forbidden):
        reveals.decide(Ctx(user=world.manager), request, approve=True, note=None)
    with pytest.raises(Forbidden):
        reveals.decide(Ctx(user=world.officer), request, approve=True, note=None)
    reveals.decide(Ctx(user=world.admin), request, approve=True, note=None)
    assert request.status == "approved"


def test_managers_see_reveals_per_person_with_counts_and_a_filtered_list(world, as_user, buyers):
    now = utcnow()
    second = factories.UserFactory.bank("credit_officer", email="officer2@bank.test",
                                        name="Officer Two")
    rows = [(world.officer, buyers[0], now, "identity_verification"),
            (world.officer, buyers[1], now, "fraud_investigation"),
            (world.officer, buyers[2], now - timedelta(days=30), "other"),
            (second, buyers[3], now, "credit_bureau_check")]
    for user, referral, at, code in rows:
        db.session.add(Reveal(referral_id=referral.id, user_id=user.id, at=at, reason_code=code))
    db.session.commit()
    per_person = {r["user"].id: (r["today"], r["week"]) for r in reveals.per_person()}
    assert per_person[second.id] == (1, 1)
    # Today's reveals are this week's too; the one a month ago is in neither.
    assert per_person[world.officer.id] == (2, 2)

    client = as_user(world.manager)
    page = client.get("/bank/reveals").get_data(as_text=True)
    assert 'data-testid="per-person"' in page and "Officer Two" in page
    filtered = client.get(f"/bank/reveals?user={world.officer.id}&reason=fraud_investigation")
    html = filtered.get_data(as_text=True)
    assert f"Referral #{buyers[1].id}" in html and f"Referral #{buyers[0].id}" not in html
    assert "1 in all" in html
    paged = client.get("/bank/reveals?per_page=2&page=2").get_data(as_text=True)
    assert "4 in all" in paged and html.count("data-reveal-id") == 1
    assert paged.count("data-reveal-id") == 2

    client.post("/logout")
    as_user(world.officer)
    assert client.get("/bank/reveals").status_code == 403
