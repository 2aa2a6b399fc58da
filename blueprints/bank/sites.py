"""A partner's projects, showrooms and offices (channel managers and administrators of the
partner's branch tree): the list with each site's quota use, a site's page with its referrals
and on-site staff, a new site, a site's details, and placing staff on site."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select

from blueprints import going_back_to, paginate, refused, shown_again
from models import PartnerSite, Referral, User
from portal.extensions import db
from portal.security import ctx
from portal.services import partners, sites
from portal.services.errors import ValidationFailed

from .forms import ActionForm
from .routes import bp
from .scorecards import manager_required
from .site_forms import DAYS, SiteFilterForm, SiteForm, StaffForm


def _org(org_id: int):
    org = partners.partner_org(org_id, current_user)
    if org is None:
        abort(404)
    return org


def _site(site_id: int) -> PartnerSite:
    site = sites.get_for(current_user, site_id)
    if site.org.is_bank:
        abort(404)
    return site


def _render_list(org, form, errors=None, status=200):
    filters = SiteFilterForm(formdata=request.args)
    query = select(PartnerSite).where(PartnerSite.org_id == org.id)
    text = (filters.q.data or "").strip()
    if text and filters.validate():
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(PartnerSite.name.ilike(like, escape="\\"),
                                PartnerSite.code.ilike(like, escape="\\")))
    page = paginate(query.order_by(PartnerSite.active.desc(), PartnerSite.name, PartnerSite.id))
    return render_template(
        "bank/sites.html", org=org, page=page, filters=filters, filtered=bool(text),
        usage=sites.usage_of(page.items), counts=sites.referral_counts([s.id for s in page.items]),
        form=form, errors=errors or {}, warnings=sites.warnings(org.id),
        can_manage=sites.may_manage(current_user, org)), status


@bp.route("/partners/<int:org_id>/sites", methods=["GET", "POST"])
@manager_required
def partner_sites(org_id: int):
    org = _org(org_id)
    form = SiteForm()
    if request.method == "GET":
        return _render_list(org, form)
    if not form.validate_on_submit():
        return _render_list(org, form, status=422)
    with shown_again() as refusal:
        site = sites.create(ctx(), org, form.site_data())
        flash(_("Site %(code)s created.", code=site.code), "success")
        return redirect(url_for("bank.site", site_id=site.id))
    return _render_list(org, form, errors=refusal.error.fields, status=422)


def _staff_form(site: PartnerSite) -> StaffForm:
    form = StaffForm()
    form.user_id.choices = [("", _("Choose a member of staff"))] + [
        (str(u.id), f"{u.name} ({u.email})") for u in sites.assignable_staff(current_user,
                                                                             site.org)]
    return form


def _render_site(site: PartnerSite, staff_form=None, staff_errors=None, days=None, status=200):
    page = paginate(select(Referral).where(Referral.site_id == site.id)
                    .order_by(Referral.submitted_at.desc(), Referral.id.desc()))
    return render_template(
        "bank/site.html", site=site, org=site.org, usage=sites.usage(site), page=page,
        staff_form=staff_form or _staff_form(site), staff_errors=staff_errors or {},
        chosen_days=days or [], days=DAYS, action_form=ActionForm(),
        can_manage=sites.may_manage(current_user, site.org)), status


@bp.route("/sites/<int:site_id>")
@manager_required
def site(site_id: int):
    return _render_site(_site(site_id))


@bp.route("/sites/<int:site_id>/edit", methods=["GET", "POST"])
@manager_required
def edit_site(site_id: int):
    site = _site(site_id)
    form = SiteForm(obj=site)
    if request.method == "GET" and site.quota_amount is not None:
        form.quota_amount.data = f"{site.quota_amount:f}"
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            with shown_again() as refusal:
                sites.update(ctx(), site, form.site_data())
                flash(_("Site %(code)s saved.", code=site.code), "success")
                return redirect(url_for("bank.site", site_id=site.id))
            errors = refusal.error.fields
        status = 422
    return render_template("bank/site_form.html", site=site, org=site.org, form=form,
                           errors=errors), status


@bp.route("/sites/<int:site_id>/staff", methods=["POST"])
@manager_required
def assign_site_staff(site_id: int):
    site = _site(site_id)
    form = _staff_form(site)
    days = [d for d in request.form.getlist("days") if d in DAYS]
    if not form.validate_on_submit():
        return _render_site(site, form, days=days, status=422)
    user = db.session.get(User, form.user_id.data) if (form.user_id.data or "").isdigit() \
        else None
    with shown_again(ValidationFailed) as refusal:
        placed = sites.assign(ctx(), site, user, days, form.work_phone.data)
        flash(_("%(name)s is on site at %(site)s.", name=placed.user.name, site=site.name),
              "success")
        return redirect(url_for("bank.site", site_id=site.id))
    return _render_site(site, form, staff_errors=refusal.error.fields, days=days, status=422)


@bp.route("/sites/<int:site_id>/staff/<int:assignment_id>/remove", methods=["POST"])
@manager_required
def remove_site_staff(site_id: int, assignment_id: int):
    site = _site(site_id)
    if not ActionForm().validate_on_submit():
        raise refused(_("The form has expired. Reload the page and try again."), "bank.site",
                      site_id=site.id)
    with going_back_to("bank.site", site_id=site.id):
        sites.unassign(ctx(), site, assignment_id)
    flash(_("Removed from the site."), "success")
    return redirect(url_for("bank.site", site_id=site.id))
