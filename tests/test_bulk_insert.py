"""The bulk insert the history import uses (services/sql.bulk_insert): COPY on PostgreSQL,
executemany elsewhere. What it writes must read back exactly as an ORM insert would have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models import ReferralEvent, Stipulation
from portal.extensions import db
from portal.services import sql

from . import factories


def test_ids_come_back_in_the_order_given_and_defaults_are_filled(world):
    referral = factories.submit(world.agent_a)
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    rows = [{"referral_id": referral.id, "at": at + timedelta(minutes=i), "actor_id": None,
             "from_state": "submitted", "to_state": "under_review", "clock": "bank",
             "reason_code": None, "note": f"line {i}", "partner_note": None}
            for i in range(7)]
    ids = sql.bulk_insert(ReferralEvent.__table__, rows, ids=True)

    assert len(ids) == 7 and len(set(ids)) == 7
    read = {e.id: e for e in db.session.scalars(
        select(ReferralEvent).where(ReferralEvent.id.in_(ids)))}
    # Each id names the row it was returned for, and the aware time comes back as given.
    assert [read[i].note for i in ids] == [f"line {i}" for i in range(7)]
    assert [read[i].at for i in ids] == [at + timedelta(minutes=i) for i in range(7)]

    # No status given: the model's own default ("missing"), as through the ORM.
    assert sql.bulk_insert(Stipulation.__table__, [
        {"referral_id": referral.id, "kind": "proof_of_income", "requested_at": at}]) == []
    added = db.session.scalars(select(Stipulation).where(
        Stipulation.referral_id == referral.id, Stipulation.kind == "proof_of_income")).one()
    assert added.status == "missing" and added.requested_at == at


def test_nothing_to_insert_is_no_statement(world):
    assert sql.bulk_insert(ReferralEvent.__table__, [], ids=True) == []
