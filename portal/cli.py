"""Command-line interface: `flask --app wsgi <group> <command>` (see CONTRACT.md)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from sqlalchemy import select

from models import Organization, PartnerType, Role

from .extensions import db
from .services import Ctx
from .services.errors import DomainError


def _fail(err: DomainError) -> None:
    db.session.rollback()
    details = "; ".join(f"{k}: {v}" for k, v in err.fields.items())
    raise click.ClickException(f"{err.message}{' (' + details + ')' if details else ''}")


def register(app: Flask) -> None:
    from . import cli_agreements, cli_integration
    from .cli_scoring import register as register_scoring
    from .services import accounts, demo

    register_scoring(app)  # referrals import, loans import, scores recompute

    cli_integration.register(app)  # api-key, worker
    cli_agreements.register(app)  # agreements roll

    system = Ctx(user=None, ip="cli")

    @app.cli.group("orgs")
    def orgs():
        """Partner organisations."""

    @orgs.command("create")
    @click.option("--code", required=True)
    @click.option("--name", required=True)
    @click.option("--type", "kind", required=True,
                  type=click.Choice([t.value for t in PartnerType]))
    @click.option("--manager", "manager_email", default=None, help="Channel manager's e-mail.")
    @click.option("--branch", default=None)
    def orgs_create(code, name, kind, manager_email, branch):
        """Create an active partner organisation."""
        try:
            org = accounts.create_org(system, code=code, name=name, kind=kind,
                                      manager_email=manager_email, branch=branch)
        except DomainError as err:
            _fail(err)
        db.session.commit()
        click.echo(f"Created organisation {org.code} ({org.name}), id {org.id}.")

    @app.cli.group("users")
    def users():
        """Portal users."""

    @users.command("create")
    @click.option("--email", required=True)
    @click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
    @click.option("--org", "org_code", default=None, help="Partner organisation code.")
    @click.option("--name", default=None)
    @click.option("--password", default=None, help="At least 12 characters; generated if absent.")
    def users_create(email, role, org_code, name, password):
        """Create a user and print a one-time password."""
        org = None
        if org_code:
            org = db.session.scalar(select(Organization).where(
                Organization.code == org_code.strip().upper()))
            if org is None:
                raise click.ClickException(f"No organisation with code {org_code}.")
        try:
            user, secret = accounts.create_user(system, email=email, role=role, org=org, name=name,
                                                password=password)
        except DomainError as err:
            _fail(err)
        db.session.commit()
        click.echo(f"Created {user.role} {user.email} in {user.org.code}.")
        if not password:
            click.echo(f"One-time password: {secret}")

    @app.cli.group("demo")
    def demo_group():
        """Demonstration data (development only)."""

    @demo_group.command("seed")
    @click.option("--if-empty", is_flag=True, help="Do nothing when users already exist.")
    def demo_seed(if_empty):
        """Create the demo accounts, partners and a few months of referral history."""
        if current_app.config["PORTAL_ENV"] == "production":
            raise click.ClickException("Demo data is refused when PORTAL_ENV=production.")
        if if_empty and not demo.database_is_empty():
            click.echo("Database already has users; demo data left as it is.")
            return
        try:
            summary = demo.seed()
        except DomainError as err:
            _fail(err)
        db.session.commit()
        click.echo(f"Demo data created: {summary}.")
