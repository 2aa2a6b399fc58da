"""The attribution answer cannot be mined (issue 10, point 3), written as the attack: a partner
submits buyers another partner holds, learns `conflict`, withdraws, and repeats. Past
PROBE_HOLD_THRESHOLD such withdrawals in a bank day its further submissions are held for a channel
manager, who is alerted, sees the consent evidence and releases or refuses each one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, Notification, Referral, utcnow
from portal import worker
from portal.bank_time import bank_today, day_start
from portal.extensions import db
from portal.services import Ctx, pii, probes, referrals
from tests import factories
from tests.integration_helpers import api_body, auth, make_key
from tests.test_notifications import SmtpSink


def _held_by_a(world, n: int) -> list[str]:
    """National IDs of `n` buyers partner A registered (for housing mortgages)."""
    ids = []
    for seq in range(n):
        referral = factories.submit(world.partner_a, national_id=factories.national_id(400 + seq))
        ids.append(pii.decrypt(referral.national_id_enc))
    db.session.commit()
    return ids


def _submit(client, key, national_id):
    return client.post("/api/v1/referrals", json=api_body(**{"buyer.national_id": national_id}),
                       headers=auth(key))


def _withdraw(client, key, referral_id):
    response = client.post(f"/api/v1/referrals/{referral_id}/transitions",
                           json={"to": "withdrawn"}, headers=auth(key))
    assert response.status_code == 200, response.json
    return response


@pytest.fixture
def mail(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", sink.port)
        yield sink


def test_probe_and_withdraw_is_held_past_the_threshold_and_the_manager_releases(
        world, client, as_user, app, mail):
    assert app.config["PROBE_HOLD_THRESHOLD"] == 3
    taken = _held_by_a(world, 6)
    key = make_key(world.partner_b)

    for national_id in taken[:3]:  # probe: conflict, then withdraw at once
        response = _submit(client, key, national_id)
        assert response.status_code == 201 and response.json["status"] == "conflict"
        assert "PARTNERA" not in response.get_data(as_text=True)
        _withdraw(client, key, response.json["id"])
    assert probes.probe_count(world.org_b.id, utcnow()) == 3

    # From now on the answer is the same whether or not another partner holds the buyer.
    registered = _submit(client, key, taken[3])
    fresh = _submit(client, key, factories.national_id(950))
    another = _submit(client, key, taken[4])
    for response in (registered, fresh, another):
        assert response.status_code == 201 and response.json["status"] == "held"
        assert set(response.json) == set(fresh.json)
    assert {r.json["timeline"][0]["note"] for r in (registered, fresh)} == {None}

    # Partner B has no channel manager: every channel manager is alerted, once that day.
    alerts = list(db.session.scalars(select(Notification).where(
        Notification.kind == "probe_hold")))
    assert [n.user_id for n in alerts] == [world.manager.id]
    assert worker.run_due()["emails"] == 1
    [message] = mail.parsed()
    assert "Partner B" in message["Subject"] and "/bank/held?org=" in message.get_content()
    holds = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "referral.hold"))
    assert [h.detail["probes_today"] for h in holds] == [3, 3, 3]

    # The manager sees them, with the consent evidence, and who holds the buyer.
    as_user(world.manager)
    assert 'data-testid="held-count">3<' in client.get("/bank/conflicts").get_data(as_text=True)
    page = client.get("/bank/held?scope=all").get_data(as_text=True)
    for response in (registered, fresh, another):
        assert f'data-referral-id="{response.json["id"]}"' in page
    assert "Notice 2026-01, obtained 2026-01-05" in page
    assert "Partner A" in page  # bank staff see the holder; partner B never does
    queue = client.get("/bank/queue").get_data(as_text=True)
    assert f'/bank/referrals/{fresh.json["id"]}"' not in queue

    def decide(response, decision, reason):
        referral = db.session.get(Referral, response.json["id"])
        return client.post(f"/bank/referrals/{referral.id}/held", data={
            "decision": decision, "reason": reason, "version": referral.version})

    decide(fresh, "release", "")  # a reason is required
    assert db.session.get(Referral, fresh.json["id"]).status == "held"
    decide(fresh, "release", "Called the buyer: real application")
    decide(registered, "release", "Looks genuine; let the conflict queue decide")
    decide(another, "refuse", "Probe: buyer confirmed no contact with Partner B")
    db.session.expire_all()
    assert db.session.get(Referral, fresh.json["id"]).status == "submitted"
    assert db.session.get(Referral, registered.json["id"]).status == "conflict"
    assert db.session.get(Referral, another.json["id"]).status == "refused"
    actions = {(e.action, e.target_id, (e.detail or {}).get("reason")) for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action.like("referral.hold_%")))}
    assert actions == {
        ("referral.hold_release", str(fresh.json["id"]), "Called the buyer: real application"),
        ("referral.hold_release", str(registered.json["id"]),
         "Looks genuine; let the conflict queue decide"),
        ("referral.hold_refuse", str(another.json["id"]),
         "Probe: buyer confirmed no contact with Partner B")}

    # What partner B reads is neutral: no reason of the bank's, no other partner.
    answer = client.get(f"/api/v1/referrals/{another.json['id']}", headers=auth(key)).json
    assert answer["status"] == "refused"
    assert "Probe" not in str(answer) and "Partner A" not in str(answer)


def test_ordinary_conflicts_of_a_normal_partner_are_not_held(world, client):
    taken = _held_by_a(world, 5)
    key = make_key(world.partner_b)
    conflicts = [_submit(client, key, national_id) for national_id in taken[:4]]
    assert [r.json["status"] for r in conflicts] == ["conflict"] * 4
    # Two of them withdrawn, below the threshold; a bank withdrawal does not count.
    _withdraw(client, key, conflicts[0].json["id"])
    _withdraw(client, key, conflicts[1].json["id"])
    ordinary = factories.submit(world.partner_b, national_id=factories.national_id(960))
    referrals.transition(Ctx(user=world.officer), ordinary, "withdrawn")
    db.session.commit()
    assert probes.probe_count(world.org_b.id, utcnow()) == 2
    assert _submit(client, key, taken[4]).json["status"] == "conflict"
    assert _submit(client, key, factories.national_id(961)).json["status"] == "submitted"
    assert db.session.scalar(select(Notification.id).where(
        Notification.kind == "probe_hold")) is None


def test_counting_is_per_partner_per_bank_day(world, client, app):
    taken = _held_by_a(world, 7)
    org_c = factories.OrgFactory(code="PARTNERC", name="Partner C", kind="property_broker")
    partner_c = factories.UserFactory(org=org_c, role="partner_admin", email="admin@c.test")
    db.session.commit()
    midnight = day_start(bank_today())  # the bank's midnight (Asia/Shanghai), in UTC

    def probe(user, national_id, withdrawn_at):
        referral = factories.submit(user, national_id=national_id,
                                    at=withdrawn_at - timedelta(minutes=1))
        assert referral.status == "conflict"
        referrals.transition(Ctx(user=user), referral, "withdrawn", at=withdrawn_at)
        db.session.commit()

    # Yesterday, by the bank's calendar, partner B probed three times (the last a minute before
    # the bank's midnight, which is 16:00 UTC): that does not hold today's submissions.
    for n, minutes in enumerate((120, 60, 1)):
        probe(world.partner_b, taken[n], midnight - timedelta(minutes=minutes))
    assert probes.probe_count(world.org_b.id, midnight) == 0
    assert probes.probe_count(world.org_b.id, midnight - timedelta(minutes=1)) == 3
    assert not probes.should_hold(world.org_b.id, utcnow())
    # Partner C's probes today are partner C's alone.
    for n in range(3, 6):
        probe(partner_c, taken[n], utcnow() - timedelta(seconds=10 - n))
    assert probes.should_hold(org_c.id, utcnow())
    assert not probes.should_hold(world.org_b.id, utcnow())
    key_b, key_c = make_key(world.partner_b), make_key(partner_c)
    assert _submit(client, key_b, factories.national_id(970)).json["status"] == "submitted"
    assert _submit(client, key_c, factories.national_id(971)).json["status"] == "held"


def test_the_web_form_says_held_without_saying_conflict(world, as_user, client):
    taken = _held_by_a(world, 4)
    for national_id in taken[:3]:
        referral = factories.submit(world.partner_b, national_id=national_id)
        referrals.transition(Ctx(user=world.partner_b), referral, "withdrawn")
    db.session.commit()
    as_user(world.partner_b)
    response = client.post("/partner/referrals/new", data=factories.intake(
        national_id=taken[3], consent="y"), follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "The bank reviews it before it enters the queue" in html
    assert "already registered" not in html
    assert "Held for review by the bank" in html


def test_the_consent_evidence_is_required_over_the_api(world, client):
    key = make_key(world.partner_b)
    for missing in ("notice_version", "obtained_at"):
        body = api_body()
        del body["consent"][missing]
        response = client.post("/api/v1/referrals", json=body, headers=auth(key))
        assert response.status_code == 422
        assert f"consent.{missing}" in response.json["error"]["fields"]


def test_a_decided_held_submission_cannot_be_decided_again(world, as_user, client):
    taken = _held_by_a(world, 3)
    for national_id in taken:
        referral = factories.submit(world.partner_b, national_id=national_id)
        referrals.transition(Ctx(user=world.partner_b), referral, "withdrawn")
    held = factories.submit(world.partner_b, national_id=factories.national_id(990))
    db.session.commit()
    assert held.status == "held"
    as_user(world.manager)
    version = held.version
    first = client.post(f"/bank/referrals/{held.id}/held", data={
        "decision": "release", "reason": "genuine", "version": version})
    assert first.status_code == 302
    db.session.refresh(held)
    assert held.status == "submitted"
    again = client.post(f"/bank/referrals/{held.id}/held", data={
        "decision": "refuse", "reason": "second thoughts", "version": held.version},
        follow_redirects=True)
    assert "no longer held" in again.get_data(as_text=True)
    db.session.refresh(held)
    assert held.status == "submitted"
