"""`flask --app wsgi referrals import` and `loans import` (CSV formats in docs/contract.md)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from ..services import imports, scoring
from ..unit_of_work import unit_of_work
from .common import SYSTEM

referrals_group = AppGroup("referrals", help="Referrals.")
loans_group = AppGroup("loans", help="Loan performance.")


def _echo_report(report: imports.ImportReport) -> None:
    if report.malformed:
        click.echo(f"Refused the whole file, nothing was written: {report.malformed}", err=True)
        return
    click.echo(f"{report.rows} rows: {report.created} created, {report.updated} updated, "
               f"{report.skipped} skipped (already imported), {report.rejected} rejected.")
    for line, reason in report.rejects:
        click.echo(f"  line {line}: {reason}")


def _run_import(kind: str, path: str, recompute: bool) -> None:
    data = Path(path).read_bytes()
    import_file = imports.import_referrals if kind == "referrals" else imports.import_loans
    # The import and its report (ImportBatch) are one unit: a refused file writes no rows but
    # keeps its report, so the import service answers a refusal with the report, not by raising.
    with unit_of_work():
        report = import_file(SYSTEM, data, filename=Path(path).name)
    _echo_report(report)
    # A second unit: the imported rows stay even if the recompute fails.
    if recompute and report.org_ids:
        with unit_of_work():
            result = scoring.recompute_stale()
        if result is not None:
            click.echo(f"Scorecards recomputed for {result.orgs} partner(s) in "
                       f"{result.seconds:.1f} s.")
    if report.malformed:
        raise SystemExit(1)


@referrals_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-recompute", is_flag=True, help="Leave the scorecards to `scores "
                                                   "recompute --stale`.")
def referrals_import(path, no_recompute):
    """Import historical referrals with their status history (CSV, see docs/contract.md)."""
    _run_import("referrals", path, not no_recompute)


@loans_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--no-recompute", is_flag=True)
def loans_import(path, no_recompute):
    """Import loan performance statements (CSV, see docs/contract.md)."""
    _run_import("loans", path, not no_recompute)
