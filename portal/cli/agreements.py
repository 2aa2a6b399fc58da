"""`flask --app wsgi agreements roll` (run it daily, e.g. from cron, shortly after midnight
Beijing time): accepted agreements whose effective day has come become active (superseding what
they renew), and agreements past their expiry expire."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from ..services import agreements
from .common import SYSTEM, command_unit_of_work

agreements_group = AppGroup("agreements", help="Cooperation agreements.")


@agreements_group.command("roll")
@click.option("--date", "on", default=None, help="Roll as of this day (YYYY-MM-DD).")
def agreements_roll(on):
    """Bring agreement statuses up to date with the calendar."""
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    with command_unit_of_work():
        counts = agreements.roll_statuses(SYSTEM, today=day)
    click.echo(f"Agreements activated: {counts['activated']}, expired: {counts['expired']}.")
