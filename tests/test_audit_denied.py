"""Refused access is audited although the refused request's own work rolls back, and a flood of
refusals is capped per address (issue 11)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, utcnow
from portal.extensions import db
from portal.services import Ctx
from portal.services.audit import chain, denied
from tests import factories
from tests.integration_helpers import auth, make_key


def _denied():
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied")
                                   .order_by(AuditEntry.id)))


@pytest.fixture
def referral_of_a(world):
    made = factories.submit(world.partner_a)
    db.session.commit()
    return made


def test_another_organisations_referral_is_404_and_the_attempt_is_audited(
        world, as_user, referral_of_a, monkeypatch):
    client = as_user(world.partner_b)
    # The refused request writes something first; the rollback takes that, not the entry.
    from portal.services import referrals

    get_for = referrals.get_for

    def touch_then_look(user, referral_id):
        from portal.services import audit
        audit.record(Ctx(user=user), "referral.reveal", None, written_by="the refused request")
        return get_for(user, referral_id)

    monkeypatch.setattr(referrals, "get_for", touch_then_look)
    assert client.get(f"/partner/referrals/{referral_of_a.id}").status_code == 404
    [entry] = _denied()
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        world.partner_b.id, "referral", str(referral_of_a.id))
    assert entry.detail == {"status": 404, "method": "GET", "endpoint": "partner.referral"}
    assert entry.seq is not None
    assert db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "referral.reveal")) is None
    assert chain.walk().ok


def test_the_api_audits_a_foreign_id_and_a_wrong_key(world, client, referral_of_a):
    key = make_key(world.partner_b)
    assert client.get(f"/api/v1/referrals/{referral_of_a.id}",
                      headers=auth(key)).status_code == 404
    assert client.get("/api/v1/referrals", headers=auth("pk_wrong")).status_code == 401
    foreign, wrong_key = _denied()
    assert foreign.actor_id == world.partner_b.id and foreign.target_id == str(referral_of_a.id)
    assert wrong_key.actor_id is None and wrong_key.detail["status"] == 401


def test_a_partner_on_a_staff_page_and_a_refused_reveal_are_audited(
        world, as_user, referral_of_a):
    client = as_user(world.partner_a)
    assert client.get("/bank/queue").status_code == 403
    assert client.post(f"/bank/referrals/{referral_of_a.id}/reveal").status_code == 403
    queue, reveal = _denied()
    assert queue.detail["endpoint"] == "bank.queue" and queue.target_type is None
    assert reveal.detail["endpoint"] == "bank.reveal"
    assert (reveal.target_type, reveal.target_id) == ("referral", str(referral_of_a.id))


def test_an_unknown_address_is_not_an_access_attempt(world, as_user):
    client = as_user(world.partner_a)
    assert client.get("/partner/no-such-page").status_code == 404
    assert client.get("/partner/referrals/999999").status_code == 404  # an id: audited
    [entry] = _denied()
    assert entry.target_id == "999999"


def test_a_flood_is_capped_per_address_and_what_was_dropped_is_counted(
        world, as_user, referral_of_a, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUDIT_DENIED_PER_MINUTE", 3)
    client = as_user(world.partner_b)
    for _ in range(7):
        assert client.get(f"/partner/referrals/{referral_of_a.id}").status_code == 404
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert other.get("/api/v1/referrals", headers=auth("pk_wrong")).status_code == 401
    entries = _denied()
    assert len(entries) == 4  # three from the flooding address, one from the other
    assert denied.summarise_dropped(Ctx(user=None), utcnow()) == 0  # the minute is not over
    db.session.commit()
    later = utcnow() + timedelta(minutes=3)
    assert denied.summarise_dropped(Ctx(user=None, ip="worker"), later) == 4
    db.session.commit()
    summary = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "access.denied_dropped"))
    assert summary.detail["dropped"] == 4 and summary.detail["addresses"] == 1
    assert summary.detail["busiest"] == [["127.0.0.1", 4]]
    assert denied.summarise_dropped(Ctx(user=None), later) == 0  # counted once
    assert chain.walk().ok
