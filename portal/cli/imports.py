"""`flask --app wsgi referrals import` and `loans import` (CSV formats in docs/contract.md).

The import is a job like one started from the admin page, run here in the command's own process
(batch by batch, each committed with its progress), so the command ends when it is done and
prints what it did.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from models import ImportBatch

from .. import import_runner
from ..extensions import db
from ..services import imports, scoring
from ..unit_of_work import unit_of_work
from .common import SYSTEM

referrals_group = AppGroup("referrals", help="Referrals.")
loans_group = AppGroup("loans", help="Loan performance.")


def _echo_progress(progress: dict) -> None:
    total = progress["total_rows"]
    click.echo(f"  {progress['rows_done']:,}/{total:,} rows, {progress['rejected']:,} rejected"
               if total else f"  {progress['rows_done']:,} rows", err=True)


def _echo_report(job: ImportBatch) -> None:
    if job.malformed:
        click.echo(f"Refused the whole file, nothing was written: {job.malformed}", err=True)
        return
    if job.status != "done":
        click.echo(f"The import stopped ({job.status}){': ' + job.error if job.error else ''}. "
                   "Run the same file again to go on: what is done is skipped.", err=True)
    click.echo(f"{job.rows_done} rows: {job.created} created, {job.updated} updated, "
               f"{job.skipped} skipped (already imported), {job.rejected} rejected.")
    for reject in db.session.scalars(imports.jobs.rejects(job)
                                     .execution_options(yield_per=1000)):
        click.echo(f"  line {reject.line}: {reject.reason}")


def _run_import(kind: str, path: str, recompute: bool) -> None:
    with unit_of_work():
        job_id = imports.jobs.create(SYSTEM, kind, str(Path(path).resolve()), Path(path).name,
                                     owns_file=False, recompute=False, hold=True).id
    import_runner.run(job_id, echo=_echo_progress, held=True)
    with unit_of_work():  # only reads
        job = db.session.get(ImportBatch, job_id)
        _echo_report(job)
        changed, refused, ended = job.created or job.updated, bool(job.malformed), job.status
    # A unit of its own: the imported rows stay even if the recompute fails.
    if recompute and changed:
        with unit_of_work():
            result = scoring.recompute_stale()
        if result is not None:
            click.echo(f"Scorecards recomputed for {result.orgs} partner(s) in "
                       f"{result.seconds:.1f} s.")
    if refused or ended != "done":
        raise SystemExit(1)


@referrals_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-recompute", is_flag=True, help="Leave the scorecards to `scores "
                                                   "recompute --stale`.")
def referrals_import(path, no_recompute):
    """Import historical referrals with their status history (CSV or CSV.gz; docs/contract.md)."""
    _run_import("referrals", path, not no_recompute)


@loans_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-recompute", is_flag=True)
def loans_import(path, no_recompute):
    """Import loan performance statements (CSV or CSV.gz; docs/contract.md)."""
    _run_import("loans", path, not no_recompute)
