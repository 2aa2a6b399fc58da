"""One package per face. Helpers every face's views share live here."""

from flask import flash, redirect, url_for

from portal.extensions import db


def refuse(message, endpoint: str, **values):
    """Undo whatever a failed attempt flushed, say why, and go back.

    The redirect ends the request with a status under 400, which would commit: roll back first.
    """
    db.session.rollback()
    flash(str(message), "danger")
    return redirect(url_for(endpoint, **values))
