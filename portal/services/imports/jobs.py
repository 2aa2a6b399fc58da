"""Import jobs: a file, its kind, and the job's progress, kept in `ImportBatch`.

A job is queued with the file already on disk; a worker takes it with a lease (so two workers
never run one job, and a worker that died lets it go when the lease runs out), checks the whole
file (`reading.scan`), then works through it in batches. Each batch is its own unit of work
(the runner's, `portal/import_runner.py`): its rows, its rejected rows and the job's counters and
position commit together, so the progress seen is what is written and a restarted job resumes
after its last committed batch. A cancel is asked for here and honoured by the runner at its
next batch. Everything here flushes; the runner commits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update

from models import ImportBatch, ImportReject, Organization, User, utcnow
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_date
from ...extensions import db
from .. import Ctx, audit, branches, jobqueue
from ..errors import StateConflict
from ..scoring import staleness
from . import history, loans, reading
from .outcome import BatchOutcome

KINDS = {"referrals": (history.REFERRAL_COLUMNS, history.REFERRAL_OPTIONAL),
         "loans": (loans.LOAN_COLUMNS, ())}
# Rows per batch at most: enough that a batch's few statements are worth it. A batch holds
# SQLite's write lock while it runs, so the runner sizes batches to take about BATCH_SECONDS:
# rows that go one by one (a buyer met again) are slower than the set-based ones.
BATCH_ROWS = 500
BATCH_SECONDS = 1.0
MIN_BATCH_ROWS = 10
LEASE = timedelta(minutes=2)
ACTIVE = ("queued", "running")


def create(ctx: Ctx, kind: str, path: str, filename: str | None, *, owns_file: bool,
           recompute: bool, hold: bool = False) -> ImportBatch:
    """Queue an import of the file at `path` (already on disk). Flushes; the worker starts the
    job once this commits. `hold`: the caller runs it itself (the CLI) and holds its lease from
    the start, so no worker takes it."""
    now = utcnow()
    job = ImportBatch(kind=kind, filename=(filename or "")[:200] or None, path=str(path),
                      owns_file=owns_file, recompute=recompute,
                      status="running" if hold else "queued",
                      lease_until=now + LEASE if hold else None, started_at=now if hold else None,
                      user_id=ctx.user.id if ctx.user else None)
    db.session.add(job)
    db.session.flush()
    audit.record(ctx, f"import.{kind}.queued", job, filename=job.filename)
    if not hold:
        jobqueue.after_commit("import", job.id)
    return job


def claim(job_id: int, now: datetime | None = None) -> ImportBatch | None:
    """Take the job's lease if it is waiting or its lease has run out; None if another worker
    holds it or it has ended."""
    now = now or utcnow()
    taken = db.session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == job_id, ImportBatch.status.in_(ACTIVE),
               or_(ImportBatch.lease_until.is_(None), ImportBatch.lease_until < now))
        .values(lease_until=now + LEASE, status="running",
                started_at=func.coalesce(ImportBatch.started_at, now))
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        return None
    return db.session.get(ImportBatch, job_id, populate_existing=True)


def release(job_id: int) -> None:
    db.session.execute(update(ImportBatch).where(ImportBatch.id == job_id)
                       .values(lease_until=None).execution_options(synchronize_session=False))


def due_ids(now: datetime | None = None, limit: int = 10) -> list[int]:
    """Jobs waiting for a worker (or whose worker stopped holding them), oldest first."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(ImportBatch.id)
        .where(ImportBatch.status.in_(ACTIVE),
               or_(ImportBatch.lease_until.is_(None), ImportBatch.lease_until < now))
        .order_by(ImportBatch.id).limit(limit)))


def ctx_of(job: ImportBatch) -> Ctx:
    """Who the job acts for: whoever started it (the system from the command line)."""
    user = db.session.get(User, job.user_id) if job.user_id else None
    return Ctx(user=user, ip="import")


def scan(kind: str, source) -> tuple[reading.Scan | None, str | None]:
    """Check a whole file of `kind` (no transaction needed): (its scan, None) or (None, why it
    is refused)."""
    required, optional = KINDS[kind]
    try:
        return reading.scan(source, required, optional), None
    except reading.Malformed as exc:
        return None, str(exc)[:500]


def record_scan(job: ImportBatch, result: reading.Scan | None, malformed: str | None) -> bool:
    """The file's check on the job: its total rows (True), or the job refused (False)."""
    if result is None:
        finish(job, "refused", malformed=malformed)
        return False
    job.total_rows, job.sha256 = result.total_rows, result.sha256
    db.session.flush()
    return True


def check_file(job: ImportBatch, source) -> bool:
    """`scan` and `record_scan` in one go (an import run whole in one unit of work)."""
    return record_scan(job, *scan(job.kind, source))


