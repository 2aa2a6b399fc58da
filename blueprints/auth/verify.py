"""Public agreement verification: anyone holding an agreement PDF (or its SHA-256) can check
which agreement, version and acceptance it matches, or that it matches none. No login."""

from __future__ import annotations

from flask import render_template
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField, SubmitField
from wtforms.validators import Length

from portal.extensions import limiter
from portal.i18n import lazy_gettext as _l
from portal.services import agreements
from portal.services.errors import ValidationFailed

from .routes import bp


class VerifyForm(FlaskForm):
    file = FileField(_l("Agreement PDF"), render_kw={"accept": ".pdf,application/pdf"})
    sha256 = StringField(_l("…or its SHA-256"),
                         validators=[Length(max=100)],
                         render_kw={"autocomplete": "off", "spellcheck": "false",
                                    "placeholder": "e3b0c44298fc1c149afbf4c8996fb924…"})
    submit = SubmitField(_l("Verify"))


@bp.route("/agreements/verify", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def verify_agreement():
    form = VerifyForm()
    result, checked, errors = None, None, {}
    if form.validate_on_submit():
        upload = form.file.data
        try:
            if upload and upload.filename:
                data = upload.read()
                checked = agreements.pdf.sha256(data)
                result = agreements.verify(data)
            elif (form.sha256.data or "").strip():
                result = agreements.verify(form.sha256.data)
                checked = result.sha256 if result else form.sha256.data.strip().lower()
            else:
                errors["file"] = _l("Choose a PDF file or enter a SHA-256.")
        except ValidationFailed as exc:
            errors = exc.fields
    status = 422 if errors else 200
    return render_template("agreements/verify.html", form=form, result=result, checked=checked,
                           errors=errors), status
