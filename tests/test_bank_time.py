"""The bank's clock: a typed local time is stored as the same instant, days start at midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from models import ContactLog
from portal.bank_time import bank_date, day_start, typed_local
from portal.extensions import db


def test_a_typed_ten_oclock_is_stored_as_ten_oclock_at_the_bank(as_user, world):
    # pytz's zone used with replace() gave local mean time (+08:06): 10:00 came back as 09:54.
    client = as_user(world.manager)
    response = client.post("/bank/contacts", data={
        "org_id": world.org_a.id, "kind": "visit", "at": "2026-03-02T10:00",
        "summary": "Quarterly visit"})
    assert response.status_code == 302
    stored = db.session.scalar(select(ContactLog))
    assert stored.at == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_days_start_at_the_banks_midnight(app):
    with app.app_context():
        assert day_start(date(2026, 1, 1)) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
        assert bank_date(datetime(2025, 12, 31, 16, 0, tzinfo=UTC)) == date(2026, 1, 1)
        assert bank_date(datetime(2025, 12, 31, 15, 59, tzinfo=UTC)) == date(2025, 12, 31)
        assert typed_local(datetime(2026, 6, 1, 8, 30)) == datetime(2026, 6, 1, 0, 30, tzinfo=UTC)
        assert typed_local(None) is None


def test_typed_ten_oclock_reads_ten_oclock_in_both_languages(as_user, world):
    from models import FollowUp
    from portal.services import Ctx, followups
    from tests import factories

    client = as_user(world.manager)
    client.post("/bank/contacts", data={"org_id": world.org_a.id, "kind": "call",
                                        "at": "2026-03-02T10:00", "summary": "Called the office"})
    referral = factories.submit(world.partner_a)
    entry = followups.add(Ctx(user=world.manager), referral)
    db.session.commit()
    response = client.post(f"/bank/followups/{entry.id}/notes", data={
        "kind": "call", "body": "Will call back", "next_action_at": "2026-04-15T10:00"})
    assert response.status_code == 302
    assert db.session.get(FollowUp, entry.id).next_action_at == datetime(2026, 4, 15, 2, 0,
                                                                          tzinfo=UTC)
    for language in ("en", "zh-CN"):
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
        contacts = client.get("/bank/contacts?scope=all").get_data(as_text=True)
        assert "2026-03-02 10:00" in contacts, language
        followup = client.get(f"/bank/followups/{entry.id}").get_data(as_text=True)
        assert "2026-04-15 10:00" in followup, language


def test_a_date_without_a_time_is_told_so(as_user, world):
    from portal.services import Ctx, followups
    from tests import factories

    client = as_user(world.manager)
    referral = factories.submit(world.partner_a)
    entry = followups.add(Ctx(user=world.manager), referral)
    db.session.commit()
    for language, expected in (("en", "Give the time as well as the date"),
                               ("zh-CN", "请同时填写时间")):
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
        response = client.post(f"/bank/followups/{entry.id}/notes", data={
            "kind": "call", "body": "Will call back", "next_action_at": "2026-04-15"},
            follow_redirects=True)
        page = response.get_data(as_text=True)
        assert expected in page, language
        assert "Write what happened" not in page and "请填写跟进情况" not in page
        contact = client.post("/bank/contacts", data={
            "org_id": world.org_a.id, "kind": "call", "at": "2026-03-02",
            "summary": "Called"}, follow_redirects=True).get_data(as_text=True)
        assert expected in contact, language
    assert db.session.scalar(select(ContactLog)) is None
