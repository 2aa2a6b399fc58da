"""Partner admission on the bank's face: the applications to a manager's branch subtree (another
branch's are not found), their review, and the partners' annual reviews (年审).

Channel managers and admins only; routes on the bank face's blueprint.
"""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from blueprints import Page, going_back_to, paginate, shown_again
from portal.i18n import lazy_gettext as _l
from portal.labels import APPLICATION_STATUSES, REVIEW_DUE_STATES, REVIEW_OUTCOMES
from portal.links import password_link
from portal.security import ctx, roles_required
from portal.services import admission, annual_reviews, audit, branches, partners, passwords

from .routes import bp

manager_required = roles_required("channel_manager", "admin")


class ApplicationFilterForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Length(max=100)],
                    render_kw={"placeholder": _l("Company, credit code or contact")})
    status = SelectField(_l("Status"), validate_choice=False)


class ReviewForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), validate_choice=False, render_kw={"required": True})
    reviewed_on = DateField(_l("Reviewed on"), validators=[Optional()])
    note = TextAreaField(_l("Internal note"), validators=[Length(max=annual_reviews.NOTE_MAX)],
                         render_kw={"rows": 4, "required": True})


def _load(application_id: int):
    application = admission.get_for(current_user, application_id)
    if application is None:
        abort(404)
    return application


def _locale() -> str:
    return str(get_locale() or "zh_CN")


# --- applications -------------------------------------------------------------------------------

@bp.route("/applications")
@manager_required
def applications():
    form = ApplicationFilterForm(formdata=request.args)
    form.status.choices = ([("", _("Open (waiting on the bank or the applicant)")),
                            ("all", _("All"))] + list(APPLICATION_STATUSES.items()))
    form.validate()
    page = paginate(admission.search(current_user, q=form.q.data, status=form.status.data))
    return render_template("bank/applications.html", form=form, page=page)


def _render(application, *, errors=None, typed=None, status=200):
    return render_template(
        "bank/application.html", a=application, errors=errors or {}, typed=typed or {},
        products=admission.product_names(application.products, _locale()),
        mail=passwords.mail_configured()), status


@bp.route("/applications/<int:application_id>")
@manager_required
def application(application_id: int):
    return _render(_load(application_id))


@bp.route("/applications/<int:application_id>/licence")
@manager_required
def application_licence(application_id: int):
    item = _load(application_id)
    audit.record(ctx(), "application.licence_download", item, sha256=item.licence_sha256)
    return send_file(admission.licence_path(item), mimetype=item.licence_content_type,
                     as_attachment=True, download_name=item.licence_filename)


@bp.route("/applications/<int:application_id>/request-info", methods=["POST"])
@manager_required
def application_request_info(application_id: int):
    item = _load(application_id)
    typed = request.form.to_dict()
    with going_back_to("bank.application", application_id=item.id), shown_again() as refusal:
        token = admission.request_info(ctx(), item, typed.get("message", ""))
        admission.send_email(item, link=_external_link("auth.apply_more", answer_token=token))
        flash(_("The applicant is asked by e-mail; the application waits on them."), "success")
        return redirect(url_for("bank.application", application_id=item.id))
    return _render(item, errors=refusal.fields, typed=typed, status=422)


def _external_link(endpoint: str, **values) -> str:
    """A link for an e-mail: the portal's address as people reach it (PORTAL_URL)."""
    path = url_for(endpoint, **values)
    return current_app.config["PORTAL_URL"].rstrip("/") + path


@bp.route("/applications/<int:application_id>/approve", methods=["POST"])
@manager_required
def application_approve(application_id: int):
    item = _load(application_id)
    with going_back_to("bank.application", application_id=item.id):
        org, admin, token = admission.approve(ctx(), item)
        if token is not None:
            passwords.send_reset_link(admin, password_link(token), invitation=True)
            flash(_("%(org)s is admitted (pending until it accepts its first agreement). Its "
                    "administrator %(email)s is invited by e-mail; the first agreement is "
                    "drafted.", org=org.name, email=admin.email), "success")
        else:
            flash(_("%(org)s is admitted (pending until it accepts its first agreement); the "
                    "first agreement is drafted. E-mail is not configured: give its "
                    "administrator a one-time password at the server: flask --app wsgi users "
                    "reset-password --email %(email)s", org=org.name, email=admin.email),
                  "warning")
    return redirect(url_for("bank.application", application_id=item.id))


@bp.route("/applications/<int:application_id>/decline", methods=["POST"])
@manager_required
def application_decline(application_id: int):
    item = _load(application_id)
    typed = request.form.to_dict()
    if typed.get("confirm") != "y":
        return _render(item, typed=typed, status=422, errors={
            "confirm": _("Tick the box to confirm that the application is declined.")})
    with going_back_to("bank.application", application_id=item.id), shown_again() as refusal:
        admission.decline(ctx(), item, typed.get("reason", ""))
        if passwords.mail_configured():
            admission.send_email(item)
            flash(_("The application is declined; the applicant is told by e-mail."), "success")
        else:
            flash(_("The application is declined. E-mail is not configured: tell the applicant "
                    "on %(mobile)s.", mobile=item.contact_mobile), "warning")
        return redirect(url_for("bank.application", application_id=item.id))
    return _render(item, errors=refusal.fields, typed=typed, status=422)


# --- annual reviews -----------------------------------------------------------------------------

REVIEW_VIEWS = {"": ("overdue", "due"), "overdue": ("overdue",), "due": ("due",),
                "all": ("overdue", "due", "ok")}


@bp.route("/annual-reviews", endpoint="annual_reviews")
@manager_required
def annual_reviews_page():
    view = request.args.get("view", "")
    view = view if view in REVIEW_VIEWS else ""
    branch = branches.visible_branch(current_user, request.args.get("branch"))
    rows = annual_reviews.schedule(current_user, branch=branch, q=request.args.get("q"),
                                   states=REVIEW_VIEWS[view])
    number = max(request.args.get("page", 1, type=int) or 1, 1)
    size = 25
    page = Page(rows[(number - 1) * size:number * size], number, size, len(rows),
                len(rows) > number * size, cap=len(rows) + 1)
    return render_template("bank/annual_reviews.html", page=page, view=view,
                           branch_choices=branches.choices(current_user, blank=_("All my "
                                                                                 "branches")),
                           branch=branch.code if branch else "", states=REVIEW_DUE_STATES)


@bp.route("/partners/<int:org_id>/annual-review", methods=["GET", "POST"])
@manager_required
def annual_review(org_id: int):
    org = partners.partner_org(org_id, current_user)
    if org is None:
        abort(404)
    form = ReviewForm()
    form.outcome.choices = [("", _("Choose…"))] + list(REVIEW_OUTCOMES.items())
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            with going_back_to("bank.annual_review", org_id=org.id), \
                    shown_again() as refusal:
                annual_reviews.record(ctx(), org, outcome=form.outcome.data,
                                      note=form.note.data, reviewed_on=form.reviewed_on.data)
                flash(_("The annual review is recorded; the next is due in a year."),
                      "success")
                return redirect(url_for("bank.annual_review", org_id=org.id))
            errors = refusal.fields
        status = 422
    return render_template("bank/annual_review.html", org=org, form=form, errors=errors,
                           due=annual_reviews.due_for(org), history=annual_reviews.history(org),
                           states=REVIEW_DUE_STATES), status
