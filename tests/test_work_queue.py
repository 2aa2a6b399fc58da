"""The officers' work queue tells the truth: its order is the wait it shows, on the bank's clock;
officers take referrals (one wins a race), the queue colours what is late, sorts by whitelisted
columns, and keeps each officer's saved filters to that officer."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from flask import get_flashed_messages
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from models import AuditEntry, Referral, SavedQueueFilter, User, utcnow
from portal import config
from portal.config import ConfigError
from portal.extensions import db
from portal.services import Ctx, assignment, documents, imports, lifecycle, queue, referrals
from portal.services.errors import StateConflict
from tests import factories, test_imports, test_migrations
from tests.conftest import login
from tests.integration_helpers import auth, make_key
from tests.test_concurrency import run_together
from tests.test_migrations import _fill_every_table

H = timedelta(hours=1)
old_app = test_migrations.old_app  # the fixture: a SQLite database to upgrade


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _rows(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'data-testid="queue-row" data-referral-id="(\d+)"', html)]


def _ages(html: str) -> dict[int, str]:
    return {int(i): age for i, age in re.findall(
        r'data-referral-id="(\d+)">.*?data-testid="bank-age">([^<]+)<', html, re.S)}


def _levels(html: str) -> dict[int, str]:
    return {int(i): level for i, level in re.findall(
        r'data-referral-id="(\d+)">.*?data-sla="(\w+)"', html, re.S)}


def _returned(partner, officer, *, submitted, asked, back):
    """A referral on the bank's clock from `submitted` to `asked`, on the partner's until
    `back`, and on the bank's again since: its since-date says `back`, its wait says more."""
    now = utcnow()
    referral = factories.submit(partner, at=now - submitted)
    documents.request_documents(Ctx(user=officer), referral, ["income_proof"], "Payslips",
                                at=now - asked)
    referrals.transition(Ctx(user=officer), referral, "under_review", at=now - back)
    return referral


