"""Every list reads its page off an index: no full scan of a big table, no sort of every matching
row for the list's order (issue 15).

At a million referrals a `LIKE '%…%'`, a count of the whole table or an `ORDER BY` the index
cannot give reads everything on every view. Here each page and API list is requested through the
test client while a SQLAlchemy event listener on the real engine keeps the statements it runs;
each statement that reads a big table is then explained — EXPLAIN QUERY PLAN on SQLite, EXPLAIN
with sequential scans and sorts priced out on PostgreSQL (so that on a small test table the
planner shows the index it *can* use, as it would at a million rows).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from models import utcnow
from portal.extensions import db
from portal.services import Ctx, referrals, scoring
from portal.services.scoring import kept
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key

BIG = ("referral", "referral_event", "audit_entry")
_BIG = "|".join(BIG)
NATIONAL_ID = factories.national_id(7, born="19700101")
MOBILE = "13912345678"

# (who, path, whether the order may be a sort of the matching rows: a search's matches are
# found through their own index, then ordered — a bounded set, not the table).
CASES = [
    ("officer", "/bank/queue", False),
    ("officer", "/bank/queue?status=under_review", False),
    ("officer", "/bank/queue?org=PARTNERA", False),
    ("officer", "/bank/queue?page=2&per_page=2", False),
    ("officer", "/bank/referrals", False),
    ("officer", "/bank/referrals?page=3&per_page=2", False),
    ("officer", "/bank/referrals?org=PARTNERA", False),
    ("officer", "/bank/referrals?status=submitted", False),
    ("officer", "/bank/referrals?q=张", True),
    ("officer", "/bank/referrals?q=REF-00", True),
    ("officer", "/bank/referrals?q=Partner%20A", True),
    ("officer", "/bank/referrals?q=12", True),
    ("officer", f"/bank/referrals?q={NATIONAL_ID}", True),
    ("officer", f"/bank/referrals?q={MOBILE}", True),
    ("officer", "/bank/queue?q=张", True),
    ("partner_a", "/partner/", False),
    ("partner_a", "/partner/referrals", False),
    ("partner_a", "/partner/referrals?status=submitted", False),
    ("partner_a", "/partner/referrals?q=张", True),
    ("partner_a", f"/partner/referrals?q={MOBILE}", True),
    ("admin", "/admin/audit", False),
    ("admin", "/admin/audit?action=referral.submit", False),
    ("admin", "/admin/audit?target_type=referral", False),
    ("api:partner_a", "/api/v1/referrals", False),
    ("api:officer", "/api/v1/referrals", False),
    ("api:partner_a", "/api/v1/referrals?status=submitted", False),
    ("api:officer", "/api/v1/referrals?org_code=PARTNERB&status=submitted", False),
    ("api:partner_a", "/api/v1/referrals?external_ref=REF-001", False),
    ("admin", "/admin/", False),
    ("manager", "/bank/scorecards", False),
    ("manager", "/bank/scorecards?sort=name&q=partner", False),
]

# Counts that depend on nothing but the partner and the status are read from referral_tally
# (migration 0022): an index over a million referrals still reads a million entries to count.
TALLIED = [
    ("api:partner_a", "/api/v1/referrals"),
    ("api:officer", "/api/v1/referrals"),
    ("api:officer", "/api/v1/referrals?status=submitted"),
    ("api:officer", "/api/v1/referrals?org_code=PARTNERB&status=submitted"),
    ("partner_a", "/partner/"),
    ("admin", "/admin/"),
]


@pytest.fixture
def seeded(world, app):
    officer = Ctx(user=world.officer)
    start = utcnow() - timedelta(days=5)
    for i in range(12):
        user = world.partner_a if i % 4 else world.partner_b
        r = factories.submit(user, at=start + timedelta(hours=i), buyer_name="张伟" if i % 2
                             else "李娜", external_ref=f"REF-{i:03d}",
                             **({"national_id": NATIONAL_ID, "mobile": MOBILE} if i == 5 else {}))
        if i % 3 == 0:
            referrals.transition(officer, r, "under_review",
                                 at=start + timedelta(hours=i, minutes=9))
    scoring.recompute_all()
    db.session.commit()
    clients, keys = {}, {}
    for who in {c[0] for c in CASES}:
        role = who.removeprefix("api:")
        if who.startswith("api:"):
            keys[who] = make_key(getattr(world, role), "plans")
        else:
            clients[who] = app.test_client()
            login(clients[who], getattr(world, role))
    return clients, keys, app.test_client()


def statements_of(client, path, headers=None, tables: str = _BIG) -> list[tuple[str, object]]:
    """The SELECTs a request runs on the `tables` (a regular expression of their names)."""
    seen = []
    # What the cockpit keeps between views is read again: every statement of the page counts.
    kept.panels().clear()

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and re.search(
                rf"\b(FROM|JOIN)\s+({tables})\b", statement):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        response = client.get(path, headers=headers or {})
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    assert response.status_code == 200, (path, response.status_code)
    return seen


def plan(statement: str, parameters, *, nested_only: bool = False) -> list[str]:
    """The statement's plan, a line per step; `nested_only`: SQLite's steps inside its
    subqueries, not those of the outermost query."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_sort = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            conn.rollback()
            return [r[0].strip().lstrip("-> ").strip() for r in rows]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [r[-1] for r in rows if not nested_only or r[1] != 0]


