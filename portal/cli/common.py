"""What every command shares: who acts (the system, from the command line) and how a refusal
ends a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select

from models import Organization

from ..extensions import db
from ..services import Ctx
from ..services.errors import DomainError
from ..unit_of_work import unit_of_work

SYSTEM = Ctx(user=None, ip="cli")


def describe(err: DomainError) -> str:
    details = "; ".join(f"{k}: {v}" for k, v in err.fields.items())
    return f"{err.message}{' (' + details + ')' if details else ''}"


@contextmanager
def command_unit_of_work() -> Iterator[None]:
    """The command's unit of work; a refusal rolls it all back and ends the command with the
    refusal's message (exit status 1)."""
    try:
        with unit_of_work():
            yield
    except DomainError as err:
        raise click.ClickException(describe(err)) from None


def organisation_by_code(code: str) -> Organization:
    org = db.session.scalar(select(Organization).where(
        Organization.code == code.strip().upper()))
    if org is None:
        raise click.ClickException(f"No organisation with code {code}.")
    return org
