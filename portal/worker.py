"""The background worker: delivers webhooks and e-mails, and does periodic housekeeping.

`flask --app wsgi worker` (`portal.cli.worker`) runs it. Without REDIS_URL it polls the database
(`run_due` every WORKER_POLL_SECONDS); with REDIS_URL it runs an RQ worker on the "portal" queue,
where jobs are queued when a change commits, retries are scheduled with `enqueue_in`, and a
maintenance job sweeps the database every minute for anything a lost job left behind.

Like a CLI command, this layer owns the transactions: each step is its own unit of work, and
none is open while the worker waits for a receiver or a mail server. The steps themselves are
services that only flush.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app, has_app_context

from models import utcnow

from . import import_runner, links
from .extensions import db
from .services import (
    Ctx,
    agreements,
    idempotency,
    jobqueue,
    notifications,
    passwords,
    retention,
    scoring,
    throttle,
    webhooks,
)
from .services.audit import checks as audit_checks
from .services.audit import denied
from .services.imports import jobs as import_jobs
from .unit_of_work import unit_of_work

log = logging.getLogger(__name__)
MAINTENANCE_EVERY = timedelta(seconds=60)
# An import runs in turns of about this long, so deliveries are not held up behind it.
IMPORT_TURN_SECONDS = 10.0


# --- one attempt each: claim (committed), send with nothing held, record (committed) -----------

def deliver_webhook(delivery_id: int, now: datetime | None = None) -> webhooks.Result | None:
    """One attempt at one delivery, if it is due and no one else has it."""
    # The claim is committed before the POST: other workers see it, and no transaction waits
    # on the receiver.
    with unit_of_work():
        if not webhooks.claim(delivery_id, now):
            return None
        outgoing = webhooks.prepare(delivery_id)
    if outgoing is None:
        return None
    result = webhooks.send(outgoing)
    with unit_of_work():
        delivery = webhooks.record(delivery_id, result, now)
        status, next_at = delivery.status, delivery.next_attempt_at
    if status == "pending" and next_at is not None and current_app.config.get("REDIS_URL"):
        _retry_on_rq("webhook", delivery_id, next_at)
    return result


def send_email(note_id: int, now: datetime | None = None) -> bool | None:
    """One attempt at one notification e-mail. None if not due or taken."""
    with unit_of_work():
        if not notifications.claim_email(note_id, now):
            return None
        message = notifications.email_for(note_id, links.partner_url)
    if message is None:
        return None
    error = None
    try:
        notifications.deliver_email(message)
    except Exception as exc:  # noqa: BLE001 — any SMTP or network failure is retried
        error = f"{type(exc).__name__}: {exc}"
    with unit_of_work():
        notifications.record_email(note_id, error, now)
    return error is None


def _retry_on_rq(kind: str, row_id, at: datetime) -> None:
    try:
        jobqueue.enqueue(kind, row_id, delay=max(timedelta(0), at - utcnow()))
    except Exception:  # noqa: BLE001 — the sweep finds it by its due time
        log.warning("could not schedule a retry of %s %s", kind, row_id, exc_info=True)


def run_due(now: datetime | None = None, limit: int = 100) -> dict:
    """Everything due now from the database: webhook attempts and e-mails."""
    done = {"webhooks": 0, "emails": 0}
    with unit_of_work():  # only reads; ended so no transaction spans the deliveries
        ids = webhooks.due_ids(now, limit)
    for delivery_id in ids:
        if deliver_webhook(delivery_id, now) is not None:
            done["webhooks"] += 1
    with unit_of_work():
        ids = notifications.due_email_ids(now, limit)
    for note_id in ids:
        if send_email(note_id, now) is not None:
            done["emails"] += 1
    return done


def housekeeping(now: datetime | None = None) -> dict:
    """Agreement statuses rolled with the calendar, notices of agreements about to expire and
    agreement PDFs not used for PDF_CACHE_DAYS; idempotency records past their time; stale
    scorecards; ended login throttles and password links (one unit of work); then the audit
    trail's routine and retention."""
    now = now or utcnow()
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    with unit_of_work():
        done = {**agreements.maintain(now),  # roll statuses, expiry notices, PDF cache
                "idempotency_purged": idempotency.purge(now - ttl),
                # login throttles and password links that have ended (issue 10)
                "throttles_pruned": throttle.prune(now),
                "password_links_pruned": passwords.prune(now),
                "scorecards": scoring.maintain(now)}  # stale partners; everything daily
    return {**done, **records_housekeeping(now)}


