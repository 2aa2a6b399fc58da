"""`flask --app wsgi demo seed` (development only; `make run` calls it on an empty database)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..services import demo
from .common import command_unit_of_work

demo_group = AppGroup("demo", help="Demonstration data (development only).")


@demo_group.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when users already exist.")
def demo_seed(if_empty):
    """Create the demo accounts, partners and a few months of referral history."""
    if current_app.config["PORTAL_ENV"] == "production":
        raise click.ClickException("Demo data is refused when PORTAL_ENV=production.")
    with command_unit_of_work():
        if if_empty and not demo.database_is_empty():
            click.echo("Database already has users; demo data left as it is.")
            return
        summary = demo.seed()
    click.echo(f"Demo data created: {summary}.")
