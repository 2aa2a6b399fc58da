"""`flask --app wsgi worker [--once]`: the delivery worker (the loop itself is `portal.worker`)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import worker
from ..services import jobqueue


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@with_appcontext
def worker_command(once):
    """Deliver webhooks and notification e-mails (RQ when REDIS_URL is set, else from the
    database)."""
    if current_app.config.get("REDIS_URL"):
        click.echo(f"RQ worker on {current_app.config['REDIS_URL']} (queue "
                   f"'{jobqueue.QUEUE_NAME}'){' in burst mode' if once else ''}.")
        worker.run_rq(burst=once)
        return
    if not once:
        click.echo("Worker polling the database every "
                   f"{current_app.config['WORKER_POLL_SECONDS']} s (Ctrl-C stops it).")
    try:
        worker.loop(once=once, echo=click.echo)
    except KeyboardInterrupt:
        click.echo("Worker stopped.")
