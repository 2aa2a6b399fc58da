"""`flask --app wsgi branches create` and `branches list`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..services import branches
from .common import SYSTEM, command_unit_of_work

branches_group = AppGroup("branches", help="The bank's branch tree.")


@branches_group.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--parent", "parent_code", default=None,
              help="The parent branch's code (default: the root).")
@click.option("--model", default=None, type=click.Choice(branches.MODELS),
              help="How the branch works its partners.")
def branches_create(code, name, parent_code, model):
    """Add a branch: under --parent, else directly under the root (the root itself when the
    tree is empty)."""
    with command_unit_of_work():
        branch = branches.create(SYSTEM, code=code, name=name, parent=parent_code or None,
                                 model=model)
    parent = f" under {branch.parent.code}" if branch.parent else " (the root)"
    click.echo(f"Created branch {branch.code} ({branch.name}){parent}, id {branch.id}.")


@branches_group.command("list")
def branches_list():
    """The tree, one branch a line, indented by level."""
    for branch in branches.tree():
        click.echo(f"{'  ' * branch.level}{branch.code}\t{branch.name}\t{branch.model or '-'}")
