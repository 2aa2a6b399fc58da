"""`flask --app wsgi api-key create|list|revoke`: keys for the HTTP API."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from models import ApiKey, User

from ..extensions import db
from ..services import api_keys
from .common import SYSTEM, command_unit_of_work

api_key_group = AppGroup("api-key", help="API keys for the HTTP API.")


@api_key_group.command("create")
@click.option("--user", "email", required=True, help="The user the key acts as.")
@click.option("--name", default=None, help="What the key is for.")
@click.option("--rate-limit", default=None,
              help='Override API_RATE_LIMIT for this key, e.g. "2000 per minute".')
def api_key_create(email, name, rate_limit):
    """Create an API key for a user and print it (once)."""
    with command_unit_of_work():
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
        row, key = api_keys.create(SYSTEM, user, name or f"CLI key for {user.email}",
                                   rate_limit=rate_limit)
    click.echo(f"Created API key {row.prefix}… ({row.name}) acting as {user.email} "
               f"({user.role}, {user.org.code}).", err=True)
    click.echo("It is shown only this once:", err=True)
    click.echo(key)


@api_key_group.command("list")
@click.option("--org", "org_code", default=None, help="Only this organisation's keys.")
def api_key_list(org_code):
    """List keys (prefix, name, user, last use); never the keys themselves."""
    with command_unit_of_work():
        for row in db.session.scalars(select(ApiKey).order_by(ApiKey.id)):
            if org_code and row.org.code != org_code.strip().upper():
                continue
            state = "revoked" if row.revoked_at else "active"
            used = (row.last_used_at.isoformat(timespec="seconds") if row.last_used_at
                    else "never")
            click.echo(f"{row.id}\t{row.prefix}…\t{state}\t{row.org.code}\t{row.user.email}\t"
                       f"last used {used}\t{row.name}")


@api_key_group.command("revoke")
@click.argument("key_id", type=int)
def api_key_revoke(key_id):
    """Revoke a key by its id (see `api-key list`)."""
    with command_unit_of_work():
        row = db.session.get(ApiKey, key_id)
        if row is None:
            raise click.ClickException(f"No API key with id {key_id}.")
        api_keys.revoke(SYSTEM, row)
    click.echo(f"Revoked {row.prefix}… ({row.name}).")
