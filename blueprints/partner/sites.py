"""The partner's own projects, showrooms and offices, read only: each with its quota use and
who from the bank is on site there, and on which days. The bank's channel managers keep them."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import select

from blueprints import paginate
from models import Referral
from portal.security import partner_required
from portal.services import disclosure, sites

from .routes import bp


@bp.route("/sites")
@partner_required
def sites_page():
    own = sites.of_org(current_user.org_id)
    return render_template(
        "partner/sites.html", sites=[disclosure.site(s) for s in own],
        usage=sites.usage_of(own), counts=sites.referral_counts([s.id for s in own]),
        contacts=[disclosure.onsite_contact(p) for p in sites.onsite_for_org(
            current_user.org_id)])


@bp.route("/sites/<int:site_id>")
@partner_required
def site(site_id: int):
    found = sites.get_for(current_user, site_id)  # another organisation's: 404
    page = paginate(select(Referral).where(Referral.site_id == found.id,
                                           Referral.org_id == current_user.org_id)
                    .order_by(Referral.submitted_at.desc(), Referral.id.desc()))
    return render_template(
        "partner/site.html", site=disclosure.site(found), usage=sites.usage(found), page=page,
        contacts=[disclosure.onsite_contact(p) for p in found.staff if p.user.active])
