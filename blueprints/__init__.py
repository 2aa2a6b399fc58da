"""One package per face. Helpers every face's views share live here."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, literal_column, select

from portal.extensions import db
from portal.services import keyset
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


# A list counts its rows only up to this many: past it the page says "more than 1,000" (a count
# of a million rows reads them all, on every view of every page).
COUNT_CAP = 1000
# A keyset list numbers its first pages (read by OFFSET, at most this many pages of rows skipped);
# past them "Next" and "Previous" carry a cursor and a page is read from where the last one ended.
NUMBERED_PAGES = 10
# A `?page=N` with no cursor (a bookmark, a typed address) skips at most this many rows: an
# OFFSET reads every row it skips, and a million-row list's last page took 11 s on PostgreSQL.
# Deeper, the list opens at its first page and says how to go on (Next, or the filters).
MAX_SKIPPED_ROWS = 10_000


class Page:
    """One page of a list and what is known of its length: exact up to `cap` rows, beyond that
    only "more than" (what the pagination macro shows). Shaped like Flask-SQLAlchemy's pagination
    for the templates: items, page, per_page, total (None past the cap), pages, has_prev/has_next,
    prev_num/next_num, iter_pages."""

    def __init__(self, items: list, page: int, per_page: int, total: int | None, has_next: bool,
                 cap: int, *, numbered: int | None = None, first_key: str | None = None,
                 last_key: str | None = None):
        self.items, self.page, self.per_page = items, page, per_page
        self.total, self.has_next, self.cap = total, has_next, cap
        self.has_prev = page > 1
        self.prev_num = page - 1 if self.has_prev else None
        self.next_num = page + 1 if has_next else None
        # Keyset lists: pages up to `numbered` are linked by number, later ones by cursor.
        self.numbered, self._first_key, self._last_key = numbered, first_key, last_key

    def _link(self, n: int, **cursor) -> dict:
        cursor = cursor if self.numbered is not None and n > self.numbered else {}
        if cursor and None in cursor.values():
            cursor = {}  # a row no cursor can name (a NULL key): by number after all
        return {"page": n, "after": cursor.get("after"), "before": cursor.get("before")}

    @property
    def prev_args(self) -> dict:
        """The query arguments of the "Previous" link (the list's filters are kept besides)."""
        return self._link(self.prev_num or 1, before=self._first_key)

    @property
    def next_args(self) -> dict:
        return self._link(self.next_num or self.pages, after=self._last_key)

    def number_args(self, n: int) -> dict:
        return {"page": n, "after": None, "before": None}

    @property
    def exact(self) -> bool:
        return self.total is not None

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return (self.page - 1) * self.per_page + len(self.items)

    @property
    def at_least(self) -> int:
        """A true lower bound of the rows when the count stopped at the cap."""
        return max(self.cap, self.last)

    @property
    def pages(self) -> int:
        if self.total is not None:
            return max(1, -(-self.total // self.per_page)) if self.total else 0
        return self.page + 1 if self.has_next else self.page

    def iter_pages(self, *, left_edge=2, left_current=2, right_current=4, right_edge=2):
        pages = self.pages
        right = right_edge if self.exact else 0
        shown = set(range(1, min(left_edge, pages) + 1))
        shown |= set(range(max(1, self.page - left_current), min(self.page + right_current,
                                                                  pages) + 1))
        shown |= set(range(max(1, pages - right + 1), pages + 1)) if right else set()
        if self.numbered is not None:
            # Past the numbered pages only the current one: no link that skips by OFFSET.
            shown = {n for n in shown if n <= self.numbered or n == self.page}
        previous = 0
        for n in sorted(shown):
            if n != previous + 1:
                yield None
            yield n
            previous = n


def _page_args() -> tuple[int, int]:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    per_page = request.args.get("per_page", current_app.config["PER_PAGE"], type=int)
    return page, max(1, min(per_page or 1, 100))


def paginate(query, *, cap: int = COUNT_CAP, seek: bool = False, total: int | None = None
             ) -> Page:
    """One page of `query` as the list's `page` and `per_page` arguments ask (1 to 100 rows),
    counted up to `cap` rows (a count that stops there, on whatever index the filters use);
    `total`: how many rows the query has, when the caller counted them already.

    `seek`: the list is big and ordered by plain columns ending in its id. Its first
    NUMBERED_PAGES pages are linked by number; past them the links carry an `after`/`before`
    cursor (services/keyset.py) and the page is read from there through the order's index. A
    `?page=N` alone (an older bookmark) still works, by OFFSET."""
    keys = keyset.order_keys(query) if seek else None
    if keys:
        for direction in ("after", "before"):
            values = keyset.decode(keys, request.args.get(direction))
            if values is not None:
                return _seek(query, keys, values, forward=direction == "after", cap=cap,
                             total=total)
    page, per_page = _page_args()
    if keys and (page - 1) * per_page > MAX_SKIPPED_ROWS:
        _too_deep(page)
    statement = query.limit(per_page + 1).offset((page - 1) * per_page)
    if keys and page > 1:
        # The rows skipped by number are read on the order's index alone, and only the page's
        # rows joined to their partner and product: joined first, the 8,725 rows before page
        # 350 doubled its time (issue 15). A seek list's order ends in its id.
        ids = query.with_only_columns(keys[-1].column, maintain_column_froms=True)
        statement = query.where(keys[-1].column.in_(
            ids.limit(per_page + 1).offset((page - 1) * per_page).scalar_subquery())
        ).limit(per_page + 1)
    if keys:
        statement = statement.add_columns(*(k.column for k in keys))
    result = db.session.execute(statement).unique()
    rows = result.all() if keys else result.scalars().all()
    items, has_next = rows[:per_page], len(rows) > per_page
    if total is None and not has_next and (items or page == 1):
        total = (page - 1) * per_page + len(items)
    elif total is None:
        # Only "is there a row", on whatever index the filters use: no columns, no order.
        counted = db.session.scalar(select(func.count()).select_from(
            query.order_by(None).with_only_columns(literal_column("1"),
                                                             maintain_column_froms=True)
            .limit(cap + 1).subquery()))
        total = counted if counted <= cap else None
    if not keys:
        return Page(items, page, per_page, total, has_next, cap)
    return _keyed_page(keys, items, page, per_page, total, has_next, cap)


def _too_deep(page: int) -> NoReturn:
    args = request.args.to_dict()
    for name in ("page", "after", "before"):
        args.pop(name, None)
    flash(_("Page %(page)s cannot be opened directly: go on with Next from here, or narrow the "
            "list with the filters.", page=f"{page:,}"), "warning")
    abort(redirect(url_for(request.endpoint, **(request.view_args or {}), **args)))


def _keyed_page(keys, rows, page, per_page, total, has_next, cap) -> Page:
    cursors = [keyset.encode(keys, row[1:]) for row in (rows[:1] + rows[-1:])] or [None, None]
    return Page([row[0] for row in rows], page, per_page, total, has_next, cap,
                numbered=NUMBERED_PAGES, first_key=cursors[0], last_key=cursors[-1])


def _seek(query, keys, values, *, forward: bool, cap: int, total: int | None) -> Page:
    """The page after (or before) the cursor's row. Its number is the one the link carried:
    only shown, never used to read."""
    page, per_page = _page_args()
    statement = query.where(keyset.beyond(keys, values, forward=forward))
    if not forward:
        statement = statement.order_by(None).order_by(*keyset.reversed_order(keys))
    rows = db.session.execute(statement.add_columns(*(k.column for k in keys))
                              .limit(per_page + 1)).unique().all()
    more = len(rows) > per_page
    rows = rows[:per_page]
    if forward:
        has_next = more
    else:
        rows.reverse()
        has_next = True  # the page the cursor came from
        if not more:
            page = 1  # "Previous" reached the start of the list, whatever the link said
    page = max(page, 1)
    # The length is known only once the end is reached going forward (the numbers carried
    # are honest unless someone edited them; they are only what the range line says).
    if total is None and forward and not more:
        total = (page - 1) * per_page + len(rows)
    return _keyed_page(keys, rows, page, per_page, total, has_next, cap)
