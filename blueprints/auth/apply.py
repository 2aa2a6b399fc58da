"""The public application to become a partner (准入), and the applicant's answer when the bank
asks for more (a link from the e-mail). No login; rate limited like every public form; CSRF."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    widgets,
)
from wtforms.validators import Length

from blueprints import shown_again
from portal.extensions import limiter
from portal.i18n import lazy_gettext as _l
from portal.labels import PARTNER_TYPES
from portal.security import ctx
from portal.services import admission
from portal.services.errors import Forbidden, ValidationFailed

from .routes import bp

PUBLIC_FORM_LIMIT = "30 per minute"  # as the agreement verification page
LICENCE_ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"


class CheckboxList(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ApplicationForm(FlaskForm):
    company_name = StringField(_l("Company name"), validators=[Length(max=200)],
                               render_kw={"autocomplete": "organization", "required": True})
    uscc = StringField(_l("Unified social credit code"), validators=[Length(max=40)],
                       render_kw={"autocomplete": "off", "spellcheck": "false",
                                  "maxlength": 40, "required": True})
    kind = SelectField(_l("Partner type"), validate_choice=False,
                       render_kw={"required": True})
    branch = SelectField(_l("Branch you apply to"), validate_choice=False,
                         render_kw={"required": True})
    contact_name = StringField(_l("Contact person"), validators=[Length(max=100)],
                               render_kw={"autocomplete": "name", "required": True})
    contact_mobile = StringField(_l("Contact mobile"), validators=[Length(max=40)],
                                 render_kw={"autocomplete": "tel", "inputmode": "tel",
                                            "required": True})
    contact_email = EmailField(_l("Contact e-mail"), validators=[Length(max=200)],
                               render_kw={"autocomplete": "email", "required": True})
    products = CheckboxList(_l("Loan products you want to offer"), validate_choice=False)
    licence = FileField(_l("Business licence"), render_kw={"accept": LICENCE_ACCEPT,
                                                           "required": True})
    submit = SubmitField(_l("Send the application"))


class MoreInformationForm(FlaskForm):
    note = TextAreaField(_l("Your answer"), validators=[Length(max=admission.NOTE_MAX)],
                         render_kw={"rows": 5})
    licence = FileField(_l("Business licence (only if you send it again)"),
                        render_kw={"accept": LICENCE_ACCEPT})
    submit = SubmitField(_l("Send"))


def _choices(form: ApplicationForm) -> None:
    form.kind.choices = [("", _l("Choose…"))] + [
        (k, v) for k, v in PARTNER_TYPES.items() if k != "bank"]
    form.branch.choices = [("", _l("Choose…"))] + [
        (b.code, f"{'— ' * max(b.level - 1, 0)}{b.name}") for b in admission.branch_choices()]
    locale = str(get_locale() or "zh_CN")
    form.products.choices = [(p.code, p.display_name(locale))
                             for p in admission.offered_products()]


def _upload(field):
    upload = field.data
    if upload is None or not getattr(upload, "filename", ""):
        return None, None
    return upload.filename, upload.read()


@bp.route("/apply", methods=["GET", "POST"])
@limiter.limit(PUBLIC_FORM_LIMIT, methods=["POST"])
def apply():
    form = ApplicationForm()
    _choices(form)
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            filename, data = _upload(form.licence)
            with shown_again() as refusal:
                admission.submit(ctx(), {name: getattr(form, name).data for name in (
                    "company_name", "uscc", "kind", "branch", "contact_name", "contact_mobile",
                    "contact_email", "products")}, filename=filename, licence=data,
                    locale=str(get_locale() or "") or None)
                return redirect(url_for("auth.apply_sent"))
            errors = refusal.fields
        status = 422
    return render_template("auth/apply.html", form=form, errors=errors), status


@bp.route("/apply/sent")
def apply_sent():
    return render_template("auth/apply_sent.html")


@bp.route("/apply/more/<answer_token>", methods=["GET", "POST"])
@limiter.limit(PUBLIC_FORM_LIMIT, methods=["POST"])
def apply_more(answer_token: str):
    application = admission.for_token(answer_token)
    if application is None:
        return render_template("auth/apply_link_expired.html"), 404
    form = MoreInformationForm()
    errors, status = {}, 200
    if request.method == "POST":
        if form.validate_on_submit():
            filename, data = _upload(form.licence)
            with shown_again(ValidationFailed, Forbidden) as refusal:
                admission.add_info(ctx(), answer_token, note=form.note.data, filename=filename,
                                   licence=data)
                return redirect(url_for("auth.apply_sent", answered=1))
            if isinstance(refusal.error, Forbidden):  # spent by another submit meanwhile
                return render_template("auth/apply_link_expired.html"), 404
            errors = refusal.fields
        status = 422
    return render_template("auth/apply_more.html", form=form, errors=errors,
                           application=application), status
