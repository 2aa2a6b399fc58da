"""The bank's agreement pages (channel managers and admins): list, draft, issue, renew,
terminate; and the agreement templates (admins): list, read any version, edit = new version.

Added to the bank blueprint (imported by register_blueprints).
"""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from blueprints import going_back_to, paginate, shown_again
from blueprints.auth.forms import ActionForm
from models import Agreement, AgreementTemplate, Organization, Product
from portal import labels
from portal.extensions import db
from portal.security import ctx, fresh_login_required, roles_required
from portal.services import agreements as service
from portal.services import partners

from .agreement_forms import AgreementForm, ChooseOrgForm, TemplateForm, TerminateForm
from .routes import bp

manager_required = roles_required("channel_manager", "admin")
admin_required = roles_required("admin")


def _agreement(agreement_id: int) -> Agreement:
    return service.get_for(current_user, agreement_id)


def _product_choices() -> list[tuple[str, str]]:
    locale = str(get_locale() or "en")
    return [(p.code, p.display_name(locale)) for p in db.session.scalars(
        select(Product).where(Product.active.is_(True)).order_by(Product.code))]


# --- list ---------------------------------------------------------------------------------------

@bp.route("/agreements")
@manager_required
def agreements():
    args = request.args
    scope = args.get("scope") or ("mine" if current_user.role == "channel_manager" else "all")
    query = service.search(
        service.visible_agreements(current_user),
        status=args.get("status") or None, org_id=args.get("org_id", type=int),
        q=args.get("q") or None,
        manager_id=current_user.id if scope == "mine" else None,
        expiring_days=30 if args.get("expiring") else None,
    ).order_by(Agreement.created_at.desc(), Agreement.id.desc())
    page = paginate(query)
    return render_template("agreements/bank_list.html", page=page, scope=scope,
                           orgs=partners.partner_orgs(current_user), filters=args,
                           names=service.product_names(str(get_locale() or "en")))


# --- draft, edit, issue, renew, terminate -------------------------------------------------------

def _agreement_form(org: Organization, form: AgreementForm) -> AgreementForm:
    form.template_id.choices = [
        (str(t.id), f"{t.title} · v{t.version}") for t in service.templates_for(org)]
    form.products.choices = _product_choices()
    return form


def _prefill(form: AgreementForm, values: dict, template_id=None) -> None:
    form.template_id.data = str(template_id) if template_id else form.template_id.data
    form.products.data = list(values.get("products") or [])
    form.projects.data = "\n".join(values.get("projects") or [])
    form.stage_guarantee.data = values.get("stage_guarantee") or ""
    form.brands.data = "\n".join(values.get("brands") or [])
    form.onsite_staff.data = values.get("onsite_staff") or ""
    form.bank_sla_hours.data = str(values.get("bank_sla_hours") or "")
    form.partner_doc_days.data = str(values.get("partner_doc_days") or "")
    form.effective_from.data = str(values.get("effective_from") or "")
    form.expires_on.data = str(values.get("expires_on") or "")


def _render_form(org, form, errors=None, agreement=None, renewing=None, status=200):
    return render_template("agreements/bank_form.html", org=org, form=form, errors=errors or {},
                           agreement=agreement, renewing=renewing,
                           family=service.family_of(org)), status


@bp.route("/agreements/new", methods=["GET", "POST"])
@manager_required
def new_agreement():
    org = partners.partner_org(request.args.get("org_id", type=int) or 0, current_user)
    if org is None:
        chooser = ChooseOrgForm(request.args)
        chooser.org_id.choices = [("", "—")] + [(str(o.id), f"{o.name} ({o.code})")
                                                for o in partners.partner_orgs(current_user)]
        return render_template("agreements/bank_choose_org.html", form=chooser)
    form = _agreement_form(org, AgreementForm())
    if request.method == "GET":
        today = service.local_today()
        template = service.default_template_for(org)
        _prefill(form, {"products": [], "bank_sla_hours": 72, "partner_doc_days": 5,
                        "effective_from": today,
                        "expires_on": today + timedelta(days=364)},
                 template_id=template.id if template else None)
        return _render_form(org, form)
    if not form.validate_on_submit():
        return _render_form(org, form, status=422)
    with shown_again() as refusal:
        agreement = service.draft(ctx(), org, form.data_for_service())
        flash(_("Draft %(number)s saved. Read it, then issue it to the partner.",
                number=agreement.number), "success")
        return redirect(url_for("bank.agreement", agreement_id=agreement.id))
    return _render_form(org, form, errors=refusal.error.fields, status=422)


@bp.route("/agreements/<int:agreement_id>")
@manager_required
def agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    return render_template(
        "agreements/bank_detail.html", agreement=agreement, doc=service.document(agreement),
        versions=service.history(agreement), successor=service.successor(agreement),
        terminate_form=TerminateForm(), names=service.product_names(str(get_locale() or "en")))


@bp.route("/agreements/<int:agreement_id>/pdf")
@manager_required
def agreement_pdf(agreement_id: int):
    agreement = _agreement(agreement_id)
    rendered = service.pdf_for(agreement)
    response = send_file(BytesIO(rendered.data), mimetype="application/pdf", as_attachment=True,
                         download_name=f"{agreement.number}-v{agreement.version}.pdf",
                         etag=rendered.sha256, max_age=0)
    response.headers["X-Content-SHA256"] = rendered.sha256
    return response