def _page_by_ids(statement: str) -> bool:
    # A page by number (blueprints.paginate): the ids of its rows skipped to on the list's
    # index in a subquery, then those 26 rows joined and put in order.
    return bool(re.search(r"\.id IN \(SELECT \w+\.id\b.*LIMIT \S+ OFFSET", statement, re.S))


def problems(lines: list[str], may_sort: bool) -> list[str]:
    bad = []
    for line in lines:
        # SQLite: "SCAN referral" with no index is the whole table. PostgreSQL: a Seq Scan
        # even with sequential scans priced out means no index can answer.
        if re.match(rf"^SCAN ({_BIG})( AS \w+)?$", line) or re.match(
                rf"^Seq Scan on ({_BIG})\b", line):
            bad.append(line)
        # An Incremental Sort is not one: the index gives the order, it only breaks ties of
        # equal times by id, and stops with the page.
        if not may_sort and ("USE TEMP B-TREE FOR ORDER BY" in line
                             or re.match(r"^Sort\s+\(", line)):
            bad.append(line)
    return bad


def _is_order_of_few(statement: str) -> bool:
    # The rows of a known handful of parents (a page's referrals' events, stipulations): their
    # order is a sort of those few rows, whatever the table's size.
    return bool(re.search(r"\.(referral_id|id) IN \(", statement)) and "LIMIT" not in statement \
        or bool(re.search(r"referral_event\.referral_id IN \(", statement))


def test_each_list_reads_its_page_through_an_index(seeded):
    clients, keys, anonymous = seeded
    found = {}
    for who, path, may_sort in CASES:
        if who.startswith("api:"):
            statements = statements_of(anonymous, path, auth(keys[who]))
        else:
            statements = statements_of(clients[who], path)
        assert statements, f"{path} read no big table at all?"
        for statement, parameters in statements:
            lines = plan(statement, parameters)
            bad = problems(lines, may_sort or _is_order_of_few(statement))
            if bad and _page_by_ids(statement):
                # Only the page's own rows are sorted: the subquery must read in order.
                bad = (problems(plan(statement, parameters, nested_only=True), may_sort)
                       + problems(lines, True))
            if bad:
                found[f"{who} {path}: {statement[-160:]}"] = bad
    assert found == {}, "\n".join(f"{k!r}\n    {v}" for k, v in found.items())


def _counts_referrals(statement: str) -> bool:
    # A count whose outermost FROM is the referral table, or a subquery of it (a count of a
    # list's statement); not a count of another table narrowed by referral ids.
    head, _, rest = statement.partition("FROM")
    return bool(re.search(r"\bcount\(", head, re.I)) and bool(
        re.match(r"\s*(\(\s*SELECT\s.*?\s+FROM\s+)?referral\b", rest, re.S))


def test_totals_and_dashboard_counts_do_not_count_referrals(seeded):
    clients, keys, anonymous = seeded
    found = {}
    for who, path in TALLIED:
        if who.startswith("api:"):
            statements = statements_of(anonymous, path, auth(keys[who]))
        else:
            statements = statements_of(clients[who], path)
        counting = [s for s, _ in statements if _counts_referrals(s)]
        if counting:
            found[f"{who} {path}"] = counting
    assert found == {}, found


