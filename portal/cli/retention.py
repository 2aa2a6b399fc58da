"""`flask --app wsgi retention run [--dry-run]` (docs/operations.md)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..services import retention
from ..unit_of_work import unit_of_work
from .common import SYSTEM, command_unit_of_work

retention_group = AppGroup("retention", help="Removing buyers' personal data after closing.")


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Only count the referrals that are due.")
@click.option("--batch", default=500, show_default=True, help="Referrals per transaction.")
def run(dry_run, batch):
    """Anonymise referrals closed more than RETENTION_YEARS ago (the worker does it daily)."""
    before = retention.cutoff()
    if before is None:
        click.echo("Retention is off (RETENTION_YEARS=0).")
        return
    if dry_run:
        with unit_of_work():  # only reads
            due = len(retention.due(limit=1_000_000))
        click.echo(f"{due} referrals closed before {before:%Y-%m-%d} would be anonymised.")
        return
    with command_unit_of_work():
        leads = retention.anonymise_leads(SYSTEM)
    total = 0
    while True:
        with command_unit_of_work():  # one audit entry and one commit per batch
            done = retention.anonymise_batch(SYSTEM, limit=batch)
        total += done
        if done < batch:
            break
    click.echo(f"Anonymised {total} referrals closed before {before:%Y-%m-%d} "
               f"(RETENTION_YEARS={current_app.config['RETENTION_YEARS']}).")
    if leads:
        click.echo(f"Anonymised {leads} customers the bank referred to partners, last moved "
                   f"before {before:%Y-%m-%d}.")
