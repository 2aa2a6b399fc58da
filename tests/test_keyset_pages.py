"""Keyset pages of the big lists (issue 15): past the numbered pages "Next" and "Previous" carry a
cursor, and walking the list by them shows every row once, in the list's order, with the
filters kept — through ties in the sort key, up to the last page and back."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

import blueprints
from models import AuditEntry, Referral, utcnow
from portal.extensions import db
from portal.services import Ctx, referrals
from tests import factories


@pytest.fixture(autouse=True)
def one_numbered_page(monkeypatch):
    # The real lists number 10 pages; here page 1 is numbered and every later one is sought.
    monkeypatch.setattr(blueprints, "NUMBERED_PAGES", 1)


@pytest.fixture
def listed(world):
    """15 referrals, most of them sharing a submission time with others (ties the id breaks),
    two amounts, three of them partner B's, some under review."""
    officer = Ctx(user=world.officer)
    start = utcnow() - timedelta(days=3)
    for i in range(15):
        user = world.partner_b if i % 5 == 0 else world.partner_a
        r = factories.submit(user, at=start + timedelta(hours=i // 4),
                             amount="500000" if i % 2 else "700000",
                             buyer_name="张伟" if i % 3 else "李娜")
        if i % 4 == 0:
            referrals.transition(officer, r, "under_review", at=start + timedelta(hours=5))
    db.session.commit()


ROW = {"referral": r'data-referral-id="(\d+)"', "audit": r'data-entry-id="(\d+)"'}


def _rows(body: str, kind: str) -> list[int]:
    return [int(x) for x in re.findall(ROW[kind], body)]


def _link(body: str, label: str) -> str | None:
    found = re.search(rf'<li class="page-item ([a-z]*)\s*">\s*<a class="page-link" '
                      rf'href="([^"]+)">{label}</a>', body)
    return None if found is None or found.group(1) == "disabled" else html.unescape(found.group(2))


def walk(client, path: str, kind: str = "referral") -> tuple[list[list[int]], list[str]]:
    """Every page from `path` by its Next links, then back by Previous: (pages, urls)."""
    pages, urls, url = [], [], path
    while url:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.get_data(as_text=True)
        pages.append(_rows(body, kind))
        urls.append(url)
        url = _link(body, "Next")
    last_body = client.get(urls[-1]).get_data(as_text=True)
    back, url = [], _link(last_body, "Previous")
    while url:
        body = client.get(url).get_data(as_text=True)
        back.append(_rows(body, kind))
        url = _link(body, "Previous")
    assert back[::-1] == pages[:-1], "Previous does not give back the pages Next gave"
    return pages, urls


def test_all_referrals_walked_by_cursor_is_the_whole_list_in_order(listed, world, as_user):
    client = as_user(world.officer)
    everything = _rows(client.get("/bank/referrals?per_page=100").get_data(as_text=True),
                       "referral")
    expected = [r.id for r in db.session.scalars(
        select(Referral).order_by(Referral.submitted_at.desc(), Referral.id.desc()))]
    assert everything == expected and len(expected) == 15

    pages, urls = walk(client, "/bank/referrals?per_page=4")
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    assert sum(pages, []) == expected
    assert all("after=" in u for u in urls[1:])  # past the numbered page: a cursor
    assert "page=4" in urls[-1]  # the number only says where the range line stands
    # The last page knows it is the last, and what the whole list holds.
    last = client.get(urls[-1]).get_data(as_text=True)
    assert "15 in all" in last
    # A cursor is a place in the order, not a row count: bookmarked, it shows the same rows.
    assert _rows(client.get(urls[2]).get_data(as_text=True), "referral") == pages[2]


def test_a_cursor_keeps_the_filters(listed, world, as_user):
    client = as_user(world.officer)
    pages, urls = walk(client, "/bank/referrals?per_page=2&org=PARTNERA&q=张")
    shown = sum(pages, [])
    theirs = db.session.scalars(select(Referral).where(Referral.id.in_(shown)))
    assert {(r.org.code, r.buyer_name) for r in theirs} == {("PARTNERA", "张伟")}
    assert len(shown) == len(set(shown)) == 8
    assert all("org=PARTNERA" in u and "q=" in u for u in urls[1:])


@pytest.mark.parametrize("order", ["", "&sort=amount&dir=desc", "&sort=submitted&dir=asc",
                                   "&sort=partner&dir=asc", "&sort=wait&dir=asc"])
def test_the_queue_in_each_order_walks_every_row_once(listed, world, as_user, order):
    client = as_user(world.officer)
    whole = _rows(client.get(f"/bank/queue?per_page=100{order}").get_data(as_text=True),
                  "referral")
    pages, urls = walk(client, f"/bank/queue?per_page=3{order}")
    assert sum(pages, []) == whole and len(whole) == 15
    assert all(order.lstrip("&") in u for u in urls)


def test_the_partner_list_walks_its_own_rows(listed, world, as_user):
    client = as_user(world.partner_a)
    pages, _urls = walk(client, "/partner/referrals?per_page=5")
    mine = [r.id for r in db.session.scalars(
        select(Referral).where(Referral.org_id == world.org_a.id)
        .order_by(Referral.submitted_at.desc(), Referral.id.desc()))]
    assert sum(pages, []) == mine and len(mine) == 12


def test_the_audit_log_walks_by_cursor_through_equal_times(listed, world, as_user):
    # Many entries of one instant (a batch job writes them so): the id orders them.
    same = utcnow() - timedelta(minutes=1)
    for _ in range(7):
        db.session.add(AuditEntry(action="referral.submit", target_type="referral",
                                  target_id="1", at=same, detail={}))
    db.session.commit()
    client = as_user(world.admin)
    expected = [e.id for e in db.session.scalars(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))]
    pages, urls = walk(client, "/admin/audit?per_page=6", kind="audit")
    assert sum(pages, []) == expected and len(expected) > 20
    assert all("after=" in u for u in urls[1:])


