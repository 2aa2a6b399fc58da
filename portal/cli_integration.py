"""CLI for partner integration: `flask --app wsgi api-key create|list|revoke` and
`flask --app wsgi worker [--once]`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from sqlalchemy import func, select

from models import ApiKey, User

from .extensions import db
from .services import Ctx
from .services.errors import DomainError


def register(app: Flask) -> None:
    from .cli import _fail
    from .services import api_keys, worker

    system = Ctx(user=None, ip="cli")

    @app.cli.group("api-key")
    def api_key():
        """API keys for the HTTP API."""

    @api_key.command("create")
    @click.option("--user", "email", required=True, help="The user the key acts as.")
    @click.option("--name", default=None, help="What the key is for.")
    @click.option("--rate-limit", default=None,
                  help='Override API_RATE_LIMIT for this key, e.g. "2000 per minute".')
    def api_key_create(email, name, rate_limit):
        """Create an API key for a user and print it (once)."""
        user = db.session.scalar(
            select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None:
            raise click.ClickException(f"No user with e-mail {email}.")
        if rate_limit:
            from limits import parse

            try:
                parse(rate_limit)
            except ValueError as exc:
                raise click.ClickException(f"Not a rate limit: {rate_limit} ({exc}).") from None
        try:
            row, key = api_keys.create(system, user, name or f"CLI key for {user.email}",
                                       rate_limit=rate_limit)
        except DomainError as err:
            _fail(err)
        db.session.commit()
        click.echo(f"Created API key {row.prefix}… ({row.name}) acting as {user.email} "
                   f"({user.role}, {user.org.code}).", err=True)
        click.echo("It is shown only this once:", err=True)
        click.echo(key)

    @api_key.command("list")
    @click.option("--org", "org_code", default=None, help="Only this organisation's keys.")
    def api_key_list(org_code):
        """List keys (prefix, name, user, last use); never the keys themselves."""
        query = select(ApiKey).order_by(ApiKey.id)
        for row in db.session.scalars(query):
            if org_code and row.org.code != org_code.strip().upper():
                continue
            state = "revoked" if row.revoked_at else "active"
            used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
            click.echo(f"{row.id}\t{row.prefix}…\t{state}\t{row.org.code}\t{row.user.email}\t"
                       f"last used {used}\t{row.name}")

    @api_key.command("revoke")
    @click.argument("key_id", type=int)
    def api_key_revoke(key_id):
        """Revoke a key by its id (see `api-key list`)."""
        row = db.session.get(ApiKey, key_id)
        if row is None:
            raise click.ClickException(f"No API key with id {key_id}.")
        api_keys.revoke(system, row)
        db.session.commit()
        click.echo(f"Revoked {row.prefix}… ({row.name}).")

    @app.cli.command("worker")
    @click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
    def worker_command(once):
        """Deliver webhooks and notification e-mails (RQ when REDIS_URL is set, else from the
        database)."""
        if current_app.config.get("REDIS_URL"):
            click.echo(f"RQ worker on {current_app.config['REDIS_URL']} (queue "
                       f"'{worker.jobqueue.QUEUE_NAME}'){' in burst mode' if once else ''}.")
            worker.run_rq(burst=once)
            return
        if not once:
            click.echo("Worker polling the database every "
                       f"{current_app.config['WORKER_POLL_SECONDS']} s (Ctrl-C stops it).")
        try:
            worker.loop(once=once, echo=click.echo)
        except KeyboardInterrupt:
            click.echo("Worker stopped.")
