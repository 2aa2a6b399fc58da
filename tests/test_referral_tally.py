"""The referral tally (migration 0022): counts per partner and status kept by triggers, so that
whoever writes a referral — the services, a Core statement, an import, a delete — it agrees with
counting the referrals, and the pages and API totals read from it say what a count would."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, func, insert, or_, select, update

from models import Organization, Referral, ReferralTally
from portal.extensions import db
from portal.services import Ctx, admin_views, holds, imports, partner_views, referrals
from tests import factories
from tests.integration_helpers import auth, make_key
from tests.test_imports import csv_bytes, row

REFERRALS = Referral.__table__


def tally() -> dict[tuple[int, str], int]:
    return {(o, s): n for o, s, n in db.session.execute(
        select(ReferralTally.org_id, ReferralTally.status, ReferralTally.n)) if n}


def counted() -> dict[tuple[int, str], int]:
    return {(o, s): n for o, s, n in db.session.execute(
        select(Referral.org_id, Referral.status, func.count())
        .group_by(Referral.org_id, Referral.status))}


def assert_agrees() -> None:
    db.session.flush()
    assert tally() == counted()
    assert all(n >= 0 for n in db.session.scalars(select(ReferralTally.n)))


def core_copies(referral: Referral, spread: list[tuple[int, str]]) -> list[int]:
    """Rows inserted in one Core statement, as the set-based import and the bench seed do."""
    base = dict(db.session.execute(select(REFERRALS).where(REFERRALS.c.id == referral.id))
                .mappings().one())
    base.pop("id")
    rows = [{**base, "org_id": org_id, "status": status, "external_ref": f"CORE-{n}"}
            for n, (org_id, status) in enumerate(spread)]
    db.session.execute(insert(REFERRALS), rows)
    return list(db.session.scalars(select(REFERRALS.c.id).where(
        REFERRALS.c.external_ref.like("CORE-%"))))


def test_the_tally_follows_every_way_of_writing_a_referral(world):
    a1, a2, a3 = (factories.submit(world.partner_a) for _ in range(3))
    factories.submit(world.partner_b)
    assert_agrees()
    assert tally()[(world.org_a.id, "submitted")] == 3

    officer = Ctx(user=world.officer, ip="127.0.0.1")
    referrals.transition(officer, a1, "under_review")
    referrals.transition(officer, a1, "approved")
    referrals.transition(Ctx(user=world.partner_a), a2, "withdrawn")
    assert_agrees()

    a3.org_id = world.org_b.id  # a referral moved to another partner
    assert_agrees()
    a3.org_id, a3.status = world.org_a.id, "under_review"  # both at once
    assert_agrees()
    a3.buyer_name = "Renamed"  # neither column: the tally does not move
    assert_agrees()

    ids = core_copies(a1, [(world.org_a.id, "submitted"), (world.org_b.id, "declined"),
                           (world.org_b.id, "declined"), (world.org_a.id, "held")])
    assert len(ids) == 4
    assert_agrees()
    db.session.execute(update(Referral).where(Referral.id.in_(ids)).values(status="approved"))
    assert_agrees()
    db.session.execute(update(REFERRALS).where(REFERRALS.c.id == ids[0])
                       .values(org_id=world.org_b.id))
    assert_agrees()
    db.session.execute(delete(REFERRALS).where(REFERRALS.c.id.in_(ids[:3])))
    assert_agrees()
    db.session.commit()
    assert_agrees()

    db.session.execute(delete(REFERRALS).where(REFERRALS.c.id == ids[3]))
    db.session.rollback()  # written in the same transaction: undone with it
    assert_agrees()
    assert db.session.get(Referral, ids[3]) is not None


def test_an_import_is_counted(world):
    report = imports.import_referrals(Ctx(user=None, ip="test"), csv_bytes(
        row(ref="H-1"), row(ref="H-2", history=""),
        row(ref="H-3", history="under_review@2026-03-02T10:00:00+08:00"
            "|declined@2026-03-04T10:00:00+08:00"),
        row(org="PARTNERB", ref="H-1", history="")))
    assert report.created == 4, report.rejects
    assert_agrees()
    assert tally() == {(world.org_a.id, "approved"): 1, (world.org_a.id, "submitted"): 1,
                       (world.org_a.id, "declined"): 1, (world.org_b.id, "submitted"): 1}


@pytest.fixture
def spread(world):
    """Referrals of both partners in several states."""
    officer = Ctx(user=world.officer, ip="127.0.0.1")
    for n in range(5):
        referral = factories.submit(world.partner_a, external_ref=f"A-{n}")
        if n % 2:
            referrals.transition(officer, referral, "under_review")
        if n == 3:
            referrals.transition(officer, referral, "declined", reason_code="credit_policy")
    for n in range(3):
        referral = factories.submit(world.partner_b, external_ref=f"B-{n}")
        if n == 0:
            referrals.transition(officer, referral, "under_review")
    db.session.commit()
    assert_agrees()
    return world


@pytest.mark.parametrize("role", ["partner_a", "agent_a", "partner_b", "officer", "admin"])
def test_the_api_total_is_the_exact_count(spread, client, role):
    caller = getattr(spread, role)
    key = make_key(caller)
    visible = referrals.visible_referrals(caller)
    filters = [({}, []),
               ({"status": "submitted"}, [Referral.status == "submitted"]),
               ({"status": "under_review"}, [Referral.status == "under_review"]),
               ({"status": "approved"}, [Referral.status == "approved"]),
               ({"external_ref": "A-1"}, [Referral.external_ref == "A-1"]),
               ({"status": "under_review", "per_page": 1, "page": 2},
                [Referral.status == "under_review"])]
    if caller.is_bank:
        b = [Referral.org_id == spread.org_b.id]
        filters += [({"org_code": "partnerb"}, b),
                    ({"org_code": "PARTNERB", "status": "submitted"},
                     [*b, Referral.status == "submitted"]),
                    ({"org_code": "NOBODY"}, [False])]
    for params, where in filters:
        exact = db.session.scalar(select(func.count()).select_from(
            visible.where(*where).subquery()))
        response = client.get("/api/v1/referrals", query_string=params, headers=auth(key))
        assert response.status_code == 200, response.json
        assert response.json["total"] == exact, params
        per_page, page = params.get("per_page", 25), params.get("page", 1)
        assert len(response.json["items"]) == max(0, min(per_page, exact - (page - 1) * per_page))


def test_the_dashboards_show_the_counted_numbers(spread, as_user):
    page = as_user(spread.partner_a).get("/partner/").get_data(as_text=True)
    shown = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'data-count-for="(\w+)">\s*<div class="card-body">\s*<div class="kpi text-body">(\d+)',
        page)}
    assert shown == {"submitted": 3, "under_review": 1, "declined": 1}
    assert partner_views.status_counts(spread.org_a.id) == shown

    assert admin_views.dashboard(viewer=spread.admin)["referrals_by_status"] == dict(
        db.session.execute(select(Referral.status, func.count()).group_by(Referral.status)).all())


def test_the_held_badge_counts_as_before(spread):
    db.session.execute(update(Referral).where(Referral.external_ref.in_(["A-0", "B-1", "B-2"]))
                       .values(status="held"))
    for user in (spread.officer, spread.manager, spread.admin):
        query = select(func.count(Referral.id)).where(Referral.status == "held")
        if user.role != "admin":
            query = query.where(or_(
                Referral.org.has(Organization.channel_manager_id == user.id),
                Referral.org.has(Organization.channel_manager_id.is_(None))))
        assert holds.held_count(user) == db.session.scalar(query), user.role
    assert holds.held_count(spread.manager) == 3  # partner A is theirs, B has no manager
