"""A list page costs the same number of statements for 5 rows as for 50 (issue 15).

A statement per row (a lazy load in a template, a form drawn per row that looks something up)
is what made pages slow down with their length. Each page and API list is read with 5 rows and
again with 50, the statements the real engine runs counted by a SQLAlchemy event listener; the
counts must be equal. The logged-in user comes with the session in one statement.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from models import Organization, Referral, utcnow
from portal.extensions import db
from portal.services import Ctx, referrals, scoring
from portal.services.scoring import kept
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key

PAGES = [
    ("officer", "/bank/queue?per_page=50"),
    ("officer", "/bank/referrals?per_page=50"),
    ("officer", "/bank/referrals?per_page=50&q=张"),
    ("officer", "/bank/referrals?per_page=50&org=PARTNERA"),
    ("partner_a", "/partner/"),
    ("partner_a", "/partner/referrals?per_page=50"),
    ("manager", "/bank/scorecards"),
    ("admin", "/admin/audit?per_page=50&action=referral.submit"),
]
API = [
    ("partner_a", "/api/v1/referrals?per_page=50"),
    ("officer", "/api/v1/referrals?per_page=50"),
    ("manager", "/api/v1/scorecards?per_page=50"),
]


@contextmanager
def counting():
    statements: list[str] = []

    def seen(_conn, _cursor, statement, _params, _context, _many):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def grow(world, size: int) -> None:
    """Partner A gets `size` referrals in all (a third under review, a third waiting for its
    documents), and there are `size` partners with scorecards."""
    officer = Ctx(user=world.officer)
    have = db.session.query(Referral).count()
    start = utcnow() - timedelta(days=20)
    for i in range(have, size):
        r = factories.submit(world.partner_a, at=start + timedelta(hours=i),
                             buyer_name="张" + "伟芳明" [i % 3], external_ref=f"REF-{i:04d}")
        later = start + timedelta(hours=i, minutes=5)
        if i % 3 == 0:
            referrals.transition(officer, r, "under_review", at=later)
        elif i % 3 == 1:
            referrals.transition(officer, r, "documents_requested", note="n",
                                 partner_note="payslips", at=later)
    partners = db.session.query(Organization).count() - 1  # not the bank
    for i in range(partners, size):
        factories.OrgFactory(code=f"P{i:03d}", name=f"Partner {i:03d}")
    db.session.flush()
    scoring.recompute_all()
    db.session.commit()


def statements_for(client, path: str, headers: dict | None = None) -> int:
    response = client.get(path, headers=headers or {})  # warm: session touch, caches
    # What the cockpit keeps between views is read again: every statement of the page counts.
    kept.panels().clear()
    assert response.status_code == 200, (path, response.status_code)
    with counting() as statements:
        response = client.get(path, headers=headers or {})
    assert response.status_code == 200, (path, response.status_code)
    return len(statements)


@pytest.fixture
def people(world, app):
    clients = {}
    for role in {who for who, _path in PAGES}:
        clients[role] = app.test_client()
        login(clients[role], getattr(world, role))
    keys = {role: make_key(getattr(world, role), f"{role} counts")
            for role in {who for who, _path in API}}
    return clients, keys


def test_list_pages_and_api_lists_cost_the_same_for_5_and_50_rows(world, people):
    clients, keys = people
    counts = {}
    for size in (5, 50):
        grow(world, size)
        for role, path in PAGES:
            counts[(size, path, role)] = statements_for(clients[role], path)
        for role, path in API:
            counts[(size, path, role)] = statements_for(clients[role], path, auth(keys[role]))
    grew = {f"{role} {path}": (counts[(5, path, role)], counts[(50, path, role)])
            for role, path in PAGES + API
            if counts[(50, path, role)] != counts[(5, path, role)]}
    assert grew == {}


def test_the_logged_in_user_comes_with_the_session(world, people):
    clients, _keys = people
    client = clients["officer"]
    client.get("/bank/queue")
    with counting() as statements:
        client.get("/bank/queue")
    user_reads = [s for s in statements if 'FROM "user"' in s or "FROM user " in s]
    session_reads = [s for s in statements if "user_session" in s]
    assert len(session_reads) == 1 and user_reads == [], statements
