"""The transition table, exhaustively: every (from, to) pair for every role, through the service."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import ReferralEvent, utcnow
from portal.extensions import db
from portal.services import Ctx, referrals
from portal.services.errors import NeverAllowed, StateConflict, ValidationFailed
from portal.services.lifecycle import (
    CLOCK,
    HOLD_REVIEW,
    TERMINAL,
    TRANSITIONS,
    Actor,
    State,
    allowed,
)
from tests import factories

ROLES = ["partner_agent", "partner_admin", "credit_officer", "channel_manager", "admin", None]
PAIRS = [(a, b) for a in State for b in State]


def expected(from_state: State, to_state: State, role: str | None) -> bool:
    who = TRANSITIONS.get((from_state, to_state), frozenset())
    if role is None:
        return Actor.system in who
    if role in ("partner_agent", "partner_admin"):
        return Actor.partner in who
    if role == "credit_officer":
        return Actor.officer in who
    if role == "channel_manager":
        return Actor.manager in who
    return Actor.officer in who or Actor.manager in who  # admin


def test_terminal_states_have_no_way_out():
    for (from_state, _to), _who in TRANSITIONS.items():
        assert from_state not in TERMINAL
    assert TERMINAL == {State.disbursed, State.declined, State.withdrawn,
                        State.rejected_duplicate, State.expired, State.refused}


def test_every_state_says_whose_clock_runs():
    assert set(CLOCK) == set(State)
    assert CLOCK[State.documents_requested] == "partner"
    assert {s for s, c in CLOCK.items() if c == "bank"} == {
        State.submitted, State.under_review, State.approved, State.contract_signed, State.conflict,
        State.held}


@pytest.mark.parametrize("role", ROLES)
def test_allowed_matches_the_table_for_every_pair(role):
    for from_state, to_state in PAIRS:
        assert allowed(from_state.value, to_state.value, role) == expected(
            from_state, to_state, role), (from_state, to_state, role)


def _actor(world, role):
    return {
        "partner_agent": world.agent_a, "partner_admin": world.partner_a,
        "credit_officer": world.officer, "channel_manager": world.manager, "admin": world.admin,
        None: None,
    }[role]


@pytest.mark.parametrize("from_state", list(State), ids=lambda s: s.value)
def test_service_applies_exactly_the_table(world, from_state):
    """For one starting state: try every target with every role on a fresh referral."""
    for to_state in State:
        for role in ROLES:
            referral = factories.submit(world.partner_a)
            referral.status = from_state.value
            referral.clock = CLOCK[from_state]
            for stip in referral.stipulations:  # a partner sending documents back needs uploads
                stip.status = "uploaded"
            db.session.commit()
            events_before = len(referral.events)
            ctx = Ctx(user=_actor(world, role), ip="127.0.0.1")
            kwargs = {"note": "because", "reason_code": "credit_policy",
                      # Out of `held` only through the review (tested in test_attribution.py).
                      "hold_review": (from_state, to_state) in HOLD_REVIEW}
            if expected(from_state, to_state, role):
                event = referrals.transition(ctx, referral, to_state.value, **kwargs)
                assert referral.status == to_state.value
                assert referral.clock == CLOCK[to_state]
                assert event.from_state == from_state.value and event.to_state == to_state.value
                assert event.actor_id == (ctx.user.id if ctx.user else None)
                assert event.clock == CLOCK[to_state]
                db.session.commit()
            else:
                # Never reachable for the role: 403; reachable from another state: 409.
                never = not any(expected(f, to_state, role) for f in State)
                with pytest.raises(NeverAllowed if never else StateConflict) as err:
                    referrals.transition(ctx, referral, to_state.value, **kwargs)
                assert isinstance(err.value, NeverAllowed) == never
                db.session.rollback()
                db.session.refresh(referral)
                assert referral.status == from_state.value
                assert len(referral.events) == events_before


def test_clocks_accumulate_on_the_side_that_was_waiting(world):
    start = utcnow() - timedelta(hours=30)
    referral = factories.submit(world.partner_a, at=start)
    officer = Ctx(user=world.officer)
    partner = Ctx(user=world.partner_a)
    referrals.transition(officer, referral, "documents_requested", note="payslips",
                         at=start + timedelta(hours=4))
    for stip in referral.stipulations:
        stip.status = "uploaded"
    referrals.transition(partner, referral, "under_review", at=start + timedelta(hours=14))
    referrals.transition(officer, referral, "approved", at=start + timedelta(hours=20))
    assert referral.bank_seconds == 10 * 3600
    assert referral.partner_seconds == 10 * 3600
    assert referral.decided_at == start + timedelta(hours=20)
    assert referral.ever_documents_requested


def test_decline_needs_a_partner_safe_reason_category(world):
    referral = factories.submit(world.partner_a)
    officer = Ctx(user=world.officer)
    with pytest.raises(ValidationFailed) as err:
        referrals.transition(officer, referral, "declined", reason_code="because-i-said-so")
    assert "reason_code" in err.value.fields
    referrals.transition(officer, referral, "declined", reason_code="income_insufficient")
    assert referral.decline_reason == "income_insufficient"


def test_conflict_resolution_needs_a_written_reason(world):
    first = factories.submit(world.partner_a)
    second = factories.submit(world.partner_b, national_id=referrals.pii.decrypt(
        first.national_id_enc))
    assert second.status == "conflict"
    with pytest.raises(ValidationFailed):
        referrals.transition(Ctx(user=world.manager), second, "submitted", note="  ")
    referrals.transition(Ctx(user=world.manager), second, "submitted",
                         note="Buyer chose Partner B's showroom; confirmed by phone")
    assert second.status == "submitted"


def test_stale_version_is_refused(world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    seen = referral.version
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    with pytest.raises(StateConflict):
        referrals.transition(Ctx(user=world.officer), referral, "approved", expected_version=seen)
    assert db.session.scalar(select(func.count(ReferralEvent.id))) == 2


def test_a_held_submission_leaves_only_through_the_review(world):
    referral = factories.submit(world.partner_a)
    referral.status, referral.clock = State.held.value, "bank"
    db.session.commit()
    for to in ("submitted", "conflict", "refused"):
        with pytest.raises(StateConflict):
            referrals.transition(Ctx(user=world.manager), referral, to, note="looks fine")
        db.session.rollback()
    assert referral.status == "held"
