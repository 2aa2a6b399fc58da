"""`flask --app wsgi users create`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from models import Role

from ..services import accounts
from .common import SYSTEM, command_unit_of_work, organisation_by_code

users_group = AppGroup("users", help="Portal users.")


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--org", "org_code", default=None, help="Partner organisation code.")
@click.option("--name", default=None)
@click.option("--password", default=None, help="At least 12 characters; generated if absent.")
def users_create(email, role, org_code, name, password):
    """Create a user and print a one-time password."""
    with command_unit_of_work():
        org = organisation_by_code(org_code) if org_code else None
        user, secret = accounts.create_user(SYSTEM, email=email, role=role, org=org, name=name,
                                            password=password)
    click.echo(f"Created {user.role} {user.email} in {user.org.code}.")
    if not password:
        click.echo(f"One-time password: {secret}")
