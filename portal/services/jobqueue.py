"""Background jobs: on RQ when REDIS_URL is set, else picked up from the database by
`flask --app wsgi worker`.

Work is always recorded in the database first (a pending delivery or e-mail), in the same
transaction as the change. With Redis, a job naming that row is queued once the transaction
has committed; if Redis is unreachable nothing is lost: the worker's periodic sweep finds the
row by its due time.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from ..extensions import db

log = logging.getLogger(__name__)

QUEUE_NAME = "portal"
# The job functions, by import path so this module imports none of them.
JOBS = {
    "webhook": "portal.worker.deliver_webhook_job",
    "email": "portal.worker.send_email_job",
    "maintenance": "portal.worker.maintenance_job",
    "import": "portal.worker.import_job",
}
_INFO_KEY = "portal_jobs"


def redis_connection(url: str | None = None):
    from redis import Redis

    return Redis.from_url(url or current_app.config["REDIS_URL"])


def queue(connection=None):
    from rq import Queue

    return Queue(QUEUE_NAME, connection=connection or redis_connection())


def after_commit(kind: str, row_id) -> None:
    """Queue job `kind` for `row_id` once the current transaction commits (Redis only)."""
    if not current_app.config.get("REDIS_URL"):
        return
    jobs = db.session.info.setdefault(_INFO_KEY, [])
    jobs.append((kind, row_id, current_app.config["REDIS_URL"]))


def enqueue(kind: str, row_id, url: str | None = None, *, delay=None) -> None:
    q = queue(redis_connection(url))
    if delay is not None:
        q.enqueue_in(delay, JOBS[kind], row_id)
    else:
        q.enqueue(JOBS[kind], row_id)


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: not committed yet
        return
    jobs = session.info.pop(_INFO_KEY, None)
    for kind, row_id, url in jobs or ():
        try:
            enqueue(kind, row_id, url)
        except Exception:  # noqa: BLE001 — the sweep delivers it later
            log.warning("could not queue %s job for %s; the worker's sweep will pick it up",
                        kind, row_id, exc_info=True)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    # Only a rollback of the whole transaction (not of a savepoint) discards its jobs.
    if previous_transaction.parent is None and not previous_transaction.nested:
        session.info.pop(_INFO_KEY, None)
