"""`flask --app wsgi pii rotate-key` (docs/operations.md: the operator's procedure) and
`pii backfill-search` (the search columns of migration 0015, again)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from ..services import pii_rotation, referral_search
from .common import SYSTEM, command_unit_of_work

pii_group = AppGroup("pii", help="Buyers' personal data: key rotation, search keys.")


@pii_group.command("rotate-key")
@click.option("--batch", default=500, show_default=True, help="Referrals per transaction.")
def rotate_key(batch):
    """Move buyers' data to ID_HASH_KEY_NEXT / PII_KEY_NEXT while the portal runs."""
    config = current_app.config
    if not (config["ID_HASH_KEY_NEXT"] or config["PII_KEY_NEXT"]):
        raise click.ClickException(
            "Set PII_KEY_NEXT and/or ID_HASH_KEY_NEXT (on every instance and the worker, then "
            "restart them) before rotating; see docs/operations.md.")
    total, after = pii_rotation.Progress(), 0
    while True:
        # Each batch commits: a long rotation holds no lock for long, and resumes where it was.
        with command_unit_of_work():
            last, progress = pii_rotation.referral_batch(after, batch)
        if last is None:
            break
        after = last
        total.referrals += progress.referrals
        total.rehashed += progress.rehashed
        click.echo(f"  referrals up to id {after}: {total.referrals} moved")
    with command_unit_of_work():
        total.webhook_secrets = pii_rotation.webhook_secrets()
    with command_unit_of_work():
        total.customer_leads = pii_rotation.customer_leads()
    with command_unit_of_work():
        left = pii_rotation.leftovers()
        pii_rotation.record(SYSTEM, total, left)
    click.echo(f"Moved {total.referrals} referrals ({total.rehashed} national-ID hashes "
               f"recomputed) and {total.webhook_secrets} webhook secrets to the new keys.")
    click.echo(f"Moved {total.customer_leads} mobiles of customers the bank referred to "
               "partners to the new keys.")
    if any(left.values()):
        raise click.ClickException(
            f"Still on the old keys: {left['referrals']} referrals, {left['webhook_secrets']} "
            f"webhook secrets, {left['customer_leads']} customers referred to partners (written "
            "by an instance without the new keys?). Run this again.")
    click.echo("Nothing needs the old keys any more: set PII_KEY and ID_HASH_KEY to the new "
               "keys, remove PII_KEY_NEXT and ID_HASH_KEY_NEXT, restart, and destroy the old keys.")


@pii_group.command("backfill-search")
@click.option("--batch", default=2000, show_default=True, help="Referrals per transaction.")
def backfill_search(batch):
    """Fill every referral's search keys and mobile hash again (migration 0015 does it once)."""
    after, done = 0, 0
    while after is not None:
        with command_unit_of_work():
            last = referral_search.backfill_batch(db.session.connection(), after, batch)
        if last is not None:
            done = last
        after = last
    click.echo(f"Search keys written for referrals up to id {done}.")
