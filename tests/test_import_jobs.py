"""Imports as background jobs: a 20,000-row history through the admin page while the real
worker (`flask --app wsgi worker`, a process of its own on the same database) runs it, with the
progress polled, pages and the API answering meanwhile, the rejected rows downloaded, a re-run
that skips everything, and a cancel. Also: a job stopped mid-way resumes after its last
committed batch; batches meet each other's rows; RQ runs the job; imported history in the queue.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from models import AuditEntry, ImportBatch, LoanPerformance, Referral, utcnow
from portal import import_runner
from portal.extensions import db
from portal.services import Ctx, imports
from portal.services.imports import jobs
from portal.unit_of_work import unit_of_work
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key
from tests.test_webhooks import redis_url  # noqa: F401  (a Redis of the test's own)

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = Ctx(user=None, ip="test")
HEADER = ("org_code,external_ref,product,buyer_name,national_id,mobile,industry,monthly_income,"
          "amount,term_months,submitted_at,status_history")
HISTORIES = ["", "under_review@{d}T10:00:00+08:00",
             "under_review@{d}T10:00:00+08:00|declined@{d}T16:00:00+08:00",
             "under_review@{d}T10:00:00+08:00|approved@{d}T11:00:00+08:00|contract_signed@{d}"
             "T12:00:00+08:00|disbursed@{d}T16:00:00+08:00"]


def history(n: int, prefix: str, bad=frozenset(), born_from=date(1970, 1, 1)) -> bytes:
    """n history rows of PARTNERA, each a different buyer; rows in `bad` name no partner."""
    lines = [HEADER]
    start = date(2026, 1, 5)
    for i in range(n):
        d = (start + timedelta(days=i * 300 // n)).isoformat()
        born = (born_from + timedelta(days=i // 1000)).strftime("%Y%m%d")
        org = "NOSUCH" if i in bad else "PARTNERA"
        lines.append(f"{org},{prefix}-{i},consumer_loan,买家{i},"
                     f"{factories.national_id(i % 1000, born=born)},139{i:08d},government,"
                     f"20000,50000,24,{d}T09:00:00+08:00,{HISTORIES[i % 4].format(d=d)}")
    return ("\n".join(lines) + "\n").encode()


def count(*where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Referral).where(*where))


@pytest.fixture
def worker_process(app):
    """`flask --app wsgi worker` on the suite's database, polling it (no Redis)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(PORTAL_ENV="testing", SECRET_KEY=app.config["SECRET_KEY"],
               DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               UPLOAD_DIR=app.config["UPLOAD_DIR"], PDF_CACHE_DIR=app.config["PDF_CACHE_DIR"],
               WORKER_POLL_SECONDS="0.2")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _upload(client, data: bytes, name: str) -> int:
    response = client.post("/admin/imports", data={
        "kind": "referrals", "file": (io.BytesIO(data), name), "recompute": ""},
        content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _follow(client, job_id, worker, *, while_waiting=None, until=None, limit=900):
    """Poll the job's progress as the page's script does; [progress, ...] until it ends."""
    seen = []
    deadline = time.monotonic() + limit
    while True:
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
        answer = client.get(f"/admin/imports/{job_id}/progress")
        assert answer.status_code == 200, answer.status_code
        progress = answer.get_json()
        seen.append(progress)
        if progress["finished"] or (until is not None and until(progress)):
            return seen
        if while_waiting is not None:
            while_waiting()
        assert time.monotonic() < deadline, f"import job {job_id} did not end: {progress}"
        time.sleep(0.3)


def test_a_20000_row_history_import_through_the_admin_page_while_the_worker_runs(
        app, world, worker_process):
    n, bad = 20_000, set(range(7, 20_000, 997))
    admin = app.test_client()
    login(admin, world.admin)
    officer = app.test_client()
    login(officer, world.officer)
    key = make_key(world.partner_a)
    answered = []

    def pages_and_api_answer():
        answered.append((officer.get("/bank/queue").status_code,
                         officer.get("/api/v1/referrals", headers=auth(key)).status_code))

    data = history(n, "H", bad)
    job_id = _upload(admin, data, "history.csv")
    page = admin.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    assert f'data-progress-url="/admin/imports/{job_id}/progress"' in page
    assert 'src="/static/imports.js?v=' in page and "<script>" not in page
    seen = _follow(admin, job_id, worker_process, while_waiting=pages_and_api_answer)

    done = [p["rows_done"] for p in seen]
    assert done == sorted(done)  # progress only moves forward ...
    assert any(0 < p["rows_done"] < n for p in seen)  # ... batch by batch, as it commits
    assert any(0 < p["rejected"] for p in seen if not p["finished"])
    final = seen[-1]
    assert final["status"] == "done", final
    assert (final["total_rows"], final["rows_done"]) == (n, n)
    assert (final["created"], final["skipped"], final["rejected"]) == (n - len(bad), 0, len(bad))
    assert final["percent"] == 100
    assert answered and set(answered) == {(200, 200)}  # never "database is locked"
    assert count(Referral.import_batch_id == job_id) == n - len(bad)
    assert count(Referral.status == "disbursed") == sum(  # the histories ending disbursed
        1 for i in range(n) if i % 4 == 3 and i not in bad)

    download = admin.get(f"/admin/imports/{job_id}/rejects.csv")
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert download.headers["Content-Disposition"].startswith("attachment")
    rejected = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert rejected[0] == ["line", "reason"]
    assert [int(line) for line, _reason in rejected[1:]] == sorted(i + 2 for i in bad)
    assert all("Unknown partner organisation code NOSUCH" in r for _l, r in rejected[1:])
    page = admin.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    assert f"{n} rows: {n - len(bad)} created, 0 updated, 0 skipped" in page
    assert not any(Path(app.config["UPLOAD_DIR"], "imports").glob("*.csv"))  # copy removed

    # The same file again: everything that went in is skipped, nothing is written twice.
    again = _upload(admin, data, "history.csv")
    final = _follow(admin, again, worker_process)[-1]
    assert (final["created"], final["skipped"], final["rejected"]) == (0, n - len(bad), len(bad))
    assert count() == n - len(bad)

    # Another file, cancelled once it is under way: it stops, and keeps what it committed.
    other = _upload(admin, history(n, "C", born_from=date(1980, 1, 1)), "other.csv")
    _follow(admin, other, worker_process, until=lambda p: p["rows_done"] > 0)
    cancel_page = admin.get(f"/admin/imports/{other}").get_data(as_text=True)
    assert 'data-confirm="Stop this import?' in cancel_page
    assert admin.post(f"/admin/imports/{other}/cancel").status_code == 302
    final = _follow(admin, other, worker_process)[-1]
    assert final["status"] == "cancelled" and final["created"] < n
    assert count(Referral.import_batch_id == other) == final["created"]
    assert admin.post(f"/admin/imports/{other}/cancel").status_code == 302  # refused: ended
    job = db.session.get(ImportBatch, other)
    assert job.status == "cancelled" and job.finished_at is not None


def test_a_job_stopped_mid_batch_resumes_after_its_last_committed_batch(app, world, monkeypatch,
                                                                       tmp_path):
    monkeypatch.setattr(jobs, "BATCH_ROWS", 3)
    path = tmp_path / "history.csv"
    path.write_bytes(history(10, "R", bad={4}))
    with unit_of_work():
        job_id = jobs.create(Ctx(user=world.admin), "referrals", str(path), "history.csv",
                             owns_file=False, recompute=False).id
    calls = []
    real = jobs.apply_batch

    def dies_in_the_third_batch(job, batch, now=None):
        calls.append(len(batch))
        outcome = real(job, batch, now)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the worker process killed mid-batch
        return outcome
    monkeypatch.setattr(jobs, "apply_batch", dies_in_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        import_runner.run(job_id)
    job = db.session.get(ImportBatch, job_id, populate_existing=True)
    assert (job.status, job.rows_done, job.last_line) == ("running", 6, 7)
    assert count() == 5  # two batches, one row rejected; the third batch rolled back
    assert import_runner.run(job_id) is False  # the dead worker's lease still holds it
    job.lease_until = utcnow() - timedelta(seconds=1)  # ... until it runs out
    db.session.commit()
    monkeypatch.setattr(jobs, "apply_batch", real)
    assert import_runner.run(job_id) is False
    job = db.session.get(ImportBatch, job_id, populate_existing=True)
    assert (job.status, job.rows_done, job.created, job.rejected) == ("done", 10, 9, 1)
    assert count() == 9
    report = imports.report_of(job)
    assert [line for line, _ in report.rejects] == [6]


def test_rows_meet_rows_of_earlier_batches(world, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH_ROWS", 2)
    buyer = factories.national_id(77)
    data = (HEADER + "\n" + "\n".join([
        f"PARTNERA,B-1,consumer_loan,王芳,{buyer},13900000001,government,20000,50000,24,"
        "2026-03-01T09:00:00+08:00,under_review@2026-03-02T10:00:00+08:00|approved@"
        "2026-03-03T10:00:00+08:00|contract_signed@2026-03-04T10:00:00+08:00|disbursed@"
        "2026-03-05T10:00:00+08:00",
        f"PARTNERA,B-2,consumer_loan,李雷,{factories.national_id(78)},13900000002,government,"
        "20000,50000,24,2026-03-01T09:00:00+08:00,",
        # Another partner's referral of the same buyer and product, in the next batch: the
        # one-by-one path finds the earlier batch's holder, so the history must say conflict.
        f"PARTNERB,B-3,consumer_loan,王芳,{buyer},13900000001,government,20000,50000,24,"
        "2026-03-10T09:00:00+08:00,",
        f"PARTNERA,B-1,consumer_loan,王芳,{buyer},13900000001,government,20000,50000,24,"
        "2026-03-01T09:00:00+08:00,",
    ]) + "\n").encode()
    report = imports.import_referrals(SYSTEM, data)
    reasons = dict(report.rejects)
    assert report.created == 2, report.rejects
    assert "must start in conflict" in reasons[4]
    assert "repeats an earlier line" in reasons[5]
    loans = (b"org_code,external_ref,as_of,outstanding,days_past_due,status\n"
             b"PARTNERA,B-1,2026-04-05,49000,0,current\n"
             b"PARTNERA,B-1,2026-04-20,48500,0,current\n"
             b"PARTNERA,B-1,2026-05-05,48000,31,delinquent\n"
             b"PARTNERA,B-1,2026-04-05,49000,0,current\n")
    report = imports.import_loans(SYSTEM, loans)
    assert (report.created, report.skipped) == (3, 1), report.rejects
    flags = {s.as_of.isoformat(): (s.is_latest, s.month_latest)
             for s in db.session.scalars(select(LoanPerformance))}
    assert flags == {"2026-04-05": (False, False), "2026-04-20": (False, True),
                     "2026-05-05": (True, True)}


def test_on_redis_the_job_runs_on_rq(app, world, monkeypatch, tmp_path,
                                     redis_url):  # noqa: F811 (the fixture)
    from portal import worker

    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    path = tmp_path / "history.csv"
    path.write_bytes(history(30, "Q"))
    job_id = jobs.create(Ctx(user=world.admin), "referrals", str(path), "history.csv",
                         owns_file=False, recompute=False).id
    queue = worker.jobqueue.queue(worker.jobqueue.redis_connection(redis_url))
    assert queue.count == 0
    db.session.commit()  # queued once the job is committed
    assert queue.count == 1
    worker.run_rq(burst=True)
    job = db.session.get(ImportBatch, job_id, populate_existing=True)
    assert (job.status, job.created) == ("done", 30)


def test_closed_imported_history_stays_out_of_the_queue_and_open_is_marked(world, as_user):
    live = factories.submit(world.partner_a)
    data = history(4, "Q")  # submitted, under_review (open); declined, disbursed (closed)
    report = imports.import_referrals(SYSTEM, data)
    assert report.created == 4
    db.session.commit()
    ids = {r.external_ref: r.id for r in db.session.scalars(
        select(Referral).where(Referral.import_batch_id == report.batch_id))}
    html = as_user(world.officer).get("/bank/queue?per_page=100").get_data(as_text=True)
    rows = {int(chunk.split('"', 1)[0]): chunk
            for chunk in html.split('data-referral-id="')[1:]}
    assert set(rows) == {live.id, ids["Q-0"], ids["Q-1"]}  # Q-2 declined, Q-3 disbursed
    assert 'data-testid="imported"' in rows[ids["Q-0"]].split("</tr>")[0]
    assert 'data-testid="imported"' in rows[ids["Q-1"]].split("</tr>")[0]
    assert 'data-testid="imported"' not in rows[live.id].split("</tr>")[0]
    # The audit log says each came in with its history, not that someone moved it here.
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.action == "referral.import", AuditEntry.target_id == str(ids["Q-3"])))
    assert entry.detail["history"] == ["submitted", "under_review", "approved",
                                       "contract_signed", "disbursed"]
    assert entry.detail["job"] == report.batch_id


def test_batches_are_sized_to_hold_the_write_lock_about_a_second():
    # Rows that go one by one are slower: the batch shrinks, then grows back when it can.
    assert jobs.next_batch_size(500, 10.0) == 50
    assert jobs.next_batch_size(50, 0.1) == 100
    assert jobs.next_batch_size(400, 0.01) == jobs.BATCH_ROWS
    assert jobs.next_batch_size(20, 60.0) == jobs.MIN_BATCH_ROWS


def test_the_job_page_follows_the_import_in_a_browser(page, world, tmp_path):
    import re

    from tests.test_browser import log_in

    db.session.commit()
    log_in(page, world.admin)
    path = tmp_path / "history.csv"
    path.write_bytes(history(30, "W", bad={3}))
    page.goto("/admin/imports")
    page.set_input_files("input[name=file]", str(path))
    page.click("[data-testid=import-form] button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/imports/\d+$"))
    assert page.text_content("[data-field=status]") == "Queued"
    job_id = int(page.url.rsplit("/", 1)[1])
    import_runner.run(job_id)  # the worker's turn; the page's script sees it end and reloads
    page.wait_for_selector("[data-testid=summary]")
    assert "30 rows: 29 created, 0 updated, 0 skipped" in page.text_content(
        "[data-testid=summary]")
    assert page.text_content("[data-testid=rejects] tbody td") == "5"
    assert page.locator("[data-testid=rejects-csv]").count() == 1

    # A cancel asks first; dismissed, nothing happens.
    path.write_bytes(history(30, "X", born_from=date(1985, 1, 1)))
    page.goto("/admin/imports")
    page.set_input_files("input[name=file]", str(path))
    page.click("[data-testid=import-form] button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/imports/\d+$"))
    other = int(page.url.rsplit("/", 1)[1])
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("text=Cancel the import")
    assert not db.session.get(ImportBatch, other, populate_existing=True).cancel_requested
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel the import")
    page.wait_for_selector("text=cancel requested")
    import_runner.run(other)
    page.wait_for_selector("[data-testid=summary]")
    assert page.text_content("[data-field=status]") == "Cancelled"
    assert count(Referral.import_batch_id == other) == 0


