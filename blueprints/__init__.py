"""One package per face. Helpers every face's views share live here."""

from flask import current_app, flash, redirect, request, url_for

from portal.extensions import db


def refuse(message, endpoint: str, **values):
    """Undo whatever a failed attempt flushed, say why, and go back.

    The redirect ends the request with a status under 400, which would commit: roll back first.
    """
    db.session.rollback()
    flash(str(message), "danger")
    return redirect(url_for(endpoint, **values))


def paginate(query):
    """One page of `query` as the list's `page` and `per_page` arguments ask (1 to 100 rows)."""
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", current_app.config["PER_PAGE"], type=int)
    return db.paginate(query, page=max(page, 1), per_page=max(1, min(per_page, 100)),
                       error_out=False)
