"""Acting on the work queue: take a referral, give it back, hand it to another officer (a lead),
and save or delete a named set of the queue's filters."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to
from portal.security import bank_required, ctx, roles_required, safe_next
from portal.services import assignment, queue, referrals, saved_filters
from portal.services.errors import DomainError

from . import queue_page
from .queue_forms import AssignForm, SaveFilterForm, TakeForm
from .routes import _filter_form, bp

officers_only = roles_required(*sorted(assignment.WORKERS))
leads_only = roles_required(*sorted(assignment.LEADS))


def _back(form, referral_id: int) -> str:
    """Where the form was sent from (the queue with its filters, or the referral)."""
    return safe_next(form.next.data) or url_for("bank.referral", referral_id=referral_id)


def _refused(message: str, back: str) -> DomainError:
    error = DomainError(message)
    error.back_to = back
    return error


def _expired(back: str) -> DomainError:
    return _refused(_("The form has expired. Reload the page and try again."), back)


def _own_move(referral_id: int, move, done: str):
    """Take or give back: the same form (its CSRF token and where to go back to), one move."""
    referral = referrals.get_for(current_user, referral_id)
    form = TakeForm()
    back = _back(form, referral_id)
    if not form.validate_on_submit():
        raise _expired(back)
    with going_back_to(url=back):
        move(ctx(), referral)
    flash(done % {"id": referral.id}, "success")
    return redirect(back)


@bp.route("/referrals/<int:referral_id>/take", methods=["POST"])
@officers_only
def take_referral(referral_id: int):
    return _own_move(referral_id, assignment.take, _("You are working on referral #%(id)d."))


@bp.route("/referrals/<int:referral_id>/release", methods=["POST"])
@officers_only
def release_referral(referral_id: int):
    return _own_move(referral_id, assignment.release,
                     _("Referral #%(id)d is back in the queue for anyone to take."))


@bp.route("/referrals/<int:referral_id>/assign", methods=["POST"])
@leads_only
def assign_referral(referral_id: int):
    referral = referrals.get_for(current_user, referral_id)
    form = AssignForm()
    back = _back(form, referral_id)
    if not form.validate_on_submit():
        raise _expired(back) if "csrf_token" in form.errors else _refused(
            _("Choose an active credit officer."), back)
    with going_back_to(url=back):
        officer = assignment.assign(ctx(), referral, form.officer_id(), seen=form.seen_id())
    flash(_("Referral #%(id)d is now with %(name)s.", id=referral.id, name=officer.name),
          "success")
    return redirect(back)


@bp.route("/queue/filters", methods=["POST"])
@bank_required
def save_queue_filter():
    """Save the queue's current filters (the query string this form was sent with) by name."""
    filters = _filter_form(queue.QUEUE_STATES)
    form = SaveFilterForm()
    params = queue_page.params_of(filters)
    back = url_for("bank.queue", **params)
    if not form.validate_on_submit():
        raise _expired(back) if "csrf_token" in form.errors else _refused(
            str(next(iter(form.errors.values()))[0]), back)
    with going_back_to(url=back):
        saved = saved_filters.save(ctx(), form.name.data, params)
    flash(_("Filter “%(name)s” saved.", name=saved.name), "success")
    return redirect(back)


@bp.route("/queue/filters/<int:filter_id>/delete", methods=["POST"])
@bank_required
def delete_queue_filter(filter_id: int):
    saved = saved_filters.get_own(current_user, filter_id)  # another user's: 404
    form = TakeForm()
    back = url_for("bank.queue")
    if not form.validate_on_submit():
        raise _expired(back)
    name = saved.name
    saved_filters.delete(ctx(), saved.id)
    flash(_("Filter “%(name)s” deleted.", name=name), "success")
    return redirect(back)
