"""The cockpit keeps its ranking, roll-up, trend and filter choices between views until the
scores or the directory change (services/scoring/kept.py, migration 0024's stamp): a change
shows on the next view whoever wrote it, and one viewer's kept page never serves another's
branch."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select, text

from models import DirectoryStamp, Organization, User, utcnow
from portal.extensions import db
from portal.services import scoring
from tests import factories
from tests.conftest import login


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture
def carded(world):
    """Partner A in EAST and B in WEST, both with current cards."""
    east, west = factories.branch("EAST"), factories.branch("WEST")
    world.org_a.branch_id, world.org_b.branch_id = east.id, west.id
    world.east, world.west = east, west
    scoring.recompute_all()
    db.session.commit()
    return world


def codes(page: str) -> list[str]:
    return re.findall(r'data-testid="ranking-row" data-org-code="([A-Z0-9_]+)"', page)


def view(client, path="/bank/scorecards") -> tuple[str, list[str]]:
    """The page, and the statements it ran that read the partners' cards."""
    seen = []

    def keep(_conn, _cursor, statement, *_args):
        if re.search(r"\bFROM organization JOIN scorecard_snapshot\b", statement):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", keep)
    try:
        response = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", keep)
    assert response.status_code == 200
    return response.get_data(as_text=True), seen


def stamp() -> int:
    db.session.expire_all()
    return db.session.scalar(select(DirectoryStamp.stamp))


def test_a_second_view_reads_no_card_and_shows_the_same(carded, client):
    login(client, carded.manager)
    first, read = view(client)
    assert read and codes(first) == ["PARTNERA", "PARTNERB"]
    again, read_again = view(client)
    assert read_again == []
    assert codes(again) == codes(first) and "2 in all" in again
    # Another page of the ranking, other filters: read, then kept in their turn.
    assert view(client, "/bank/scorecards?branch=WEST")[1]
    assert view(client, "/bank/scorecards?branch=WEST")[1] == []


@pytest.mark.parametrize("change, shown", [
    ("renamed by the service's way (the ORM)", "Harbour Homes"),
    ("renamed by hand in SQL", "Harbour Homes"),
    ("moved to WEST", None),
    ("its branch renamed", "Eastern District"),
])
def test_a_directory_change_shows_on_the_next_view(carded, client, change, shown):
    login(client, carded.manager)
    page, _read = view(client, "/bank/scorecards?branch=WEST")
    assert codes(page) == ["PARTNERB"]
    page, _read = view(client)
    assert "Harbour Homes" not in page and "Eastern District" not in page
    org = db.session.get(Organization, carded.org_a.id)
    if change == "renamed by the service's way (the ORM)":
        org.name = "Harbour Homes"
    elif change == "renamed by hand in SQL":
        db.session.execute(text("UPDATE organization SET name = 'Harbour Homes' WHERE id = :id"),
                           {"id": org.id})
    elif change == "moved to WEST":
        org.branch_id = carded.west.id
    else:
        carded.east.name = "Eastern District"
    db.session.commit()
    page, read = view(client)
    assert read, "the change was not seen: the kept ranking was served"
    if shown:
        assert shown in page
    else:
        assert codes(view(client, "/bank/scorecards?branch=WEST")[0]) == [
            "PARTNERA", "PARTNERB"]


def test_the_manager_choices_follow_staff_changes(carded, client):
    login(client, carded.manager)
    assert "Wang Jun" not in view(client)[0]
    newcomer = factories.UserFactory.bank("channel_manager", name="Wang Jun",
                                          email="wang@bank.test")
    db.session.commit()
    assert "Wang Jun" in view(client)[0]
    db.session.get(User, newcomer.id).active = False
    db.session.commit()
    assert "Wang Jun" not in view(client)[0]


def test_new_cards_show_on_the_next_view(carded, client):
    login(client, carded.manager)
    page, _read = view(client)
    assert "Harbour" not in page
    factories.submit(carded.partner_a)
    db.session.commit()
    assert view(client)[1] == [], "a referral alone changes no card"
    scoring.recompute_stale()
    db.session.commit()
    page, read = view(client)
    assert read
    row = page.split('data-org-code="PARTNERA"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-testid="exchange"><a[^>]*>1 /', row)


