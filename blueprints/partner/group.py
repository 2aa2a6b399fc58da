"""Group referrals (集团营销) on the partner's pages: a CSV file of buyers, checked row by row with
the single form's rules (services/group_referrals.py), shown, then submitted on confirmation.

The file is checked first and nothing is written; the page shows each row's fate and carries
the file back (as text) for the confirmation, which checks it all again and submits the rows
that pass in one transaction. Refused rows are offered back as CSV, with why, to fix.
"""

from __future__ import annotations

from flask import Response, render_template
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import shown_again
from portal import labels
from portal.security import ctx, partner_required
from portal.services import group_referrals, sites
from portal.services.errors import Forbidden, ValidationFailed

from .forms import GroupUploadForm, RefusedRowsForm
from .routes import bp

# The confirmation carries the file as UTF-8 text: a GB18030 file grows by half.
PAYLOAD_MAX_BYTES = group_referrals.MAX_BYTES * 3 // 2


def _form() -> GroupUploadForm:
    form = GroupUploadForm()
    # Only the organisation's own active sites are offered; the intake refuses any other.
    form.site.choices = [("", _("None, or not through a site"))] + sites.choices(
        current_user.org_id)
    return form


def _defaults(form: GroupUploadForm) -> dict:
    """What the page chooses once for every row (merged into each row's intake): the site the
    group buys at, checked by the intake like a site the row names itself."""
    return {"site": form.site.data} if form.site.data else {}


def _csv_response(text: str, filename: str) -> Response:
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/referrals/group/template.csv")
@partner_required
def group_template():
    return _csv_response(group_referrals.template_csv(), "group-referrals-template.csv")


def _read(form: GroupUploadForm) -> tuple[bytes, bool]:
    """The file's bytes and whether this is the confirmation (the checked file sent back)."""
    if form.confirm.data and form.payload.data:
        data = form.payload.data.encode("utf-8")
        if len(data) > PAYLOAD_MAX_BYTES:
            raise group_referrals.FileRefused(_("The file is too large. Upload it again."))
        return data, True
    if not form.file.data:
        raise ValidationFailed({"file": _("Choose a CSV file to upload.")})
    return form.file.data.read(group_referrals.MAX_BYTES + 1), False


@bp.route("/referrals/group", methods=["GET", "POST"])
@partner_required
def group_upload():
    form = _form()
    batch, written, payload, errors, status = None, False, "", {}, 200
    if form.validate_on_submit():
        with shown_again(ValidationFailed, Forbidden) as refusal:
            data, written = _read(form)
            rows = group_referrals.read_file(data)
            payload = group_referrals.decode(data)
            batch = group_referrals.run(
                ctx(), current_user.org, group_referrals.items_of_file(rows),
                defaults=_defaults(form), write=written,
                repeat_message=group_referrals.repeats_line)
        if refusal.error is not None:
            batch, written = None, False
            errors = refusal.fields if isinstance(refusal.error, ValidationFailed) else {
                "file": refusal.message}
            status = 422
    elif form.is_submitted():
        status = 422
    refused_form = RefusedRowsForm()
    if batch is not None and batch.refused:
        refused_form.rows.data = group_referrals.refused_csv(batch)
    form.payload.data = payload if batch is not None and not written else ""
    return render_template(
        "partner/group_upload.html", form=form, errors=errors, batch=batch, written=written,
        refused_form=refused_form, columns=group_referrals.COLUMNS,
        required_columns=group_referrals.REQUIRED_COLUMNS, industries=labels.INDUSTRIES,
        max_rows=group_referrals.MAX_ITEMS, max_kb=group_referrals.MAX_BYTES // 1024,
        has_sites=len(form.site.choices) > 1), status


@bp.route("/referrals/group/refused.csv", methods=["POST"])
@partner_required
def group_refused():
    form = RefusedRowsForm()
    text = (form.rows.data or "") if form.validate_on_submit() else ""
    if not text.startswith(group_referrals.BOM):
        text = group_referrals.BOM + text
    return _csv_response(text[:PAYLOAD_MAX_BYTES], "group-referrals-refused.csv")
