"""Customers the bank refers to partners, on the bank's side: the list of its leads, a new one
(with the customer's consent), and a lead's page with the partner's answers. Branch-scoped: a
lead to another branch's partner is not found (404)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, shown_again
from portal.security import bank_required, ctx
from portal.services import customer_leads, partners

from .routes import bp


def _partner_choices() -> dict[str, str]:
    return {str(o.id): f"{o.name} ({o.code})" for o in partners.partner_orgs(current_user)
            if o.can_submit}


@bp.route("/leads")
@bank_required
def leads():
    q = (request.args.get("q") or "").strip()[:100]
    status = request.args.get("status", "")
    org = request.args.get("org", type=int)
    page = paginate(customer_leads.search(current_user, q=q, status=status, org_id=org))
    return render_template("bank/leads.html", page=page, q=q, status=status, org=org)


def _render_new(typed: dict, errors: dict | None = None, status: int = 200):
    return render_template("bank/lead_new.html", typed=typed, errors=errors or {},
                           partner_choices=_partner_choices(),
                           needs=customer_leads.NEEDS,
                           methods=customer_leads.CONSENT_METHODS), status


@bp.route("/leads/new", methods=["GET", "POST"])
@bank_required
def new_lead():
    if request.method == "GET":
        return _render_new({"org_id": request.args.get("org", "")})
    typed = request.form.to_dict()
    org_id = typed.get("org_id", "")
    if not org_id.isdigit():
        return _render_new(typed, {"org_id": _("Choose the partner to refer the customer to.")},
                           422)
    org = partners.partner_org(int(org_id), current_user)
    if org is None:  # another branch's partner is not found, as on every page
        abort(404)
    with going_back_to("bank.new_lead"), shown_again() as refusal:
        lead = customer_leads.create(ctx(), org, typed)
        flash(_("The customer is referred to %(name)s; its users are told.",
                name=lead.org.name), "success")
        return redirect(url_for("bank.lead", lead_id=lead.id))
    return _render_new(typed, refusal.fields, 422)


@bp.route("/leads/<int:lead_id>")
@bank_required
def lead(lead_id: int):
    item = customer_leads.get_for(current_user, lead_id)
    return render_template("bank/lead.html", lead=item)