def records_housekeeping(now: datetime | None = None) -> dict:
    """The audit trail's routine (refusals dropped by the cap summarised; the chain checked and
    anchored) and retention, each its own unit of work so one failing leaves the others done."""
    now = now or utcnow()
    system = Ctx(user=None, ip="worker")
    done = {}
    with unit_of_work():
        done["denied_dropped"] = denied.summarise_dropped(system, now)
    with unit_of_work():
        done.update(audit_checks.routine(now))
    with unit_of_work():
        done["anonymised"] = retention.housekeeping(system, now)
    return done


# --- the database-polling loop -----------------------------------------------------------------

def loop(*, once: bool = False, poll: float | None = None, echo=print) -> None:
    poll = poll if poll is not None else current_app.config["WORKER_POLL_SECONDS"]
    last_housekeeping = None
    while True:
        now = utcnow()
        if last_housekeeping is None or now - last_housekeeping >= MAINTENANCE_EVERY:
            try:
                done = housekeeping(now)
                if any(done.values()):
                    echo(f"housekeeping: {done}")
            except Exception:  # noqa: BLE001 — keep the worker alive; rolled back and logged
                log.exception("housekeeping failed")
            last_housekeeping = now
        try:
            done = run_due()
        except Exception:  # noqa: BLE001 — rolled back by its unit of work; logged
            log.exception("delivery round failed")
            done = {}
        if any(done.values()):
            echo(f"delivered: {done}")
        try:
            importing = import_runner.run_due(IMPORT_TURN_SECONDS)
        except Exception:  # noqa: BLE001 — the job records its own failure; logged
            log.exception("import turn failed")
            importing = False
        if once and not importing:
            return
        db.session.remove()
        if not importing:  # an import with more to do goes on at once
            time.sleep(poll)


# --- RQ ----------------------------------------------------------------------------------------

@contextmanager
def _job_context():
    """RQ jobs run in `flask --app wsgi worker` (SimpleWorker, inside the command's app context).
    A bare `rq worker` has no app to run them in: say so plainly."""
    if not has_app_context():
        raise RuntimeError("portal jobs run in `flask --app wsgi worker`, not a bare `rq worker`")
    yield


def deliver_webhook_job(delivery_id: int) -> None:
    with _job_context():
        deliver_webhook(delivery_id)


def send_email_job(note_id: int) -> None:
    with _job_context():
        if send_email(note_id) is not False:
            return
        with unit_of_work():  # only reads when the failed attempt is due again
            note = db.session.get(notifications.Notification, note_id)
            retry_at = (note.email_next_at if note is not None and note.email_status == "pending"
                        else None)
        if retry_at:
            _retry_on_rq("email", note_id, retry_at)


def import_job(job_id: int) -> None:
    """One turn of an import job; the next turn is queued behind whatever came in meanwhile."""
    with _job_context():
        if import_runner.run(job_id, budget=IMPORT_TURN_SECONDS):
            jobqueue.queue().enqueue(jobqueue.JOBS["import"], job_id)


def maintenance_job(_unused=None) -> None:
    """Housekeeping plus a sweep that queues anything due, then schedules itself again.

    A short Redis lock keeps one chain of these alive however often workers restart: a chain
    that finds the lock taken ends."""
    seconds = int(MAINTENANCE_EVERY.total_seconds())
    with _job_context():
        if not jobqueue.redis_connection().set("portal:maintenance", "1", nx=True,
                                               ex=seconds - 5):
            return
        try:
            housekeeping()
            with unit_of_work():  # only reads
                webhook_ids, email_ids = webhooks.due_ids(), notifications.due_email_ids()
                import_ids = import_jobs.due_ids()  # queued jobs whose RQ job was lost
            q = jobqueue.queue()
            for job_id in import_ids:
                q.enqueue(jobqueue.JOBS["import"], job_id)
            for delivery_id in webhook_ids:
                q.enqueue(jobqueue.JOBS["webhook"], delivery_id)
            for note_id in email_ids:
                q.enqueue(jobqueue.JOBS["email"], note_id)
        finally:
            jobqueue.queue().enqueue_in(MAINTENANCE_EVERY, jobqueue.JOBS["maintenance"])


def run_rq(*, burst: bool = False) -> None:
    """An RQ worker in this process (no fork: jobs share the app and its connection pool)."""
    from rq import SimpleWorker

    connection = jobqueue.redis_connection()
    q = jobqueue.queue(connection)
    q.enqueue(jobqueue.JOBS["maintenance"])
    worker = SimpleWorker([q], connection=connection)
    worker.work(with_scheduler=True, burst=burst)
