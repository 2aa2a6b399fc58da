"""The officers' work queue page: whose referrals (all, mine, unassigned), the order, SLA colours,
the assignment buttons and the officer's saved filters. The routes that act are in
queue_actions.py; the filter form is routes.py's."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from blueprints import paginate
from models import utcnow
from portal.services import assignment, queue, saved_filters

from . import queue_rows
from .forms import ReferralFilterForm
from .queue_forms import SaveFilterForm, TakeForm

FILTER_FIELDS = ("q", "status", "product", "org", "partner_type", "customer_class")


def view_asked() -> str:
    view = request.args.get("view")
    return view if view in queue.VIEWS else "all"


def order_asked() -> queue.QueueOrder:
    return queue.queue_order(request.args.get("sort"), request.args.get("dir"))


def params_of(form: ReferralFilterForm) -> dict[str, str]:
    """The page's filters, view and order as query-string parameters, each checked: a value not
    among a select's choices, or a search the form refused, is left out."""
    params = {}
    for name in FILTER_FIELDS:
        field = form[name]
        value = field.data
        if not value or field.errors:
            continue
        # Typed fields (the search, the partner's code) were checked by the form; a select's
        # value must be one of its choices.
        if hasattr(field, "choices") and value not in {str(c[0]) for c in field.choices}:
            continue
        params[name] = value
    if view_asked() != "all":
        params["view"] = view_asked()
    if request.args.get("sort") in queue.SORTS:
        order = order_asked()
        params.update(sort=order.key, dir=order.direction)
    return params


def render(form: ReferralFilterForm, filters: queue.ReferralFilters):
    view, order = view_asked(), order_asked()
    # One moment for the whole page: the waits shown, their colours and the counts agree.
    now = utcnow()
    sla = queue.sla_count(current_user, filters, now, view=view)
    page = paginate(queue.work_queue(current_user, filters, view=view, order=order), seek=True,
                    total=sla.waiting)
    may_take = assignment.may_take(current_user)
    return render_template(
        "bank/queue.html", form=form, page=page, view=view, order=order, sorts=queue.SORTS,
        rows=queue_rows.rows(page.items, now, viewer_id=current_user.id, may_take=may_take),
        sla=sla, sla_hours=sla_hours(), params=params_of(form),
        saved=saved_filters.list_for(current_user), save_form=SaveFilterForm(),
        take_form=TakeForm(), may_take=may_take, here=request.full_path.rstrip("?"))


def sla_hours() -> tuple[int, int]:
    amber, red = queue.sla_thresholds()
    return amber // 3600, red // 3600


def assignment_box(referral) -> dict:
    """What the referral page's assignment box (templates/bank/_assignment.html) offers."""
    lead = assignment.may_assign(current_user)
    return {
        "takeable": (referral.clock == "bank" and referral.status in queue.QUEUE_STATES),
        "may_take": assignment.may_take(current_user),
        "may_release": assignment.may_release(current_user, referral),
        "may_assign": lead,
        "officers": {str(u.id): u.name for u in assignment.officers()} if lead else {},
    }
