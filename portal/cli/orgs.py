"""`flask --app wsgi orgs create`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from models import PartnerType

from ..services import accounts
from .common import SYSTEM, command_unit_of_work

orgs_group = AppGroup("orgs", help="Partner organisations.")


@orgs_group.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--type", "kind", required=True,
              type=click.Choice([t.value for t in PartnerType]))
@click.option("--manager", "manager_email", default=None, help="Channel manager's e-mail.")
@click.option("--branch", default=None, help="The code of the bank branch that works it.")
def orgs_create(code, name, kind, manager_email, branch):
    """Create an active partner organisation."""
    with command_unit_of_work():
        org = accounts.create_org(SYSTEM, code=code, name=name, kind=kind,
                                  manager_email=manager_email, branch=branch)
    click.echo(f"Created organisation {org.code} ({org.name}), id {org.id}.")
