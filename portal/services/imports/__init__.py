"""History imports (docs/contract.md): referrals with their status history, and loan performance.

Both read a UTF-8 CSV (or a gzip of one) with a header row, streamed, never held whole
(`reading`). The whole file is checked first: a file that is not UTF-8, has a wrong header, or a
line with the wrong number of fields is refused and nothing is written. Then the rows go in
batches (`history`, `loans`); each valid row is written, each bad one is rejected with its line
and reason; rows are keyed, so running the same file again skips what is already there.

From the admin page and the CLI an import is a job (`jobs`, run by `portal/import_runner.py`).
`import_referrals` and `import_loans` run the same batches on bytes in the caller's own unit of
work (demo data, tests), and give an `ImportReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import select

from models import ImportBatch, ImportReject

from ...extensions import db
from .. import Ctx
from ..import_rows import LOAN_STATUSES as LOAN_STATUSES
from . import jobs
from .history import INTAKE_COLUMNS, REFERRAL_COLUMNS, REFERRAL_OPTIONAL
from .loans import LOAN_COLUMNS
from .reading import Malformed, as_binary

__all__ = ["INTAKE_COLUMNS", "LOAN_COLUMNS", "LOAN_STATUSES", "REFERRAL_COLUMNS",
           "REFERRAL_OPTIONAL",
           "ImportReport", "Malformed", "batches", "import_loans", "import_referrals",
           "jobs", "report_of"]


@dataclass
class ImportReport:
    kind: str
    filename: str | None = None
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    malformed: str | None = None
    batch_id: int | None = None

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def summary(self) -> str:
        if self.malformed:
            return f"refused: {self.malformed}"
        return (f"{self.rows} rows: {self.created} created, {self.updated} updated, "
                f"{self.skipped} skipped, {self.rejected} rejected")


def batches(iterable, size: int):
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def report_of(job: ImportBatch) -> ImportReport:
    rejects = [(r.line, r.reason) for r in db.session.scalars(
        select(ImportReject).where(ImportReject.batch_id == job.id)
        .order_by(ImportReject.line, ImportReject.id))]
    return ImportReport(job.kind, job.filename, job.rows_done, job.created, job.updated,
                        job.skipped, rejects, job.malformed, job.id)


def _run_whole(ctx: Ctx, kind: str, data: bytes, filename: str | None,
               now: datetime | None) -> ImportReport:
    job = ImportBatch(kind=kind, filename=(filename or "")[:200] or None, status="running",
                      user_id=ctx.user.id if ctx.user else None)
    db.session.add(job)
    db.session.flush()
    if jobs.check_file(job, as_binary(data)):
        for batch in batches(jobs.rows(kind, as_binary(data)), jobs.BATCH_ROWS):
            jobs.apply_batch(job, batch, now)
        jobs.finish(job, "done")
    return report_of(job)


def import_referrals(ctx: Ctx, data: bytes, filename: str | None = None,
                     now: datetime | None = None) -> ImportReport:
    """Import referral history from bytes, in the caller's unit of work. Flushes."""
    return _run_whole(ctx, "referrals", data, filename, now)


def import_loans(ctx: Ctx, data: bytes, filename: str | None = None,
                 now: datetime | None = None) -> ImportReport:
    """Import loan statements from bytes, in the caller's unit of work. Flushes."""
    return _run_whole(ctx, "loans", data, filename, now)
