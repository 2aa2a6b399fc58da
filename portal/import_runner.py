"""Runs import jobs (`portal.services.imports.jobs`): in the worker, on RQ or the database
loop, and inline in the CLI.

This layer owns the transactions, like the worker: claiming the job, checking the file, and
each batch are units of work of their own, so every batch commits with its progress and a
page polling the job sees it move. On SQLite each unit holds the write lock for one batch only
(begun IMMEDIATE, see portal/__init__.py): pages and the API queue behind it for a moment
instead of failing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from models import ImportBatch

from .extensions import db
from .services import referral_counts, scoring
from .services.imports import jobs, reading
from .unit_of_work import unit_of_work

log = logging.getLogger(__name__)

# PostgreSQL plans an import's lookups (a buyer's earlier referrals, a loan's statements) from
# the tables' statistics. A long import outgrows them faster than auto-analyse may catch up
# (and a server may run without it: this machine kind does, and a million-row history import
# turned its lookups into whole-table scans: 247,207 rows in 15 minutes). So the import
# analyses the tables it fills each time it has added a tenth of them, and at least this many.
ANALYSE_EVERY_ROWS = 20_000
ANALYSED_TABLES = {"referrals": ("referral", "referral_event"), "loans": ("loan_performance",)}


class _Statistics:
    """The statistics of the tables one import fills, taken again as they grow (PostgreSQL)."""

    def __init__(self, kind: str):
        self.tables = ANALYSED_TABLES[kind] if db.engine.dialect.name == "postgresql" else ()
        self.written = 0
        self.known: int | None = None

    def _rows(self) -> int:
        return int(db.session.scalar(text(
            "SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
            {"t": self.tables[0]}) or 0)

    def grew(self, rows: int) -> None:
        if not self.tables:
            return
        self.written += rows
        if self.known is None:
            self.known = max(self._rows(), 0)  # -1: never analysed
        if self.written < max(ANALYSE_EVERY_ROWS, self.known // 10):
            return
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in self.tables:
                conn.exec_driver_sql(f"ANALYZE {table}")
        self.written, self.known = 0, max(self._rows(), 0)


def run(job_id: int, *, budget: float | None = None,
        echo: Callable[[dict], None] | None = None, held: bool = False) -> bool:
    """Work on job `job_id` for about `budget` seconds (None: to the end). True when work is
    left for another turn; False when the job has ended or someone else holds it. `held`: the
    caller created the job holding its lease (the CLI)."""
    with unit_of_work():
        job = jobs.claim(job_id) if not held else db.session.get(ImportBatch, job_id)
        if job is None:
            return False
        path = job.path
    try:
        more = _work(job_id, path, budget, echo)
    except OperationalError:
        # The database went away or stayed locked: let the job go; it resumes after its last
        # committed batch on a later turn.
        log.warning("import job %s paused by a database error", job_id, exc_info=True)
        db.session.rollback()
        _quietly(_release, job_id)
        return True
    except Exception as exc:  # noqa: BLE001 — the job records why it stopped; the worker goes on
        log.exception("import job %s failed", job_id)
        db.session.rollback()
        _quietly(_end, job_id, "failed", f"{type(exc).__name__}: {exc}")
        return False
    if not more:
        _after(job_id)
    return more


def _work(job_id: int, path: str, budget: float | None, echo) -> bool:
    started = time.monotonic()
    with unit_of_work():
        job = db.session.get(ImportBatch, job_id)
        if job.cancel_requested:
            jobs.finish(job, "cancelled")
            return False
        kind, checked = job.kind, job.total_rows is not None
        position = (job.last_line, job.last_offset)
    if not checked:
        # The whole file is read here with no transaction open: on SQLite that would hold the
        # write lock for the length of a read through a large file.
        with reading.open_binary(path) as source:
            result, malformed = jobs.scan(kind, source)
        with unit_of_work():
            if not jobs.record_scan(db.session.get(ImportBatch, job_id), result, malformed):
                return False
    with reading.open_binary(path) as source:
        rows = jobs.rows(kind, source, *position)
        size = jobs.BATCH_ROWS
        statistics = _Statistics(kind)
        while batch := list(islice(rows, size)):
            began = time.monotonic()
            with unit_of_work():
                job = db.session.get(ImportBatch, job_id, populate_existing=True)
                if job.cancel_requested:
                    jobs.finish(job, "cancelled")
                    return False
                if (job.last_line, job.last_offset) != position:
                    raise RuntimeError("another worker moved this job")
                outcome = jobs.apply_batch(job, batch)
                position = (job.last_line, job.last_offset)
                progress = jobs.progress(job)
            size = jobs.next_batch_size(size, time.monotonic() - began)
            statistics.grew(outcome.created)
            if echo is not None:
                echo(progress)
            # What the batch loaded is not kept: after the commit the session holds its objects
            # only weakly, so they go once nothing else refers to them. (Expunging them all would
            # also detach the objects of whoever runs the import in its own session.)
            if budget is not None and time.monotonic() - started > budget:
                with unit_of_work():
                    jobs.release(job_id)
                return True
    with unit_of_work():
        jobs.finish(db.session.get(ImportBatch, job_id), "done")
    return False


def _end(job_id: int, status: str, error: str) -> None:
    with unit_of_work():
        job = db.session.get(ImportBatch, job_id)
        if job is not None and not job.finished:
            jobs.finish(job, status, error=error)


def _after(job_id: int) -> None:
    """Once a job has ended: the uploaded copy goes (it holds buyers' data), a history import's
    referral tally is compacted, and the scorecards it touched are recomputed if it asked for
    that (each a unit of its own: the rows stay if either fails)."""
    with unit_of_work():
        job = db.session.get(ImportBatch, job_id)
        path, owns, recompute, kind = job.path, job.owns_file, job.recompute, job.kind
        changed = job.status in ("done", "cancelled") and (job.created or job.updated)
    if owns and path:
        _remove(path)
    if changed and kind == "referrals":
        try:
            with unit_of_work():
                referral_counts.compact()
        except Exception:  # noqa: BLE001 — a looser tally reads slower, not wrong
            log.exception("compacting the referral tally after import job %s failed", job_id)
    if recompute and changed:
        try:
            with unit_of_work():
                scoring.recompute_stale()
        except Exception:  # noqa: BLE001 — the housekeeping recomputes stale cards later
            log.exception("recompute after import job %s failed", job_id)


def _remove(path: str) -> None:
    upload_dir = Path(current_app.config["UPLOAD_DIR"]).resolve()
    target = Path(path).resolve()
    if upload_dir in target.parents:  # only a copy the portal made
        with contextlib.suppress(FileNotFoundError):
            os.remove(target)


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except Exception:  # noqa: BLE001 — the lease runs out by itself
        log.warning("could not record the state of import job %s", args[0], exc_info=True)


def _release(job_id: int) -> None:
    with unit_of_work():
        jobs.release(job_id)


def run_due(budget: float) -> bool:
    """One turn of the database worker: the oldest waiting job for about `budget` seconds.
    True when an import has more to do (the loop then comes back at once)."""
    with unit_of_work():  # only reads
        ids = jobs.due_ids(limit=1)
    return any(run(job_id, budget=budget) for job_id in ids)
