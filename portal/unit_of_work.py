"""The transaction boundary: one unit of work per request, CLI command or job.

Services only flush. Whoever started the work ends it here: the block commits if it finishes and
rolls back if it raises, so a refusal after a flush leaves nothing behind. Web requests get the same
rule from `portal.PortalApp` (the view returned normally: commit; it raised: roll back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import after_this_request, g, has_request_context
from sqlalchemy.orm import Session

from .extensions import db


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block flushed if it finishes; roll it all back if it raises."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


def refuse_request() -> None:
    """Roll back this request's writes and make sure nothing later commits them.

    For the one place that shows a refusal and still answers normally (a form shown again with
    its field errors, see `blueprints.shown_on`); everywhere else, raising is the refusal."""
    db.session.rollback()
    if has_request_context():
        g.request_refused = True


def request_refused() -> bool:
    return bool(g.get("request_refused"))


def apart(write: Callable[[Session], None]) -> None:
    """Run `write` in a transaction of its own, for a record that must outlive a refusal (the
    audit entry of a refused request), which rolls back the request's own work.

    In a request it runs once the request's transaction has ended: the refusal's error handler
    has rolled it back by then, so on SQLite no write lock of the request stands in the way.
    Elsewhere (commands, jobs) it runs at once."""

    def run() -> None:
        with Session(db.engine) as session, session.begin():
            write(session)

    if not has_request_context():
        run()
        return

    @after_this_request
    def _written(response):
        run()
        return response
