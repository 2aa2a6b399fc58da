"""Admin: upload referral history and loan performance (the CLI imports, in the browser)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import BooleanField, SelectField

from models import ImportBatch
from portal.extensions import db
from portal.security import ctx, roles_required
from portal.services import imports, scoring

from .routes import bp

# A request should finish within a worker's timeout (about 10 ms a referral row, 3 ms a loan
# row); larger files go through the command line.
UPLOAD_MAX_ROWS = {"referrals": 2000, "loans": 5000}


class ImportForm(FlaskForm):
    kind = SelectField(choices=[("referrals", "referrals"), ("loans", "loans")])
    file = FileField(validators=[FileRequired()])
    recompute = BooleanField(default=True)


def _render(form, status=200):
    batches = db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())
                                 .limit(20)).all()
    return render_template("scorecards/imports.html", form=form, batches=batches,
                           referral_columns=imports.REFERRAL_COLUMNS,
                           referral_optional=imports.REFERRAL_OPTIONAL,
                           loan_columns=imports.LOAN_COLUMNS), status


@bp.route("/imports", methods=["GET", "POST"])
@roles_required("admin")
def imports_page():
    form = ImportForm()
    if request.method == "GET":
        return _render(form)
    if not form.validate_on_submit():
        return _render(form, 422)
    upload = form.file.data
    data = upload.read()
    fn = imports.import_referrals if form.kind.data == "referrals" else imports.import_loans
    report = fn(ctx(), data, filename=upload.filename,
                max_rows=UPLOAD_MAX_ROWS[form.kind.data])
    if report.org_ids and form.recompute.data:
        scoring.recompute_stale()
    if report.malformed:
        flash(_("The file was refused and nothing was written: %(why)s", why=report.malformed),
              "danger")
    else:
        flash(_("%(rows)d rows: %(c)d created, %(u)d updated, %(s)d skipped, %(r)d rejected.",
                rows=report.rows, c=report.created, u=report.updated, s=report.skipped,
                r=report.rejected), "success" if not report.rejected else "warning")
    return redirect(url_for("admin.import_batch", batch_id=report.batch_id))


@bp.route("/imports/<int:batch_id>")
@roles_required("admin")
def import_batch(batch_id: int):
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        abort(404)
    return render_template("scorecards/import_batch.html", batch=batch)
