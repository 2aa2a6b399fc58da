"""One package per face. Helpers every face's views share live here."""

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app, request, url_for

from portal.extensions import db
from portal.services.errors import DomainError, ValidationFailed
from portal.unit_of_work import refuse_request


def refused(message, endpoint: str, **values) -> DomainError:
    """A refusal for a view to raise: the error handler rolls back whatever the attempt flushed,
    flashes `message` and goes back to `endpoint`."""
    error = DomainError(message)
    error.back_to = url_for(endpoint, **values)
    return error


@contextmanager
def going_back_to(endpoint: str | None = None, *, url: str | None = None,
                  **values) -> Iterator[None]:
    """A refusal raised in the block takes the user back to `endpoint` (or `url`) with its
    message; one that no page can help with (`goes_back` False) becomes its error page."""
    try:
        yield
    except DomainError as error:
        if error.back_to is None and error.goes_back:
            error.back_to = url or url_for(endpoint, **values)
        raise


class Refusal:
    """What `shown_again` caught: the error, or None when the block finished."""

    error: DomainError | None = None

    @property
    def fields(self) -> dict:
        return {k: str(v) for k, v in self.error.fields.items()} if self.error else {}

    @property
    def message(self) -> str | None:
        return str(self.error.message) if self.error else None


@contextmanager
def shown_again(*kinds: type[DomainError]) -> Iterator[Refusal]:
    """For a form that is shown again with its errors when the service refuses.

    A refusal of `kinds` (by default ValidationFailed) raised in the block is caught, the attempt's
    writes are rolled back (on PostgreSQL a refused statement leaves the transaction unusable, so
    this comes before the page is drawn again) and the request will not commit; the view carries
    on after the block with `refusal.error` set. Any other refusal goes to the error handler."""
    refusal, caught = Refusal(), kinds or (ValidationFailed,)
    try:
        yield refusal
    except caught as error:
        refuse_request()
        refusal.error = error


def paginate(query):
    """One page of `query` as the list's `page` and `per_page` arguments ask (1 to 100 rows)."""
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", current_app.config["PER_PAGE"], type=int)
    return db.paginate(query, page=max(page, 1), per_page=max(1, min(per_page, 100)),
                       error_out=False)