def test_a_search_finds_by_name_start_reference_id_mobile_and_partner(seeded):
    clients, _keys, _anonymous = seeded
    officer, partner = clients["officer"], clients["partner_a"]

    def rows(client, path):
        page = client.get(path).get_data(as_text=True)
        return re.findall(r'data-referral-id="(\d+)"', page)

    assert len(rows(officer, "/bank/referrals?q=张")) == 6
    assert len(rows(officer, "/bank/referrals?q=张伟")) == 6
    assert rows(officer, "/bank/referrals?q=伟") == []  # a name is found by its beginning
    assert len(rows(officer, "/bank/referrals?q=ref-00")) == 10  # case folded
    assert len(rows(officer, f"/bank/referrals?q={NATIONAL_ID}")) == 1
    assert len(rows(officer, f"/bank/referrals?q={MOBILE[:3]} {MOBILE[3:7]} {MOBILE[7:]}")) == 1
    assert len(rows(officer, "/bank/referrals?q=partnerb")) == 3  # by the partner's code
    assert len(rows(officer, "/bank/referrals?q=Partner B")) == 3  # by its name
    # A partner finds only its own: the ID of a buyer it referred, not another partner's row.
    theirs = rows(officer, "/bank/referrals?q=李娜")
    assert len(theirs) == 6
    assert len(rows(partner, "/partner/referrals?q=李娜")) == 3
    assert len(rows(partner, f"/partner/referrals?q={NATIONAL_ID}")) == 1
    assert rows(partner, "/partner/referrals?q=partnerb") == []


# The lists read by keyset past their numbered pages (blueprints.paginate(seek=True)): the
# cursor's page must be sought through the order's index too, going forward and back.
SOUGHT = [
    ("officer", "/bank/referrals?per_page=2"),
    ("officer", "/bank/referrals?per_page=2&org=PARTNERA"),
    ("officer", "/bank/referrals?per_page=2&status=submitted"),
    ("officer", "/bank/queue?per_page=2"),
    ("officer", "/bank/queue?per_page=2&org=PARTNERA"),
    ("partner_a", "/partner/referrals?per_page=2"),
    ("admin", "/admin/audit?per_page=2"),
    ("admin", "/admin/audit?per_page=2&action=referral.submit"),
]


def test_a_page_past_the_numbered_ones_is_sought_through_an_index(seeded, monkeypatch):
    import html

    import blueprints

    monkeypatch.setattr(blueprints, "NUMBERED_PAGES", 1)
    clients, _keys, _anonymous = seeded

    def link(client, url, label):
        body = client.get(url).get_data(as_text=True)
        found = re.search(rf'href="([^"]+)">{label}</a>', body)
        return html.unescape(found.group(1))

    found = {}
    for who, path in SOUGHT:
        client = clients[who]
        third = link(client, link(client, path, "Next"), "Next")
        back = link(client, third, "Previous")
        assert "after=" in third and "before=" in back, (third, back)
        for url in (third, back):
            for statement, parameters in statements_of(client, url):
                bad = problems(plan(statement, parameters), _is_order_of_few(statement))
                if bad:
                    found[f"{who} {url}: {statement[-200:]}"] = bad
    assert found == {}, "\n".join(f"{k!r}\n    {v}" for k, v in found.items())


def test_the_cockpit_reads_cards_and_reviews_through_their_indexes(seeded):
    """The cockpit's statements on the stored cards and the annual reviews (issue 15): each
    card table and review read is sought through an index, never scanned whole."""
    clients, _keys, _anonymous = seeded
    seen = [found for path in ("/bank/scorecards", "/bank/scorecards?tier=core&sort=approval_rate")
            for found in statements_of(clients["manager"], path,
                                       tables="scorecard_snapshot|annual_review")]
    assert any("annual_review" in s for s, _ in seen)
    found = {}
    for statement, parameters in seen:
        bad = [line for line in plan(statement, parameters)
               if re.match(r"^SCAN (scorecard_snapshot|annual_review)( AS \w+)?$", line)
               or re.match(r"^Seq Scan on (scorecard_snapshot|annual_review)\b", line)]
        if bad:
            found[statement[-200:]] = bad
    assert found == {}, found
