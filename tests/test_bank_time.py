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
