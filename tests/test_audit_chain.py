"""The tamper-evident audit trail (issue 11), tried as the people it stops would try it: a DBA who
edits or deletes rows (with the trigger out of the way), the application's own connection trying
UPDATE and DELETE, concurrent writers, and an export of the head that outlives a rewrite."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from models import AuditCheck, AuditEntry
from models.audit import GENESIS, entry_hash
from portal.extensions import db
from portal.services import Ctx, audit
from portal.services.audit import chain, checks
from portal.unit_of_work import unit_of_work

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _entries(n: int, world) -> None:
    for i in range(n):
        audit.record(Ctx(user=world.officer, ip="10.0.0.1"), "org.update", world.org_a,
                     changes={"name": [f"old {i}", f"new {i}"]})
        db.session.commit()


def _rows():
    return db.session.execute(select(AuditEntry.seq, AuditEntry.prev_hash, AuditEntry.hash,
                                     AuditEntry.id).order_by(AuditEntry.seq)).all()


@contextmanager
def _as_a_dba():
    """What a DBA can always do, on a connection of their own: take the append-only trigger
    away for a moment."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))
        try:
            with db.engine.begin() as conn:
                yield conn
        finally:
            with db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER USER"))
    else:
        raw = sqlite3.connect(db.engine.url.database, isolation_level=None)
        saved = [row[0] for row in raw.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entry'")]
        raw.execute("BEGIN IMMEDIATE")
        for name in ("audit_entry_no_update", "audit_entry_no_delete"):
            raw.execute(f"DROP TRIGGER {name}")
        try:
            yield _Raw(raw)
        finally:
            for sql in saved:
                raw.execute(sql)
            raw.execute("COMMIT")
            raw.close()
    db.session.expire_all()


class _Raw:
    """sqlite3 with the `conn.execute(text(...), params)` shape the tests use."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, statement, params=None):
        return _Result(self.raw.execute(str(statement), params or {}))


class _Result:
    def __init__(self, cursor):
        self.cursor = cursor

    def one(self):
        row = self.cursor.fetchone()
        return type("Row", (), {"seq": row[0], "hash": row[1]})


def test_entries_are_linked_in_order_and_verify_passes(world, cli):
    _entries(5, world)
    rows = _rows()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert chain.head() == (rows[-1].seq, rows[-1].hash)
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"Audit chain intact: {len(rows)} entries" in result.output


def test_a_refused_request_or_savepoint_leaves_no_gap(world, cli):
    _entries(2, world)
    audit.record(Ctx(user=None), "org.update", world.org_a)
    db.session.rollback()  # the whole unit of work refused
    with db.session.begin_nested() as savepoint:
        audit.record(Ctx(user=None), "org.update", world.org_a, kept=False)
        savepoint.rollback()
    audit.record(Ctx(user=None), "org.update", world.org_a, kept=True)
    db.session.commit()
    rows = _rows()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert db.session.scalar(select(func.count()).where(
        AuditEntry.detail.is_not(None), AuditEntry.action == "org.update")) == len(rows)
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entry SET actor_email = 'someone.else@bank.test'",
    "DELETE FROM audit_entry",
    "UPDATE audit_entry SET seq = NULL, hash = NULL",
])
def test_the_trigger_refuses_the_application_an_update_or_delete(world, statement):
    _entries(2, world)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_postgresql_refuses_truncate_too(world):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _entries(1, world)
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("TRUNCATE audit_entry"))
    db.session.rollback()


def test_an_edited_entry_is_named_by_verify(world, cli):
    _entries(6, world)
    victim = _rows()[3]
    with _as_a_dba() as conn:
        conn.execute(text("UPDATE audit_entry SET actor_email = 'nobody@bank.test' "
                          "WHERE id = :id"), {"id": victim.id})
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at entry #{victim.seq} (id {victim.id})" in result.output
    assert "was changed" in result.output


def test_an_edit_with_its_hash_recomputed_is_still_found(world, cli):
    _entries(6, world)
    victim = db.session.execute(select(AuditEntry.__table__).where(AuditEntry.seq == 3)
                                ).mappings().one()
    forged = {**victim, "actor_email": "nobody@bank.test"}
    with _as_a_dba() as conn:
        conn.execute(text("UPDATE audit_entry SET actor_email = :e, hash = :h WHERE id = :id"),
                     {"e": "nobody@bank.test", "h": entry_hash(forged, victim["prev_hash"]),
                      "id": victim["id"]})
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at entry #3" in result.output


def test_a_deleted_entry_is_named_by_verify(world, cli):
    _entries(6, world)
    victim = _rows()[2]
    with _as_a_dba() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE id = :id"), {"id": victim.id})
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at entry #{victim.seq}" in result.output
    assert "missing (deleted)" in result.output


def test_a_deleted_tail_is_found_by_the_head_and_a_rewritten_head_by_the_exported_anchor(
        world, cli, tmp_path):
    _entries(4, world)
    anchor_file = tmp_path / "anchor.json"
    assert cli.invoke(args=["audit", "anchor", "--out", str(anchor_file)]).exit_code == 0
    anchored = json.loads(anchor_file.read_text())
    _entries(2, world)
    assert cli.invoke(args=["audit", "verify", "--anchor", str(anchor_file)]).exit_code == 0
    last = _rows()[-1]
    with _as_a_dba() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": last.seq})
    result = cli.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and f"entry #{last.seq} at the end" in result.output
    # A thorough DBA removes everything after the anchored entry, and rewinds the head and the
    # stored anchors: only the copy kept elsewhere still knows.
    with _as_a_dba() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq >= :s"), {"s": anchored["seq"]})
        conn.execute(text("DELETE FROM audit_anchor"))
        before = conn.execute(text("SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1"
                                   )).one()
        conn.execute(text("UPDATE audit_chain_head SET seq = :s, hash = :h"),
                     {"s": before.seq, "h": before.hash})
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0
    result = cli.invoke(args=["audit", "verify", "--anchor", str(anchor_file)])
    assert result.exit_code == 1
    assert f"vouches for #{anchored['seq']}" in result.output


def test_an_unreadable_anchor_file_is_a_usage_error(world, cli, tmp_path):
    bad = tmp_path / "anchor.json"
    bad.write_text("{}")
    assert cli.invoke(args=["audit", "verify", "--anchor", str(bad)]).exit_code == 2


def test_concurrent_writers_cannot_fork_the_chain(app, world, cli):
    errors = []

    def writer(n):
        try:
            with app.app_context():
                for i in range(8):
                    with unit_of_work():
                        audit.record(Ctx(user=None, ip=f"10.0.1.{n}"), "org.update", None,
                                     writer=n, i=i)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = _rows()
    assert [r.seq for r in rows] == list(range(1, 49))
    assert len({r.prev_hash for r in rows}) == 48  # no two entries claim the same predecessor
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0


def test_every_action_the_code_records_is_offered_by_the_audit_filter():
    found = set()
    for path in [*(ROOT / "portal").rglob("*.py"), *(ROOT / "blueprints").rglob("*.py")]:
        found |= set(re.findall(r'audit\.record\([^,]+,\s*"([a-z_.]+)"', path.read_text()))
        found |= set(re.findall(r'record_(?:denied|refusal)\([^,()]+,\s*"([a-z_.]+)"',
                                path.read_text()))
    assert found and found <= set(audit.ACTIONS), found - set(audit.ACTIONS)


def test_housekeeping_checks_new_entries_and_stores_an_anchor(world, app):
    from portal.worker import records_housekeeping

    _entries(3, world)
    done = records_housekeeping()
    assert done["audit_full_check"] == "ok" and done["audit_anchor"] == 3
    _entries(2, world)
    done = records_housekeeping()
    assert done["audit_incremental_check"] == "ok"
    last = db.session.scalar(select(AuditCheck).order_by(AuditCheck.id.desc()).limit(1))
    assert (last.first_seq, last.last_seq) == (4, 6)  # the anchor's own entry is #4
    # Nothing new: no walk, no row.
    assert records_housekeeping() == {"denied_dropped": 0, "anonymised": 0}


def test_the_audit_page_shows_the_chain_state_from_the_last_check(world, as_user, cli):
    _entries(3, world)
    client = as_user(world.admin)
    assert 'data-state="unchecked"' in client.get("/admin/audit").get_data(as_text=True)
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0
    page = client.get("/admin/audit").get_data(as_text=True)
    assert 'data-state="ok"' in page and "verified up to entry #4" in page  # + the login
    with _as_a_dba() as conn:
        conn.execute(text("UPDATE audit_entry SET ip = '1.2.3.4' WHERE seq = 2"))
    assert 'data-state="ok"' in client.get("/admin/audit").get_data(as_text=True)  # no walk
    with unit_of_work():
        checks.routine()  # the full walk is not due yet: the incremental one finds nothing
    assert cli.invoke(args=["audit", "verify"]).exit_code == 1
    page = client.get("/admin/audit").get_data(as_text=True)
    assert 'data-state="broken"' in page and "broken at entry #2" in page


def test_a_bulk_load_is_linked_in_batches(world, cli):
    for i in range(7):
        audit.record(Ctx(user=None), "org.update", None, i=i)
    assert chain.seal(db.session, batch=3) == 7  # what the commit's hook does, 5000 at a time
    db.session.commit()
    assert [r.seq for r in _rows()] == list(range(1, 8))
    assert cli.invoke(args=["audit", "verify"]).exit_code == 0