def _audits(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- the order is the wait -------------------------------------------------------------------

def test_queue_order_is_the_displayed_wait_when_since_dates_disagree(world, as_user):
    now = utcnow()
    # As in the finding: #46 in its status since longer, #53 waiting longer on the bank.
    fresh_since_long_wait = _returned(world.partner_a, world.officer,
                                      submitted=60 * H, asked=20 * H, back=5 * H)  # 45 h
    old_since = factories.submit(world.partner_b, at=now - 12 * H)                   # 12 h
    short_first_wait = _returned(world.partner_a, world.officer,
                                 submitted=100 * H, asked=99 * H, back=10 * H)     # 11 h
    newest = factories.submit(world.partner_a, at=now - 3 * H)                       # 3 h
    db.session.commit()
    by_since = sorted([fresh_since_long_wait, old_since, short_first_wait, newest],
                      key=lambda r: r.status_changed_at)
    assert [r.id for r in by_since] == [old_since.id, short_first_wait.id,
                                        fresh_since_long_wait.id, newest.id]

    html = as_user(world.officer).get("/bank/queue").get_data(as_text=True)

    expected = [fresh_since_long_wait.id, old_since.id, short_first_wait.id, newest.id]
    assert _rows(html) == expected
    ages = _ages(html)
    assert [ages[i] for i in expected] == ["45.0 h", "12.0 h", "11.0 h", "3.0 h"]
    # The referral page shows the same wait as the queue row.
    for referral_id in expected:
        page = as_user(world.officer).get(f"/bank/referrals/{referral_id}").get_data(as_text=True)
        shown = re.search(r'data-testid="bank-clock">([^<]+)<', page).group(1)
        assert shown == ages[referral_id]
    shortest_first = as_user(world.officer).get("/bank/queue?sort=wait&dir=asc")
    assert _rows(shortest_first.get_data(as_text=True)) == expected[::-1]


def test_the_stored_origin_follows_every_clock_change(world):
    referral = _returned(world.partner_a, world.officer, submitted=30 * H, asked=26 * H,
                         back=2 * H)
    referrals.transition(Ctx(user=world.officer), referral, "approved", note="ok")
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    assert stored.bank_clock_origin == stored.status_changed_at - timedelta(
        seconds=stored.bank_seconds)
    # 4 h before the request, then 2 h and the moment of approval since it came back.
    wait = utcnow() - stored.bank_clock_origin
    assert 6 * H <= wait < 6 * H + timedelta(minutes=1)
    assert referrals.bank_clock_seconds(stored, utcnow()) == int(wait.total_seconds())


def test_imported_history_gets_its_origin_on_both_import_paths(world):
    data = test_imports.csv_bytes(
        test_imports.row(ref="Q-1"),
        test_imports.row(ref="Q-2", history="documents_requested@2026-03-01T12:00:00+08:00"
                         "|under_review@2026-03-03T12:00:00+08:00"),
        test_imports.row(ref="Q-3", history=""))
    report = imports.import_referrals(Ctx(user=world.admin), data, "history.csv")
    assert report.created == 3, report.rejects
    # And through the one-by-one path: a buyer twice in one file.
    twice = factories.national_id(4242)
    more = imports.import_referrals(Ctx(user=world.admin), test_imports.csv_bytes(
        test_imports.row(ref="Q-4", nid=twice),
        test_imports.row(ref="Q-5", nid=twice, org="PARTNERB", history="")), "more.csv")
    assert more.created >= 1, more.rejects
    db.session.commit()
    db.session.expire_all()
    stored = db.session.scalars(select(Referral)).all()
    assert len(stored) == 3 + more.created
    for referral in stored:
        assert referral.bank_clock_origin == referral.status_changed_at - timedelta(
            seconds=referral.bank_seconds), referral.external_ref
    q2 = next(r for r in stored if r.external_ref == "Q-2")
    assert q2.bank_seconds == 3 * 3600  # 09:00 to 12:00 on 1 March, then back since 3 March


def test_the_queue_order_is_served_by_an_index(world):
    """Over a million referrals the first page must come off an index in order."""
    index = {ix.name: [c.name for c in ix.columns] for ix in Referral.__table__.indexes}
    assert index["ix_referral_bank_queue"] == ["clock", "bank_clock_origin", "status"]
    # The queue asks for "bank clock and not these" (see services/queue.py): the same set.
    bank_clock = {s.value for s, clock in lifecycle.CLOCK.items() if clock == "bank"}
    assert bank_clock - set(queue.NOT_QUEUED) == set(queue.QUEUE_STATES)
    dialect = db.engine.dialect.name
    query = queue.work_queue(world.officer, queue.ReferralFilters()).limit(25)
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
    plan = " ".join(str(row) for row in db.session.execute(db.text(explain + sql)))
    if dialect == "sqlite":
        # Only ties of the origin are sorted (by id), never the whole queue.
        assert "ix_referral_bank_queue" in plan, plan
        assert "TEMP B-TREE FOR ORDER BY" not in plan, plan


# --- SLA colours -----------------------------------------------------------------------------

def test_sla_levels_at_their_exact_limits(app):
    amber, red = queue.sla_thresholds()
    assert (amber, red) == (app.config["QUEUE_SLA_AMBER_HOURS"] * 3600,
                            app.config["QUEUE_SLA_RED_HOURS"] * 3600)
    assert [queue.sla_level(s) for s in (0, amber - 1, amber, red - 1, red, 10 * red)] == [
        "ok", "ok", "amber", "amber", "red", "red"]


def test_sla_colours_and_counts_with_known_ages(app, world, as_user, monkeypatch):
    monkeypatch.setitem(app.config, "QUEUE_SLA_AMBER_HOURS", 4)
    monkeypatch.setitem(app.config, "QUEUE_SLA_RED_HOURS", 8)
    now = utcnow()
    minute = timedelta(minutes=1)
    ok = factories.submit(world.partner_a, at=now - 4 * H + minute)
    amber = factories.submit(world.partner_a, at=now - 4 * H)
    late_amber = factories.submit(world.partner_b, at=now - 8 * H + minute)
    # Waited 9 h on the bank in all, though in review only since 1 h ago.
    red = _returned(world.partner_a, world.officer, submitted=20 * H, asked=12 * H, back=1 * H)
    db.session.commit()

    html = as_user(world.officer).get("/bank/queue").get_data(as_text=True)

    assert _levels(html) == {ok.id: "ok", amber.id: "amber", late_amber.id: "amber",
                             red.id: "red"}
    # Not by colour alone: the late rows say so in words.
    row = html[html.index(f'data-referral-id="{red.id}"'):]
    assert "Late" in row[:row.index("</tr>")]
    assert re.search(r'data-testid="sla-red">1<', html)
    assert re.search(r'data-testid="sla-amber">2<', html)
    counted = queue.sla_count(world.officer, queue.ReferralFilters(), now + 60 * minute)
    assert (counted.amber, counted.red) == (2, 2)  # an hour on, the last amber one is red
    # The same statement counts the page's whole queue ("in all"), on every page of it, and
    # under a view and a filter as the rows listed are.
    waiting = len(_levels(html))
    assert counted.waiting == waiting == 4
    officer = as_user(world.officer)

    def listed(path: str) -> tuple[int, str]:
        page = officer.get(path).get_data(as_text=True)
        found = re.search(r'data-testid="page-range">(\d+) in all<', page)
        return len(re.findall(r'data-testid="queue-row"', page)), found and found.group(1)

    assert listed("/bank/queue?per_page=3") == (3, str(waiting))
    assert listed("/bank/queue?per_page=3&page=2") == (1, str(waiting))
    for org in (world.org_a, world.org_b):
        rows, total = listed(f"/bank/queue?org={org.code}")
        assert rows and total == str(rows)
    assert listed("/bank/queue?view=mine")[0] == listed("/bank/queue?org=NOSUCHCODE")[0] == 0


def test_the_thresholds_are_checked_settings(monkeypatch):
    monkeypatch.setenv("QUEUE_SLA_AMBER_HOURS", "48")
    monkeypatch.setenv("QUEUE_SLA_RED_HOURS", "24")
    with pytest.raises(ConfigError, match="QUEUE_SLA_AMBER_HOURS"):
        config.load({"PORTAL_ENV": "testing"})
    monkeypatch.setenv("QUEUE_SLA_AMBER_HOURS", "many")
    with pytest.raises(ConfigError, match="QUEUE_SLA_AMBER_HOURS"):
        config.load({"PORTAL_ENV": "testing"})
    monkeypatch.setenv("QUEUE_SLA_AMBER_HOURS", "12")
    assert config.load({"PORTAL_ENV": "testing"})["QUEUE_SLA_AMBER_HOURS"] == 12


# --- sorting -------------------------------------------------------------------------------

def test_sortable_columns_and_a_whitelist(world, as_user):
    now = utcnow()
    small = factories.submit(world.partner_b, at=now - 2 * H, amount="500000")
    large = factories.submit(world.partner_a, at=now - 1 * H, amount="800000")
    reviewed = factories.submit(world.partner_a, at=now - 3 * H, amount="600000")
    referrals.transition(Ctx(user=world.officer), reviewed, "under_review")
    db.session.commit()
    client = as_user(world.officer)

    def rows(query):
        return _rows(client.get(f"/bank/queue?{query}").get_data(as_text=True))

    assert rows("sort=amount") == [large.id, reviewed.id, small.id]  # largest first
    assert rows("sort=amount&dir=asc") == [small.id, reviewed.id, large.id]
    assert rows("sort=submitted") == [reviewed.id, small.id, large.id]
    assert rows("sort=partner") == [reviewed.id, large.id, small.id]  # A (longest wait), B
    assert rows("sort=status&dir=desc")[0] == reviewed.id
    default = [reviewed.id, small.id, large.id]
    for attack in ("sort=id;DROP TABLE referral", "sort=buyer_name", "sort=__class__",
                   "sort=amount&dir=sideways", "sort="):
        response = client.get(f"/bank/queue?{attack}")
        assert response.status_code == 200
    assert rows("sort=buyer_name&dir=asc") == default
    assert rows("sort=amount&dir=sideways") == [large.id, reviewed.id, small.id]

    html = client.get("/bank/queue?sort=amount&dir=asc").get_data(as_text=True)
    sorted_headers = re.findall(r'aria-sort="(\w+)">\s*<a [^>]*data-testid="sort-(\w+)"', html)
    assert dict((k, v) for v, k in sorted_headers) == {
        "wait": "none", "status": "none", "submitted": "none", "partner": "none",
        "amount": "ascending"}
    # Clicking the sorted column again turns it round.
    amount_link = re.search(r'href="([^"]+)" data-testid="sort-amount"', html).group(1)
    assert "dir=desc" in amount_link


# --- assignment ----------------------------------------------------------------------------

def test_take_shows_in_mine_and_leaves_unassigned_and_is_audited(world, as_user):
    mine = factories.submit(world.partner_a)
    other = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    response = client.post(f"/bank/referrals/{mine.id}/take",
                           data={"next": "/bank/queue?view=unassigned"})

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/bank/queue?view=unassigned")
    assert _rows(client.get("/bank/queue?view=mine").get_data(as_text=True)) == [mine.id]
    assert _rows(client.get("/bank/queue?view=unassigned").get_data(as_text=True)) == [other.id]
    everything = client.get("/bank/queue").get_data(as_text=True)
    assert set(_rows(everything)) == {mine.id, other.id}
    assert world.officer.name in everything
    page = client.get(f"/bank/referrals/{mine.id}").get_data(as_text=True)
    assert f"{world.officer.name} is working on this referral" in page
    [entry] = _audits("referral.take")
    assert (entry.actor_id, entry.target_id) == (world.officer.id, str(mine.id))
    db.session.expire_all()
    assert db.session.get(Referral, mine.id).version == mine.version  # decisions not made stale


def test_a_second_taker_is_told_who_has_it(app, world):
    referral = factories.submit(world.partner_a)
    colleague = factories.UserFactory.bank("credit_officer", name="Officer Two")
    db.session.commit()
    first, second = app.test_client(), app.test_client()
    login(first, world.officer)
    login(second, colleague)
    first.environ_base["HTTP_ACCEPT_LANGUAGE"] = second.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

    assert first.post(f"/bank/referrals/{referral.id}/take").status_code == 302
    with second:
        refused = second.post(f"/bank/referrals/{referral.id}/take")
        flashed = get_flashed_messages()
    assert refused.status_code == 302
    assert flashed == [f"Referral #{referral.id} is already being worked on by "
                       f"{world.officer.name}."]
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id == world.officer.id
    assert len(_audits("referral.take")) == 1


def test_two_officers_taking_at_the_same_moment_one_wins(app, world):
    referral = factories.submit(world.partner_a)
    colleague = factories.UserFactory.bank("credit_officer")
    db.session.commit()
    both_read = threading.Barrier(2)

    def taker(user_id):
        def job():
            user = db.session.get(User, user_id)
            seen = db.session.get(Referral, referral.id)
            assert seen.assigned_to_id is None  # both see it free
            both_read.wait(timeout=30)
            assignment.take(Ctx(user=user), seen)
            return user_id
        return job

    results = run_together(app, [taker(world.officer.id), taker(colleague.id)])

    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, StateConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id == winners[0]
    holder = db.session.get(User, winners[0])
    assert holder.name in str(losers[0].message)
    assert len(_audits("referral.take")) == 1


def test_release_by_its_officer_and_not_by_a_colleague(app, world, as_user):
    referral = factories.submit(world.partner_a)
    colleague = factories.UserFactory.bank("credit_officer")
    assignment.take(Ctx(user=colleague), referral)
    db.session.commit()
    client = as_user(world.officer)

    client.post(f"/bank/referrals/{referral.id}/release")
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id == colleague.id
    assert not _audits("referral.release")

    other = app.test_client()
    login(other, colleague)
    assert other.post(f"/bank/referrals/{referral.id}/release").status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id is None
    assert len(_audits("referral.release")) == 1


def test_an_admin_hands_a_referral_on_and_only_to_an_officer(world, as_user):
    referral = factories.submit(world.partner_a)
    assignment.take(Ctx(user=world.admin), referral)
    db.session.commit()
    client = as_user(world.admin)
    page = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert 'data-testid="assign-form"' in page

    # A page that showed nobody (stale) does not override the admin's own take unseen.
    stale = client.post(f"/bank/referrals/{referral.id}/assign",
                        data={"officer": world.officer.id, "seen": ""})
    assert stale.status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id == world.admin.id
    for wrong in (world.partner_a.id, world.manager.id, 999999, "x"):
        client.post(f"/bank/referrals/{referral.id}/assign",
                    data={"officer": wrong, "seen": world.admin.id})
        db.session.expire_all()
        assert db.session.get(Referral, referral.id).assigned_to_id == world.admin.id

    client.post(f"/bank/referrals/{referral.id}/assign",
                data={"officer": world.officer.id, "seen": world.admin.id})

    db.session.expire_all()
    assert db.session.get(Referral, referral.id).assigned_to_id == world.officer.id
    [entry] = _audits("referral.assign")
    assert entry.detail == {"to": world.officer.id, "from": world.admin.id}


def test_only_a_referral_waiting_on_the_bank_can_be_taken(world):
    referral = factories.submit(world.partner_a)
    documents.request_documents(Ctx(user=world.officer), referral, ["income_proof"], "Payslips")
    with pytest.raises(StateConflict):
        assignment.take(Ctx(user=world.officer), referral)


def test_a_manager_sees_the_queue_but_takes_nothing(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.manager)
    html = client.get("/bank/queue").get_data(as_text=True)
    assert referral.id in _rows(html) and f"/bank/referrals/{referral.id}/take" not in html
    assert client.post(f"/bank/referrals/{referral.id}/take").status_code == 403


# --- saved filters -------------------------------------------------------------------------

def test_save_use_and_delete_a_named_filter(world, as_user):
    a = factories.submit(world.partner_a)
    factories.submit(world.partner_b)
    db.session.commit()
    client = as_user(world.officer)

    response = client.post(
        f"/bank/queue/filters?org={world.org_a.id}&sort=amount&dir=asc&status=declined"
        "&product=no_such_product&page=3&evil=1",
        data={"name": "  Partner   A  "})

    assert response.status_code == 302
    [saved] = db.session.scalars(select(SavedQueueFilter)).all()
    # Only known parameters with valid values are kept (declined is not a queue status).
    assert (saved.user_id, saved.name) == (world.officer.id, "Partner A")
    assert saved.params == {"org": str(world.org_a.id), "sort": "amount", "dir": "asc"}
    html = client.get("/bank/queue").get_data(as_text=True)
    link = re.search(r'data-testid="saved-filter" data-filter-id="\d+">\s*<a href="([^"]+)"',
                     html).group(1).replace("&amp;", "&")
    assert _rows(client.get(link).get_data(as_text=True)) == [a.id]
    assert 'data-confirm="Delete the saved filter “Partner A”?"' in html

    client.post(f"/bank/queue/filters/{saved.id}/delete")
    assert db.session.scalar(select(func.count()).select_from(SavedQueueFilter)) == 0


def test_saved_filters_are_checked(world, as_user):
    client = as_user(world.officer)
    client.post("/bank/queue/filters?view=mine", data={"name": "   "})
    client.post("/bank/queue/filters?view=mine", data={"name": "x" * 61})
    client.post("/bank/queue/filters", data={"name": "Nothing chosen"})
    assert db.session.scalar(select(func.count()).select_from(SavedQueueFilter)) == 0
    client.post("/bank/queue/filters?view=mine", data={"name": "Mine"})
    client.post("/bank/queue/filters?view=unassigned", data={"name": "Mine"})  # replaces
    [saved] = db.session.scalars(select(SavedQueueFilter)).all()
    assert saved.params == {"view": "unassigned"}


def test_another_officers_saved_filter_is_not_found(app, world, as_user):
    colleague = factories.UserFactory.bank("credit_officer")
    theirs = SavedQueueFilter(user_id=colleague.id, name="Theirs", params={"view": "mine"})
    db.session.add(theirs)
    db.session.commit()
    client = as_user(world.officer)

    assert client.post(f"/bank/queue/filters/{theirs.id}/delete").status_code == 404
    assert "Theirs" not in client.get("/bank/queue").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SavedQueueFilter)) == 1


