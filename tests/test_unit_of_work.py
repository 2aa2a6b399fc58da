"""The transaction boundary: a refusal after a flush leaves nothing behind, on every face.

Each test replaces one service call with one that writes (an audit entry, flushed) and then refuses,
and drives the real route through the real app; afterwards the entry must not exist. The same
writes without the refusal are committed, so the check can fail.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditEntry
from portal.extensions import db
from portal.services import audit, referrals
from portal.services.errors import StateConflict, ValidationFailed
from tests import factories
from tests.integration_helpers import auth, make_key

MARK = "uow.half_written"


def _written() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == MARK))


def _flush_then(error):
    """A stand-in for a service: writes and flushes, then raises `error` (or returns)."""

    def service(ctx, *args, **kwargs):
        audit.record(ctx, MARK)
        db.session.flush()
        if error is not None:
            raise error
        return None

    return service


@pytest.fixture
def referral(world):
    made = factories.submit(world.partner_a)
    db.session.commit()
    return made


def _post_transition(client, referral):
    return client.post(f"/bank/referrals/{referral.id}/transition",
                       data={"to": "under_review", "version": referral.version, "note": ""})


def test_a_page_that_goes_back_with_a_message_keeps_nothing(monkeypatch, as_user, world,
                                                            referral):
    client = as_user(world.officer)
    monkeypatch.setattr(referrals, "transition", _flush_then(StateConflict("Changed meanwhile.")))
    response = _post_transition(client, referral)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/bank/referrals/{referral.id}")
    assert _written() == 0
    assert "Changed meanwhile." in client.get(response.headers["Location"]).get_data(True)


def test_the_same_write_without_a_refusal_is_committed(monkeypatch, as_user, world, referral):
    client = as_user(world.officer)
    monkeypatch.setattr(referrals, "transition", _flush_then(None))
    assert _post_transition(client, referral).status_code == 302
    assert _written() == 1


def test_a_form_shown_again_with_its_errors_keeps_nothing(monkeypatch, as_user, world):
    client = as_user(world.partner_a)
    monkeypatch.setattr(referrals, "submit", _flush_then(
        ValidationFailed({"buyer_name": "Give the buyer's name."})))
    data = factories.intake() | {"consent": "y"}
    response = client.post("/partner/referrals/new", data=data)
    assert response.status_code == 422
    assert "Give the buyer&#39;s name." in response.get_data(True)
    assert _written() == 0


def test_an_api_call_answered_with_an_error_keeps_nothing(monkeypatch, client, world, referral):
    key = make_key(world.officer)
    monkeypatch.setattr(referrals, "transition", _flush_then(StateConflict("Changed meanwhile.")))
    response = client.post(f"/api/v1/referrals/{referral.id}/transitions",
                           json={"to": "under_review", "expected_version": referral.version},
                           headers=auth(key))
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "state_conflict"
    assert _written() == 0


def test_an_error_page_keeps_nothing(monkeypatch, as_user, world):
    # A refusal with nowhere to go back to is shown as an error page: still nothing kept.
    client = as_user(world.partner_a)
    monkeypatch.setattr(referrals, "submit", _flush_then(StateConflict("No.")))
    response = client.post("/partner/referrals/new", data=factories.intake() | {"consent": "y"})
    assert response.status_code == 409
    assert _written() == 0