def test_one_managers_kept_page_never_serves_another_branch(carded, app):
    """The province's manager looks first; a manager of WEST then gets WEST's partners only,
    not the province's page kept a moment before."""
    west_manager = factories.UserFactory.bank("channel_manager", email="m.west@bank.test",
                                              branch=carded.west)
    db.session.commit()
    province, west = app.test_client(), app.test_client()
    for client in (province, west):
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(province, carded.manager)
    login(west, west_manager)
    assert codes(view(province)[0]) == ["PARTNERA", "PARTNERB"]
    assert codes(view(west)[0]) == ["PARTNERB"]
    assert codes(view(province)[0]) == ["PARTNERA", "PARTNERB"]


def test_each_language_its_own_kept_page(carded, client):
    login(client, carded.manager)
    assert "Average composite" in view(client)[0]
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    page = view(client)[0]
    assert "Average composite" not in page and "平均综合分" in page


# --- the stamp's triggers ------------------------------------------------------------------------

def test_what_the_cockpit_reads_of_the_directory_restamps_it(carded):
    def restamped(write) -> bool:
        before = stamp()
        write()
        db.session.commit()
        return stamp() != before

    org = db.session.get(Organization, carded.org_a.id)
    manager = db.session.get(User, carded.manager.id)
    assert restamped(lambda: setattr(org, "name", "Renamed"))
    assert restamped(lambda: setattr(org, "status", "suspended"))
    assert restamped(lambda: setattr(org, "channel_manager_id", None))
    assert restamped(lambda: factories.OrgFactory(code="PARTNERC"))
    assert restamped(lambda: factories.branch("NORTH"))
    assert restamped(lambda: setattr(carded.east, "name", "East Side"))
    assert restamped(lambda: setattr(manager, "name", "Li Na"))
    assert restamped(lambda: setattr(manager, "branch_id", carded.east.id))
    assert restamped(lambda: setattr(manager, "active", False))
    assert restamped(lambda: db.session.delete(db.session.get(User, carded.agent_a.id)))
    # What the cockpit does not show leaves it: a login, a contact's phone, a referral.
    assert not restamped(lambda: setattr(manager, "last_login_at", utcnow()))
    assert not restamped(lambda: setattr(manager, "failed_logins", 3))
    assert not restamped(lambda: setattr(org, "contact_phone", "13800000000"))
    assert not restamped(lambda: factories.submit(carded.partner_b))


def test_a_change_rolled_back_leaves_the_stamp(carded):
    before = stamp()
    db.session.get(Organization, carded.org_a.id).name = "Never Kept"
    db.session.flush()
    db.session.rollback()
    assert stamp() == before


def test_the_stamp_changes_when_the_writer_commits(carded):
    """Until the writer commits, other readers see the old stamp. On PostgreSQL the trigger is
    deferred to the commit: the stamp's row is the last lock a writer takes, so it cannot close
    a cycle with the rows written before it."""
    before = stamp()
    with db.engine.connect() as writer:
        writer.execute(text("UPDATE organization SET name = 'Later' WHERE id = :id"),
                       {"id": carded.org_a.id})
        if writer.dialect.name == "postgresql":
            locked = writer.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = pg_backend_pid() AND c.relname = 'directory_stamp'")).scalar()
            assert locked == 0, "the stamp was written before the commit"
        assert stamp() == before
        db.session.rollback()
        writer.commit()
    assert stamp() != before


def test_a_process_keeps_a_bounded_number_of_pages_the_least_recently_read_go():
    from portal.services.scoring.kept import KeptPanels

    made = []

    def maker(key):
        return lambda: made.append(key) or key

    kept = KeptPanels(size=2)
    for key in ("a", "b", "a", "c", "a", "b"):
        assert kept.read((1,), key, maker(key)) == key
    # "a" read again before "c" came, so "b" went first; then "b" again.
    assert made == ["a", "b", "c", "b"]
    assert kept.read((2,), "a", maker("a")) == "a" and made[-1] == "a"  # a new basis