def _estimated_rows(table: str) -> float:
    return db.session.scalar(text(
        "SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table})


def _import_history(world, tmp_path, rows: int, prefix: str) -> None:
    """A history import of `rows` referrals run to its end by the job runner."""
    path = tmp_path / "history.csv"
    path.write_bytes(history(rows, prefix))
    with unit_of_work():
        job_id = jobs.create(Ctx(user=world.admin), "referrals", str(path), "history.csv",
                             owns_file=False, recompute=False).id
    assert import_runner.run(job_id) is False
    db.session.rollback()


def test_a_long_import_keeps_the_postgresql_statistics_of_the_tables_it_fills(
        app, world, monkeypatch, tmp_path):
    # With no statistics (auto-analyse off or behind), PostgreSQL read the whole referral table
    # for each batch's buyer lookup: a million-row import wrote 247,207 rows in 15 minutes.
    if db.engine.dialect.name != "postgresql":
        assert import_runner._Statistics("referrals").tables == ()  # SQLite plans without them
        return
    monkeypatch.setattr(jobs, "BATCH_ROWS", 5)
    monkeypatch.setattr(import_runner, "ANALYSE_EVERY_ROWS", 12)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE referral")
        conn.exec_driver_sql("ANALYZE referral_event")
    assert _estimated_rows("referral") == 0  # the tests' tables are empty between tests
    _import_history(world, tmp_path, 30, "S")
    # Analysed after 15 and after 30 rows (each time at least 12 more): the last count is all.
    assert _estimated_rows("referral") == 30
    assert _estimated_rows("referral_event") > 0


def _tally_storage():
    return db.session.execute(text(
        "SELECT relfilenode, reloptions, relpages FROM pg_class "
        "WHERE oid = CAST('referral_tally' AS regclass)")).one()


def test_a_history_import_ends_with_its_referral_tally_compacted(app, world, tmp_path):
    """Every imported referral updates the tally; on PostgreSQL the import's end rewrites it
    compact (migration 0023 leaves half of each page for updates), and its counts still agree
    with counting the referrals."""
    from tests.test_referral_tally import assert_agrees

    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        before, options, _pages = _tally_storage()
        assert "fillfactor=50" in (options or [])
        db.session.rollback()
    _import_history(world, tmp_path, 30, "T")
    if postgres:
        after, _options, pages = _tally_storage()
        assert after != before  # written anew
        db.session.rollback()
    assert_agrees()
