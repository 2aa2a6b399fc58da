"""CLI for cooperation agreements: `flask --app wsgi agreements roll` (run it daily, e.g. from
cron, shortly after midnight Beijing time): accepted agreements whose effective day has come
become active (superseding what they renew), and agreements past their expiry expire."""

from __future__ import annotations

from datetime import date

import click
from flask import Flask

from .extensions import db
from .services import Ctx


def register(app: Flask) -> None:
    from .services import agreements

    @app.cli.group("agreements")
    def group():
        """Cooperation agreements."""

    @group.command("roll")
    @click.option("--date", "on", default=None, help="Roll as of this day (YYYY-MM-DD).")
    def roll(on):
        """Bring agreement statuses up to date with the calendar."""
        try:
            day = date.fromisoformat(on) if on else None
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
        counts = agreements.roll_statuses(Ctx(user=None, ip="cli"), today=day)
        db.session.commit()
        click.echo(f"Agreements activated: {counts['activated']}, expired: {counts['expired']}.")
