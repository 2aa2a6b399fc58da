"""`flask --app wsgi users create` and `users reset-password`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from models import Role

from ..services import accounts, mfa, passwords
from .common import SYSTEM, command_unit_of_work, organisation_by_code

users_group = AppGroup("users", help="Portal users.")


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--org", "org_code", default=None, help="Partner organisation code.")
@click.option("--name", default=None)
@click.option("--password", default=None, help="At least 12 characters; generated if absent.")
@click.option("--branch", "branch_code", default=None,
              help="Bank roles: the branch's code (without it: the province, seeing everything).")
def users_create(email, role, org_code, name, password, branch_code):
    """Create a user and print a one-time password (changed at first login)."""
    with command_unit_of_work():
        org = organisation_by_code(org_code) if org_code else None
        user, secret = accounts.create_user(SYSTEM, email=email, role=role, org=org, name=name,
                                            password=password, branch=branch_code)
    where = f", branch {user.branch.code}" if user.branch else ""
    click.echo(f"Created {user.role} {user.email} in {user.org.code}{where}.")
    if not password:
        click.echo(f"One-time password: {secret}")


@users_group.command("reset-password")
@click.option("--email", required=True)
@click.option("--remove-second-factor", is_flag=True,
              help="Also turn off their two-step login (a lost phone and no recovery codes).")
def users_reset_password(email, remove_second_factor):
    """Print a one-time password for the user, once: their old password and every session stop
    working, and the new one must be changed at the next login."""
    with command_unit_of_work():
        user = accounts.user_by_email(email)
        if user is None:
            raise click.ClickException(f"No user with e-mail {email}.")
        secret = passwords.issue_one_time(SYSTEM, user)
        if remove_second_factor:
            mfa.disable(user)
    hours = current_app.config["ONE_TIME_PASSWORD_HOURS"]
    click.echo(f"One-time password for {user.email}: {secret}")
    click.echo(f"It works for one login within {hours} hours, which must choose a new password.")
    if remove_second_factor:
        click.echo("Two-step login is off; a role that needs it enrols again at that login.")