@bp.route("/agreements/<int:agreement_id>/edit", methods=["GET", "POST"])
@manager_required
def edit_agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    if agreement.status != "draft":
        flash(_("Only a draft can be changed; renew or terminate it instead."), "warning")
        return redirect(url_for("bank.agreement", agreement_id=agreement.id))
    form = _agreement_form(agreement.org, AgreementForm())
    if request.method == "GET":
        _prefill(form, service.renewal_defaults(agreement) | {
            "effective_from": agreement.effective_from, "expires_on": agreement.expires_on},
            template_id=agreement.template_id)
        return _render_form(agreement.org, form, agreement=agreement)
    if not form.validate_on_submit():
        return _render_form(agreement.org, form, agreement=agreement, status=422)
    with shown_again() as refusal:
        service.update_draft(ctx(), agreement, form.data_for_service())
        flash(_("Draft saved."), "success")
        return redirect(url_for("bank.agreement", agreement_id=agreement.id))
    return _render_form(agreement.org, form, errors=refusal.error.fields, agreement=agreement,
                        status=422)


@bp.route("/agreements/<int:agreement_id>/issue", methods=["POST"])
@manager_required
@fresh_login_required
def issue_agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    with going_back_to("bank.agreement", agreement_id=agreement_id):
        service.issue(ctx(), agreement)
    flash(_("Agreement %(number)s version %(version)d issued. The partner's administrator can "
            "now read and accept it.", number=agreement.number, version=agreement.version),
          "success")
    return redirect(url_for("bank.agreement", agreement_id=agreement.id))


@bp.route("/agreements/<int:agreement_id>/renew", methods=["GET", "POST"])
@manager_required
def renew_agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    org = agreement.org
    form = _agreement_form(org, AgreementForm())
    if request.method == "GET":
        latest = service.latest_template(agreement.template.key)
        _prefill(form, service.renewal_defaults(agreement),
                 template_id=latest.id if latest and latest.family == service.family_of(org)
                 else None)
        return _render_form(org, form, renewing=agreement)
    if not form.validate_on_submit():
        return _render_form(org, form, renewing=agreement, status=422)
    with going_back_to("bank.agreement", agreement_id=agreement_id), shown_again() as refusal:
        renewal = service.renew(ctx(), agreement, form.data_for_service())
        flash(_("Renewal drafted as version %(version)d. Issue it for the partner to accept; it "
                "supersedes version %(old)d when it becomes active.", version=renewal.version,
                old=agreement.version), "success")
        return redirect(url_for("bank.agreement", agreement_id=renewal.id))
    return _render_form(org, form, errors=refusal.error.fields, renewing=agreement, status=422)


@bp.route("/agreements/<int:agreement_id>/terminate", methods=["POST"])
@manager_required
def terminate_agreement(agreement_id: int):
    agreement = _agreement(agreement_id)
    form = TerminateForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.confirm.data:
        flash(_("Tick the box to confirm the termination."), "warning")
        return redirect(url_for("bank.agreement", agreement_id=agreement.id))
    with going_back_to("bank.agreement", agreement_id=agreement_id):
        service.terminate(ctx(), agreement, form.reason.data, notice=form.notice.data)
    flash(_("Agreement %(number)s version %(version)d terminated.", number=agreement.number,
            version=agreement.version), "success")
    return redirect(url_for("bank.agreement", agreement_id=agreement.id))


# --- templates (admins) -------------------------------------------------------------------------

@bp.route("/agreement-templates")
@admin_required
def agreement_templates():
    templates = service.current_templates()
    return render_template("agreements/templates.html", templates=templates)


@bp.route("/agreement-templates/<int:template_id>")
@admin_required
def agreement_template(template_id: int):
    template = db.session.get(AgreementTemplate, template_id) or abort(404)
    return render_template("agreements/template_detail.html", template=template,
                           versions=service.template_versions(template.key))


def _template_form(form: TemplateForm) -> TemplateForm:
    form.family.choices = list(labels.PARTNER_FAMILIES.items())
    form.product_code.choices = [("", "—")] + _product_choices()
    return form


@bp.route("/agreement-templates/<int:template_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_agreement_template(template_id: int):
    template = db.session.get(AgreementTemplate, template_id) or abort(404)
    form = _template_form(TemplateForm())
    if request.method == "GET":
        form.title.data, form.body.data = template.title, template.body
    errors = {}
    if form.validate_on_submit():
        with shown_again() as refusal:
            new = service.edit_template(ctx(), template, body=form.body.data,
                                        title=form.title.data, note=form.note.data)
            flash(_("Saved as version %(version)d. Agreements already drafted keep the version "
                    "they were drafted with.", version=new.version), "success")
            return redirect(url_for("bank.agreement_template", template_id=new.id))
        errors = refusal.error.fields
    status = 422 if request.method == "POST" else 200
    return render_template("agreements/template_form.html", form=form, template=template,
                           errors=errors), status


@bp.route("/agreement-templates/new", methods=["GET", "POST"])
@admin_required
def new_agreement_template():
    form = _template_form(TemplateForm())
    if request.method == "GET":
        from portal.services.agreements.defaults import DEFAULT_BODY

        form.body.data = DEFAULT_BODY
    errors = {}
    if form.validate_on_submit():
        with shown_again() as refusal:
            new = service.create_template(ctx(), key=form.key.data, family=form.family.data,
                                          title=form.title.data, body=form.body.data,
                                          product_code=form.product_code.data or None)
            flash(_("Template %(key)s created.", key=new.key), "success")
            return redirect(url_for("bank.agreement_template", template_id=new.id))
        errors = refusal.error.fields
    status = 422 if request.method == "POST" else 200
    return render_template("agreements/template_form.html", form=form, template=None,
                           errors=errors), status
