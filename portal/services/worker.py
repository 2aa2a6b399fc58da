"""Moved: the worker is `portal.worker` (its steps and jobs) and `portal.cli.worker` (the command).

This name stays only because RQ finds a job by its import path: `jobqueue.JOBS`, and any job
already waiting in Redis, say `portal.services.worker.<job>`. Once JOBS names `portal.worker`
and those jobs have drained, delete this module.
"""

from __future__ import annotations

from ..worker import (  # noqa: F401
    MAINTENANCE_EVERY,
    deliver_webhook,
    deliver_webhook_job,
    housekeeping,
    loop,
    maintenance_job,
    run_due,
    run_rq,
    send_email,
    send_email_job,
)
from . import jobqueue  # noqa: F401 — callers reach the queue through here (worker.jobqueue)
