"""`flask --app wsgi scores recompute`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..services import scoring
from .common import command_unit_of_work, organisation_by_code

scores_group = AppGroup("scores", help="Partner scorecards.")


@scores_group.command("recompute")
@click.option("--stale", is_flag=True, help="Only partners whose referrals changed since.")
@click.option("--org", "org_code", default=None, help="Only this partner (code).")
def scores_recompute(stale, org_code):
    """Recompute the scorecards (all partners, 12 months and the rolling 90 days)."""
    with command_unit_of_work():
        if org_code:
            result = scoring.recompute_org(organisation_by_code(org_code).id)
        elif stale:
            result = scoring.recompute_stale()
        else:
            result = scoring.recompute_all()
    if result is None:
        click.echo("No partner has changed since the last computation.")
        return
    scope = "all partners" if result.full else f"{result.orgs} partner(s)"
    click.echo(f"Recomputed {scope}: {result.snapshots} snapshots in {result.seconds:.1f} s.")