# --- the migration -------------------------------------------------------------------------

def test_the_migration_computes_the_origin_of_existing_referrals(old_app):
    """Existing referrals get status_changed_at - bank_seconds, to the microsecond (SQLite's
    date functions drop the fraction: the migration puts it back)."""
    with old_app.app_context():
        upgrade(revision="0009")
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
            _fill_every_table(connection)
            connection.execute(text(
                "UPDATE referral SET status_changed_at = '2026-01-05 10:00:00.250000', "
                "bank_seconds = 90061"))
            connection.commit()
        upgrade()
        with db.engine.connect() as connection:
            origin = connection.execute(text("SELECT bank_clock_origin FROM referral")).scalar()
        db.engine.dispose()
    assert origin == "2026-01-04 08:58:59.250000"  # 1 d 1 h 1 min 1 s earlier


# --- the API -------------------------------------------------------------------------------

def test_the_api_names_the_officer_to_the_bank_only(app, world):
    referral = factories.submit(world.partner_a)
    assignment.take(Ctx(user=world.officer), referral)
    db.session.commit()
    client = app.test_client()
    bank = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(make_key(world.officer)))
    listed = client.get("/api/v1/referrals", headers=auth(make_key(world.manager)))
    partner = client.get(f"/api/v1/referrals/{referral.id}",
                         headers=auth(make_key(world.partner_a)))

    assert bank.json["assigned_to"] == {"id": world.officer.id, "name": world.officer.name}
    assert listed.json["items"][0]["assigned_to"]["id"] == world.officer.id
    assert partner.status_code == 200 and "assigned_to" not in partner.json
    assert world.officer.name not in partner.get_data(as_text=True)


def test_one_form_carries_every_rows_take(world, as_user):
    # A form per row re-rendered the CSRF field and the return address 25 times (issue 15):
    # each row's button names the one form and its own referral's address instead.
    first, second = factories.submit(world.partner_a), factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    html = client.get("/bank/queue").get_data(as_text=True)

    assert html.count(' id="take-form"') == 1
    buttons = re.findall(r'<button type="submit" form="([\w-]+)" '
                         r'formaction="/bank/referrals/(\d+)/take"', html)
    assert sorted(buttons) == sorted([("take-form", str(first.id)),
                                      ("take-form", str(second.id))])
    form = html.split(' id="take-form"', 1)[1].split("</form>", 1)[0]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))
    assert hidden["next"] == "/bank/queue" and "csrf_token" in hidden

    response = client.post(f"/bank/referrals/{second.id}/take", data=hidden)
    assert response.status_code == 302
    assert _rows(client.get("/bank/queue?view=mine").get_data(as_text=True)) == [second.id]