def rows(kind: str, source, after_line: int = 1,
         after_offset: int = 0) -> Iterator[tuple[int, int, dict]]:
    required, optional = KINDS[kind]
    return reading.rows(source, required, optional, after_line=after_line,
                        after_offset=after_offset)


def next_batch_size(size: int, seconds: float) -> int:
    """The next batch's rows, from how long this one took: about BATCH_SECONDS each, growing
    at most twofold, between MIN_BATCH_ROWS and BATCH_ROWS."""
    wanted = int(size * BATCH_SECONDS / max(seconds, 0.001))
    return max(min(MIN_BATCH_ROWS, BATCH_ROWS), min(wanted, 2 * size, BATCH_ROWS))


def _orgs(job: ImportBatch) -> dict[str, Organization]:
    """The partners a job may write for: those of its starter's branch subtree (all for the
    province and the CLI). A code outside it reads as unknown, exactly like a code that does
    not exist, so a branch's import learns nothing of another branch's partners."""
    starter = db.session.get(User, job.user_id) if job.user_id else None
    return {o.code: o for o in db.session.scalars(
        select(Organization).where(Organization.is_partner,
                                   branches.in_scope(starter, Organization.id)))}


def apply_batch(job: ImportBatch, batch: list[tuple[int, int, dict]],
                now: datetime | None = None) -> BatchOutcome:
    """Write one batch and move the job's counters and position past it. Flushes."""
    now = now or utcnow()
    rows_ = [(line, raw) for line, _offset, raw in batch]
    out = BatchOutcome()
    if job.kind == "referrals":
        history.write_batch(job.id, rows_, _orgs(job), now, out)
    else:
        loans.write_batch(rows_, _orgs(job), bank_date(now), out)
        for org_id in out.org_ids:
            staleness.mark_stale(org_id)
    if out.rejects:
        db.session.execute(insert(ImportReject), [
            {"batch_id": job.id, "line": line, "reason": reason}
            for line, reason in sorted(out.rejects)])
    job.created += out.created
    job.updated += out.updated
    job.skipped += out.skipped
    job.rejected += len(out.rejects)
    job.rows_done += len(batch)
    job.last_line, job.last_offset = batch[-1][0], batch[-1][1]
    job.lease_until = utcnow() + LEASE if job.lease_until is not None else None
    db.session.flush()
    return out


def finish(job: ImportBatch, status: str, *, malformed: str | None = None,
           error: str | None = None) -> None:
    """End the job (done, refused, cancelled or failed) and record it in the audit log."""
    job.status, job.malformed, job.error = status, malformed, (error or None) and error[:500]
    job.finished_at, job.lease_until = utcnow(), None
    job.rows = job.rows_done
    if job.total_rows is None and status == "refused":
        job.total_rows = 0
    db.session.flush()
    audit.record(ctx_of(job), f"import.{job.kind}", job, status=status, summary=summary(job))


def summary(job: ImportBatch) -> str:
    if job.malformed:
        return f"refused: {job.malformed}"
    return (f"{job.rows_done} rows: {job.created} created, {job.updated} updated, "
            f"{job.skipped} skipped, {job.rejected} rejected")


def cancel(ctx: Ctx, job: ImportBatch) -> None:
    """Ask for the job to stop: the runner ends it at its next batch, keeping what is committed."""
    if job.finished:
        raise StateConflict(_l("This import has already ended."))
    job.cancel_requested = True
    db.session.flush()
    audit.record(ctx, "import.cancel", job)


def progress(job: ImportBatch) -> dict:
    """What the job page polls."""
    return {"id": job.id, "status": job.status, "finished": job.finished,
            "cancel_requested": job.cancel_requested, "total_rows": job.total_rows,
            "rows_done": job.rows_done, "created": job.created, "updated": job.updated,
            "skipped": job.skipped, "rejected": job.rejected,
            "percent": (round(100 * job.rows_done / job.total_rows)
                        if job.total_rows else (100 if job.finished else 0)),
            "malformed": job.malformed, "error": job.error}


def rejects(job: ImportBatch):
    """The job's rejected rows, by line (a query the page paginates)."""
    return (select(ImportReject).where(ImportReject.batch_id == job.id)
            .order_by(ImportReject.line, ImportReject.id))


def rejects_csv(job: ImportBatch) -> Iterator[str]:
    """All the job's rejected rows as CSV (line, reason), streamed a thousand at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["line", "reason"])
    for reject in db.session.scalars(rejects(job).execution_options(yield_per=1000)):
        writer.writerow([reject.line, _spreadsheet_safe(reject.reason)])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _spreadsheet_safe(text: str) -> str:
    # A reason quotes the file's own values: one starting with = + - @ would be a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
