"""Concurrent requests on the real database: nothing lost, nothing duplicated, nothing half-written.

Each thread works in its own app context and session, as a request would, and commits.
"""

import threading

from sqlalchemy import func, select

from models import Referral, ReferralEvent, User
from portal.extensions import db
from portal.services import Ctx, referrals
from portal.services.errors import AlreadyRegistered, StateConflict
from tests import factories


def run_together(app, jobs):
    """Start every job at the same moment; return what each returned or raised."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        with app.app_context():
            barrier.wait()
            try:
                results[i] = job()
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 — the test inspects what each raised
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def submitter(user_id, **overrides):
    def job():
        user = db.session.get(User, user_id)
        result = referrals.submit(Ctx(user=user), user.org, factories.intake(**overrides))
        return result.referral.status
    return job


def count(model=Referral):
    db.session.expire_all()
    return db.session.scalar(select(func.count(model.id)))


def test_many_different_buyers_at_once_are_all_kept(app, world):
    jobs = [submitter(world.partner_a.id if i % 2 else world.partner_b.id,
                      national_id=factories.national_id(100 + i)) for i in range(8)]
    results = run_together(app, jobs)
    assert results == ["submitted"] * 8
    assert count() == 8


def test_same_buyer_from_one_partner_at_once_is_registered_once(app, world):
    nid = factories.national_id(200)
    results = run_together(app, [submitter(world.partner_a.id, national_id=nid) for _ in range(6)])
    assert results.count("submitted") == 1
    assert all(isinstance(r, AlreadyRegistered) for r in results if r != "submitted")
    assert count() == 1


def test_same_buyer_from_two_partners_at_once_gives_one_holder_and_one_conflict(app, world):
    nid = factories.national_id(300)
    results = run_together(app, [submitter(world.partner_a.id, national_id=nid),
                                 submitter(world.partner_b.id, national_id=nid)])
    assert sorted(results) == ["conflict", "submitted"]
    assert count() == 2


def test_two_officers_acting_on_one_referral_one_wins(app, world):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    referral_id, version = referral.id, referral.version
    second_officer = factories.UserFactory.bank("credit_officer")
    db.session.commit()

    def decide(officer_id, to, **kwargs):
        def job():
            officer = db.session.get(User, officer_id)
            target = db.session.get(Referral, referral_id)
            referrals.transition(Ctx(user=officer), target, to, expected_version=version,
                                 **kwargs)
            return to
        return job

    results = run_together(app, [decide(world.officer.id, "approved"),
                                 decide(second_officer.id, "declined",
                                        reason_code="credit_policy")])
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, StateConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    db.session.expire_all()
    stored = db.session.get(Referral, referral_id)
    assert stored.status == winners[0]
    events = db.session.scalars(select(ReferralEvent).where(
        ReferralEvent.referral_id == referral_id).order_by(ReferralEvent.id)).all()
    assert [e.to_state for e in events] == ["submitted", "under_review", winners[0]]


def test_guesses_sent_at_once_cannot_outrun_the_lock(app, world):
    # The attack (issue 10): 20 logins posted at once (19 wrong, 1 right) were all checked,
    # because the failure count was read, then written; the account never locked.
    from datetime import timedelta

    from models import utcnow
    from portal.services import accounts
    from tests.factories import PASSWORD

    user_id, email = world.partner_a.id, world.partner_a.email
    max_failures = app.config["LOGIN_MAX_FAILURES"]
    checked = []
    real_verify = accounts._verify

    def counting_verify(hashed, password):
        checked.append(password)
        return real_verify(hashed, password)

    def attempt(password):
        def job():  # through the real login page, which keeps a refused attempt's count
            return app.test_client().post("/login", data={"email": email,
                                                          "password": password}).status_code
        return job

    accounts._verify = counting_verify
    try:
        results = run_together(app, [attempt(f"wrong-guess-{i:02d}") for i in range(19)]
                               + [attempt(PASSWORD)])
    finally:
        accounts._verify = real_verify
    # Attempts queue on the account's row, so `checked` is in the order they were claimed. No
    # more than the budget of wrong guesses is ever checked in a row; a success (the right
    # password, checked in time) starts the count again, as for one person typing.
    assert set(results) <= {200, 302}, results
    if PASSWORD in checked:
        right = checked.index(PASSWORD)
        assert right < max_failures and len(checked) - right - 1 <= max_failures, checked
    else:
        assert len(checked) <= max_failures, checked
    db.session.expire_all()
    user = db.session.get(User, user_id)
    if results[-1] != 302:  # the right password came too late: locked
        assert user.locked_until is not None and user.locked_until > utcnow()
        assert user.locked_until <= utcnow() + timedelta(minutes=15)
