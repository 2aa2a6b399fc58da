"""Customers the bank referred to the partner: the list, a customer's page, and the partner's
answers (accept, decline with a reason, the outcome). Another organisation's lead is not found
(404); the bank's internal note is never shown (customer_leads.partner_view)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, shown_again
from models import CustomerLead
from portal.security import ctx, partner_required
from portal.services import customer_leads

from .routes import bp


@bp.app_context_processor
def _lead_helpers():
    def leads_waiting() -> int:
        if not current_user.is_authenticated or not current_user.is_partner:
            return 0
        return customer_leads.waiting_count(current_user._get_current_object())

    return {"leads_waiting": leads_waiting}


def _lead(lead_id: int) -> CustomerLead:
    return customer_leads.get_for(current_user, lead_id)


@bp.route("/leads")
@partner_required
def leads():
    q = (request.args.get("q") or "").strip()[:100]
    status = request.args.get("status", "")
    page = paginate(customer_leads.search(current_user, q=q, status=status))
    rows = [customer_leads.partner_view(lead) for lead in page.items]
    return render_template("partner/leads.html", page=page, rows=rows, q=q, status=status)


def _render(lead: CustomerLead, *, errors=None, typed=None, status=200):
    return render_template("partner/lead.html", lead=customer_leads.partner_view(lead),
                           errors=errors or {}, typed=typed or {}), status


@bp.route("/leads/<int:lead_id>")
@partner_required
def lead(lead_id: int):
    return _render(_lead(lead_id))


@bp.route("/leads/<int:lead_id>/accept", methods=["POST"])
@partner_required
def accept_lead(lead_id: int):
    item = _lead(lead_id)
    with going_back_to(".lead", lead_id=item.id):
        customer_leads.accept(ctx(), item)
    flash(_("Accepted: the customer's mobile is shown; the bank is told."), "success")
    return redirect(url_for(".lead", lead_id=item.id))


def _answer(lead_id: int, answer, done: str):
    """A typed answer (decline, outcome): saved and back to the page, or shown again."""
    item = _lead(lead_id)
    typed = request.form.to_dict()
    with going_back_to(".lead", lead_id=item.id), shown_again() as refusal:
        answer(ctx(), item, typed)
        flash(done, "success")
        return redirect(url_for(".lead", lead_id=item.id))
    return _render(item, errors=refusal.fields, typed=typed, status=422)


@bp.route("/leads/<int:lead_id>/decline", methods=["POST"])
@partner_required
def decline_lead(lead_id: int):
    return _answer(lead_id, customer_leads.decline, _("Declined; the bank is told why."))


@bp.route("/leads/<int:lead_id>/outcome", methods=["POST"])
@partner_required
def lead_outcome(lead_id: int):
    return _answer(lead_id, customer_leads.report, _("Outcome saved; the bank is told."))