def test_a_damaged_or_foreign_cursor_is_ignored_not_misread(listed, world, as_user):
    client = as_user(world.officer)
    first = _rows(client.get("/bank/queue?per_page=3").get_data(as_text=True), "referral")
    url = _link(client.get("/bank/queue?per_page=3&page=2").get_data(as_text=True), "Next")
    cursor = re.search(r"after=([^&]+)", url).group(1)
    # The same cursor under another order (a header clicked with the link's query kept).
    response = client.get(f"/bank/queue?per_page=3&sort=amount&dir=desc&after={cursor}")
    assert response.status_code == 200
    for bad in ("x", "eyJ9", "A" * 500, cursor[:-3]):
        response = client.get(f"/bank/queue?per_page=3&after={bad}")
        assert response.status_code == 200
        assert _rows(response.get_data(as_text=True), "referral") == first


@pytest.mark.parametrize("path", ["/bank/referrals", "/bank/queue", "/admin/audit"])
def test_a_page_too_deep_to_skip_to_opens_the_list_at_its_start(world, listed, as_user,
                                                                   monkeypatch, path):
    # A bookmark of page 39,950 read a million rows by OFFSET (11 s on PostgreSQL): past the
    # limit the list opens at its first page, its filters kept, and says how to go on.
    monkeypatch.setattr(blueprints, "MAX_SKIPPED_ROWS", 6)
    client = as_user(world.admin if path == "/admin/audit" else world.officer)
    within = client.get(f"{path}?per_page=3&page=3")  # skips 6 rows: still by number
    assert within.status_code == 200

    deep = client.get(f"{path}?per_page=3&page=4&status=under_review")
    assert deep.status_code == 302
    assert deep.headers["Location"] == f"{path}?per_page=3&status=under_review"
    landed = client.get(deep.headers["Location"]).get_data(as_text=True)
    assert "Page 4 cannot be opened directly" in landed
    # With its cursor the same page number is read from where the last page ended.
    cursor = _link(client.get(f"{path}?per_page=3&page=3").get_data(as_text=True), "Next")
    assert client.get(cursor).status_code == 200
