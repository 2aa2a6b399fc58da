"""The partner's agreement pages: list, read, download the PDF, accept (partner admins).

Added to the partner blueprint (imported by register_blueprints). Another organisation's
agreement or PDF is simply not found (404), and so is a draft.
"""

from __future__ import annotations

from io import BytesIO

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate
from models import Agreement
from portal.security import ctx, partner_required, roles_required
from portal.services import agreements as service
from portal.services import disclosure

from .agreement_forms import AcceptForm
from .routes import bp

partner_admin_required = roles_required("partner_admin")


def _agreement(agreement_id: int) -> Agreement:
    """Load-then-authorize: the user's organisation's agreement (not a draft), or 404."""
    return service.get_for(current_user, agreement_id)


def _names() -> dict[str, str]:
    return service.product_names(str(get_locale() or "en"))


@bp.app_context_processor
def _agreement_helpers():
    def agreements_expiring_soon(days: int = 30):
        """For the dashboards: agreements of the current user's scope ending within `days`."""
        if not current_user.is_authenticated:
            return []
        return service.expiring_soon(current_user._get_current_object(), days)

    def issued_renewal(agreement):
        """The renewal the bank has issued for this agreement and the partner may now open and
        accept (never a draft: drafts are the bank's own)."""
        renewal = service.successor(agreement)
        return renewal if renewal is not None and renewal.status == "issued" else None

    return {"agreements_expiring_soon": agreements_expiring_soon,
            "issued_renewal": issued_renewal}


@bp.route("/agreements")
@partner_required
def agreements():
    query = service.visible_agreements(current_user).order_by(
        Agreement.number, Agreement.version.desc())
    page = paginate(query)
    return render_template("agreements/partner_list.html", page=page, names=_names())


@bp.route("/agreements/<int:agreement_id>")
@partner_required
def agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    versions = [a for a in service.history(agreement) if a.status != "draft"]
    form = AcceptForm(pdf_sha256=agreement.pdf_sha256)
    return render_template("agreements/partner_detail.html", agreement=agreement,
                           view=disclosure.agreement_terms(agreement),
                           doc=service.document(agreement), versions=versions, form=form,
                           names=_names())


@bp.route("/agreements/<int:agreement_id>/pdf")
@partner_required
def agreement_pdf(agreement_id: int):
    agreement = _agreement(agreement_id)
    return _send_pdf(agreement)


@bp.route("/agreements/<int:agreement_id>/accept", methods=["POST"])
@partner_admin_required
def accept_agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.confirm.data:
        flash(_("Tick the box to confirm that you accept the agreement."), "warning")
        return redirect(url_for("partner.agreement", agreement_id=agreement.id))
    with going_back_to("partner.agreement", agreement_id=agreement_id):
        acceptance = service.accept(ctx(), agreement, pdf_sha256=form.pdf_sha256.data or None,
                                    user_agent=request.user_agent.string)
    flash(_("You accepted agreement %(number)s, version %(version)d. SHA-256 of the accepted "
            "PDF: %(sha)s", number=agreement.number, version=agreement.version,
            sha=acceptance.pdf_sha256), "success")
    return redirect(url_for("partner.agreement", agreement_id=agreement.id))


def _send_pdf(agreement: Agreement):
    rendered = service.pdf_for(agreement)
    response = send_file(BytesIO(rendered.data), mimetype="application/pdf", as_attachment=True,
                         download_name=f"{agreement.number}-v{agreement.version}.pdf",
                         etag=rendered.sha256, max_age=0)
    response.headers["X-Content-SHA256"] = rendered.sha256
    return response
