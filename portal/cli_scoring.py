"""CLI of the scorecards (CONTRACT.md): `referrals import`, `loans import`, `scores recompute`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .extensions import db
from .services import Ctx


def _echo_report(report) -> None:
    if report.malformed:
        click.echo(f"Refused the whole file, nothing was written: {report.malformed}", err=True)
        return
    click.echo(f"{report.rows} rows: {report.created} created, {report.updated} updated, "
               f"{report.skipped} skipped (already imported), {report.rejected} rejected.")
    for line, reason in report.rejects:
        click.echo(f"  line {line}: {reason}")


def _group(app: Flask, name: str, help_text: str) -> AppGroup:
    """The app's command group `name`, created unless another module made it already."""
    group = app.cli.commands.get(name)
    if group is None:
        group = AppGroup(name, help=help_text)
        app.cli.add_command(group)
    return group


def register(app: Flask) -> None:
    from .services import imports, scoring

    system = Ctx(user=None, ip="cli")

    def run_import(kind: str, path: str, recompute: bool) -> None:
        data = Path(path).read_bytes()
        fn = imports.import_referrals if kind == "referrals" else imports.import_loans
        report = fn(system, data, filename=Path(path).name)
        db.session.commit()  # the report (ImportBatch) is kept even for a refused file
        _echo_report(report)
        if recompute and report.org_ids:
            result = scoring.recompute_stale()
            db.session.commit()
            if result is not None:
                click.echo(f"Scorecards recomputed for {result.orgs} partner(s) in "
                           f"{result.seconds:.1f} s.")
        if report.malformed:
            raise SystemExit(1)

    referrals_group = _group(app, "referrals", "Referrals.")

    @referrals_group.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--no-recompute", is_flag=True, help="Leave the scorecards to `scores "
                                                       "recompute --stale`.")
    def referrals_import(path, no_recompute):
        """Import historical referrals with their status history (CSV, see CONTRACT.md)."""
        run_import("referrals", path, not no_recompute)

    loans_group = _group(app, "loans", "Loan performance.")

    @loans_group.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--no-recompute", is_flag=True)
    def loans_import(path, no_recompute):
        """Import loan performance statements (CSV, see CONTRACT.md)."""
        run_import("loans", path, not no_recompute)

    scores_group = _group(app, "scores", "Partner scorecards.")

    @scores_group.command("recompute")
    @click.option("--stale", is_flag=True, help="Only partners whose referrals changed since.")
    @click.option("--org", "org_code", default=None, help="Only this partner (code).")
    def scores_recompute(stale, org_code):
        """Recompute the scorecards (all partners, 12 months and the rolling 90 days)."""
        if org_code:
            from sqlalchemy import select

            from models import Organization

            org = db.session.scalar(select(Organization).where(
                Organization.code == org_code.strip().upper()))
            if org is None:
                raise click.ClickException(f"No organisation with code {org_code}.")
            result = scoring.recompute_org(org.id)
        elif stale:
            result = scoring.recompute_stale()
        else:
            result = scoring.recompute_all()
        db.session.commit()
        if result is None:
            click.echo("No partner has changed since the last computation.")
            return
        scope = "all partners" if result.full else f"{result.orgs} partner(s)"
        click.echo(f"Recomputed {scope}: {result.snapshots} snapshots in {result.seconds:.1f} s.")
