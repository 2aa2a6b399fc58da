"""Command-line interface: `flask --app wsgi <group> <command>` (see docs/contract.md).

One module per command group. Each command is its own unit of work (`portal.unit_of_work`): it
commits when it finishes and rolls back when it is refused.
"""

from __future__ import annotations

import click
from flask import Flask

from .agreements import agreements_group
from .api_keys import api_key_group
from .audit import audit_group
from .backup import backup_command, restore_command
from .branches import branches_group
from .demo import demo_group
from .imports import loans_group, referrals_group
from .orgs import orgs_group
from .pii import pii_group
from .retention import retention_group
from .scores import scores_group
from .users import users_group
from .worker import worker_command

COMMANDS: tuple[click.Command, ...] = (
    orgs_group, users_group, demo_group, referrals_group, loans_group, scores_group,
    agreements_group, api_key_group, worker_command, audit_group, backup_command, restore_command,
    pii_group, retention_group, branches_group,
)


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
