"""The partner face: dashboard, referrals (intake, detail, documents, export) and the partner
administrator's user management. Every page shows the user's own organisation only; another
organisation's referral, document or user is simply not found (404)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import going_back_to, paginate, refused, shown_again
from blueprints.auth.account import send_password_link
from models import PARTNER_ROLES, Referral
from portal import labels
from portal.security import ctx, fresh_login_required, partner_required, roles_required
from portal.services import (
    accounts,
    disclosure,
    documents,
    lifecycle,
    partner_views,
    passwords,
    product_tools,
    referrals,
    sites,
)
from portal.services.errors import AlreadyRegistered, Forbidden, ValidationFailed
from portal.services.lifecycle import State
from portal.services.referral_intake import ASSET_KINDS

from .forms import FilterForm, ItemUploadForm, ReferralForm, UploadForm, UserForm

bp = Blueprint("partner", __name__)

partner_admin_required = roles_required("partner_admin")


def _locale() -> str:
    return str(get_locale() or "en")


def _referral(referral_id: int) -> Referral:
    """Load-then-authorize: the user's organisation's referral, or 404."""
    return referrals.get_for(current_user, referral_id)


def _version() -> int | None:
    return request.form.get("version", type=int)


# --- dashboard ---------------------------------------------------------------------------------

# The dashboard lists the longest-waiting requests; the rest are one click away in the list
# (a large partner has hundreds waiting, and the page is opened at every start of work).
WAITING_SHOWN = 10


@bp.route("/")
@partner_required
def dashboard():
    org_id = current_user.org_id
    return render_template(
        "partner/dashboard.html",
        counts=partner_views.status_counts(org_id),
        waiting=partner_views.waiting_on_partner(org_id, limit=WAITING_SHOWN),
        activity=partner_views.recent_activity(org_id),
        product_names=partner_views.product_names(_locale()),
        contacts=[disclosure.onsite_contact(p) for p in sites.onsite_for_org(org_id)],
        has_sites=bool(sites.of_org(org_id, active_only=True)),
    )


# --- referral list and export ------------------------------------------------------------------

def _filters() -> tuple[FilterForm, dict]:
    form = FilterForm(request.args)
    form.status.choices = [("", _("All statuses"))] + [
        (code, labels.PARTNER_STATES[code]) for code in partner_views.STATUS_GROUPS]
    form.product.choices = [("", _("All products"))] + list(
        partner_views.product_names(_locale()).items())
    status = form.status.data if form.status.data in partner_views.STATUS_GROUPS else None
    product = form.product.data if form.product.data in dict(form.product.choices) else None
    return form, {"q": form.q.data, "status": status or None, "product": product or None}


@bp.route("/referrals", endpoint="referrals")
@partner_required
def referral_list():
    form, filters = _filters()
    page = paginate(partner_views.org_referrals(current_user.org_id, **filters), seek=True)
    return render_template("partner/referrals.html", form=form, page=page,
                           filtered=any(filters.values()),
                           product_names=partner_views.product_names(_locale()))


@bp.route("/referrals.csv")
@partner_required
@fresh_login_required
def export_csv():
    _form, filters = _filters()
    lines = partner_views.csv_lines(partner_views.org_referrals(current_user.org_id, **filters))
    response = Response(lines, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="referrals-{current_user.org.code}.csv"')
    return response


# --- intake ------------------------------------------------------------------------------------

def _referral_form(offered) -> ReferralForm:
    form = ReferralForm()
    form.product.choices = [("", _("Choose a product"))] + [
        (p.code, p.display_name(_locale())) for p in offered]
    form.industry.choices = [("", _("Choose an industry"))] + list(labels.INDUSTRIES.items())
    # Only the organisation's own active sites are offered; the intake refuses any other.
    form.site.choices = [("", _("None, or not through a site"))] + sites.choices(
        current_user.org_id)
    return form


def _chosen_product(form: ReferralForm, offered):
    """The product the form is filled for (posted, or named in the link: ?product=)."""
    code = form.product.data or request.args.get("product")
    product = next((p for p in offered if p.code == code), None)
    if product is not None and not form.is_submitted():
        form.product.data = product.code
    return product


@bp.route("/referrals/new", methods=["GET", "POST"])
@partner_required
def new_referral():
    # Only what the organisation's agreements in force cover is offered; the service refuses
    # anything else posted all the same (agreements.check_product_covered).
    offered = product_tools.covered(current_user.org)
    form = _referral_form(offered)
    chosen = _chosen_product(form, offered)
    notice_version = current_app.config["CONSENT_NOTICE_VERSION"]
    errors: dict = {}
    message = None
    status = 200
    if form.validate_on_submit():
        with shown_again(ValidationFailed, AlreadyRegistered, Forbidden) as refusal:
            result = referrals.submit(ctx(), current_user.org, form.intake_data(notice_version))
            if result.held:
                flash(_("Referral %(id)d received. The bank reviews it before it enters the "
                        "queue.", id=result.referral.id), "warning")
            elif result.conflict:
                flash(_("This buyer is already registered with the bank; a channel manager will "
                        "review it"), "warning")
            else:
                flash(_("Referral %(id)d submitted.", id=result.referral.id), "success")
            return redirect(url_for(".referral", referral_id=result.referral.id))
        if isinstance(refusal.error, ValidationFailed):
            errors, status = refusal.fields, 422
        else:
            message, status = refusal.message, refusal.error.status
    elif form.is_submitted():
        status = 422
    known = set(ReferralForm.INTAKE_FIELDS) | {"consent"}
    other_errors = [v for k, v in errors.items() if k not in known]
    return render_template("partner/new_referral.html", form=form, errors=errors,
                           other_errors=other_errors, message=message,
                           notice_version=notice_version, offered=offered,
                           asset_kinds={p.code: p.asset_kind for p in offered},
                           has_sites=len(form.site.choices) > 1,
                           needs_asset=bool(chosen and chosen.asset_kind in ASSET_KINDS)), status


# --- one referral ------------------------------------------------------------------------------

def _upload_form() -> UploadForm:
    form = UploadForm()
    form.kind.choices = [("", _("Choose a document type"))] + list(labels.DOCUMENT_KINDS.items())
    return form


def _render_referral(referral: Referral, upload_form: UploadForm | None = None,
                     upload_errors: dict | None = None, status: int = 200,
                     item_errors: dict | None = None):
    upload_form = upload_form or _upload_form()
    still_missing = partner_views.outstanding(referral)
    outstanding_kinds = list(dict.fromkeys(s.kind for s in still_missing))
    role = current_user.role
    return render_template(
        "partner/referral.html",
        referral=referral,
        product_name=referral.product.display_name(_locale()),
        timeline=partner_views.timeline(referral),
        terms=partner_views.loan_terms(referral),
        checklist=partner_views.checklist(referral),
        uploads=partner_views.uploads(referral),
        outstanding=outstanding_kinds,
        still_missing=[disclosure.item_notice(s) for s in still_missing],
        upload_form=upload_form,
        upload_errors=upload_errors or {},
        item_form=ItemUploadForm(formdata=None),
        item_errors=item_errors or {},
        can_upload=State(referral.status) not in lifecycle.TERMINAL,
        can_resubmit=referral.status == State.documents_requested.value
        and lifecycle.allowed(referral.status, State.under_review.value, role),
        can_withdraw=lifecycle.allowed(referral.status, State.withdrawn.value, role),
        bank_seconds=referrals.bank_clock_seconds(referral),
        partner_seconds=referrals.partner_clock_seconds(referral),
        site=disclosure.site(referral.site) if referral.site else None,
    ), status


@bp.route("/referrals/<int:referral_id>")
@partner_required
def referral(referral_id: int):
    return _render_referral(_referral(referral_id))


@bp.route("/referrals/<int:referral_id>/documents", methods=["POST"])
@partner_required
def upload(referral_id: int):
    referral = _referral(referral_id)
    form = _upload_form()
    file = request.files.get("file")
    data = file.read() if file else b""
    with going_back_to(".referral", referral_id=referral.id), shown_again() as refusal:
        document = documents.upload(ctx(), referral, form.kind.data or "",
                                    file.filename if file else "", data)
        flash(_("%(kind)s uploaded: %(name)s. The bank will review it.",
                kind=labels.DOCUMENT_KINDS.get(document.kind, document.kind),
                name=document.filename), "success")
        return redirect(url_for(".referral", referral_id=referral.id))
    return _render_referral(referral, form, refusal.fields, 422)


@bp.route("/referrals/<int:referral_id>/conditions/<int:item_id>/files", methods=["POST"])
@partner_required
def upload_item(referral_id: int, item_id: int):
    """Several files (chosen, or photos taken) for one item the bank asked for. A file the
    checks refuse is left out with its reason and the others are kept; when every file is
    refused nothing is written and the page says why, on that item."""
    request.max_content_length = documents.item_request_limit()
    referral = _referral(referral_id)
    item = documents.item_of(referral, item_id)  # another referral's item: 404
    form = ItemUploadForm()
    if not form.validate_on_submit():
        raise refused(_("The form has expired. Reload the page and try again."),
                      ".referral", referral_id=referral.id)
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files")]
    with going_back_to(".referral", referral_id=referral.id), shown_again() as refusal:
        stored, left_out = documents.upload_files(ctx(), referral, item, files,
                                                  replace=form.replace.data)
        name = item.label or labels.DOCUMENT_KINDS.get(item.kind, item.kind)
        flash(ngettext("%(num)d file uploaded for %(item)s. The bank will review it.",
                       "%(num)d files uploaded for %(item)s. The bank will review them.",
                       len(stored), item=name), "success")
        for filename, why in left_out:
            flash(_("%(name)s was not uploaded: %(why)s", name=filename, why=why), "danger")
        return redirect(url_for(".referral", referral_id=referral.id))
    return _render_referral(referral, item_errors={item.id: refusal.fields.get("files")},
                            status=422)


def _move(referral_id: int, to: str, done_message: str):
    referral = _referral(referral_id)
    with going_back_to(".referral", referral_id=referral_id):
        referrals.transition(ctx(), referral, to, expected_version=_version())
    flash(done_message, "success")
    return redirect(url_for(".referral", referral_id=referral_id))


@bp.route("/referrals/<int:referral_id>/resubmit", methods=["POST"])
@partner_required
def resubmit(referral_id: int):
    return _move(referral_id, State.under_review.value,
                 _("Sent back to the bank. The bank's clock runs again."))


@bp.route("/referrals/<int:referral_id>/withdraw", methods=["POST"])
@partner_required
def withdraw(referral_id: int):
    return _move(referral_id, State.withdrawn.value, _("The referral has been withdrawn."))


@bp.route("/referrals/<int:referral_id>/documents/<int:document_id>")
@partner_required
def document(referral_id: int, document_id: int):
    doc = partner_views.document_of(_referral(referral_id), document_id)
    path = documents.path_of(doc)
    if not path.is_file():
        abort(404)
    partner_views.record_download(ctx(), doc)
    response = send_file(path, mimetype=doc.content_type, as_attachment=True,
                         download_name=doc.filename, conditional=False, etag=False)
    response.headers["Cache-Control"] = "no-store, private"
    return response


# --- the partner administrator's users ---------------------------------------------------------

def _user_form() -> UserForm:
    form = UserForm()
    form.role.choices = [(r, labels.ROLES[r]) for r in ("partner_agent", "partner_admin")]
    return form


def _render_users(form: UserForm | None = None, errors: dict | None = None,
                  status: int = 200):
    page = paginate(partner_views.org_users(current_user.org_id))
    return render_template("partner/users.html", page=page, form=form or _user_form(),
                           errors=errors or {}, mail=passwords.mail_configured()), status


@bp.route("/users", methods=["GET", "POST"])
@partner_admin_required
@fresh_login_required(methods=("POST",))
def users():
    if request.method == "GET":
        return _render_users()
    form = _user_form()
    if not form.validate_on_submit():
        return _render_users(form, status=422)
    role = form.role.data if form.role.data in PARTNER_ROLES else ""
    with shown_again(ValidationFailed, Forbidden) as refusal:
        # No password for the partner administrator to see: the user chooses one through a
        # link by e-mail, or the bank gives a one-time password.
        user, _none = accounts.create_user(ctx(), email=form.email.data or "", role=role,
                                           org=current_user.org, name=form.name.data or None,
                                           one_time=False)
        with going_back_to(".users"):
            sent = send_password_link(user, invitation=True)
        flash(_("User %(email)s created. A link to choose a password was sent to them.",
                email=user.email) if sent else
              _("User %(email)s created. E-mail is not configured: ask the bank's "
                "administrators to give them a one-time password.", email=user.email),
              "success")
        return redirect(url_for(".users"))
    if isinstance(refusal.error, Forbidden):
        flash(str(refusal.message), "danger")
        return _render_users(form, status=403)
    return _render_users(form, refusal.fields, status=422)


def _org_user(user_id: int):
    return partner_views.org_user(current_user.org_id, user_id)


def _set_active(user_id: int, active: bool):
    user = _org_user(user_id)
    with going_back_to(".users"):
        accounts.set_user_active(ctx(), user, active)
    flash(_("%(email)s can log in again.", email=user.email) if active
          else _("%(email)s is deactivated and logged out.", email=user.email), "success")
    return redirect(url_for(".users"))


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@partner_admin_required
@fresh_login_required
def deactivate_user(user_id: int):
    return _set_active(user_id, False)


@bp.route("/users/<int:user_id>/activate", methods=["POST"])
@partner_admin_required
@fresh_login_required
def activate_user(user_id: int):
    return _set_active(user_id, True)


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@partner_admin_required
@fresh_login_required
def reset_password(user_id: int):
    user = _org_user(user_id)
    with going_back_to(".users"):
        send_password_link(user)
    flash(_("A link to choose a new password was sent to %(email)s. Their old password and "
            "sessions no longer work.", email=user.email), "success")
    return redirect(url_for(".users"))
