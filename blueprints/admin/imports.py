"""Admin: history and loan-performance imports as background jobs (the CLI imports, in the
browser). The upload is saved to disk and queued; the worker runs it in batches; the job page
polls its progress (static/imports.js), can cancel it, and lists and downloads the rejected
rows."""

from __future__ import annotations

import uuid
from pathlib import Path

from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField

from blueprints import going_back_to, paginate
from models import ImportBatch
from portal.extensions import csrf
from portal.security import ctx, roles_required
from portal.services import admin_views, imports

from .forms import ActionForm
from .reasons import translated_reason
from .routes import bp

# The rejected rows' reasons, stored in English, shown in the reader's language.
bp.add_app_template_filter(translated_reason, "import_reason")


class ImportForm(FlaskForm):
    kind = SelectField(choices=[("referrals", "referrals"), ("loans", "loans")])
    file = FileField(validators=[FileRequired()])
    recompute = BooleanField(default=True)


def _render(form, status=200):
    batches = paginate(admin_views.import_jobs(current_user))
    return render_template("scorecards/imports.html", form=form, batches=batches,
                           referral_columns=imports.REFERRAL_COLUMNS,
                           referral_optional=imports.REFERRAL_OPTIONAL,
                           loan_columns=imports.LOAN_COLUMNS), status


def _save(upload) -> Path:
    """The upload, copied from Werkzeug's temporary file to the imports folder in chunks."""
    folder = Path(current_app.config["UPLOAD_DIR"]) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    upload.save(path, buffer_size=1024 * 1024)
    return path


# The form checks its own CSRF token: the app-wide check would read the body before this view
# could raise the size limit for it.
@csrf.exempt
@bp.route("/imports", methods=["GET", "POST"])
@roles_required("admin")
def imports_page():
    # Only this page takes files past MAX_CONTENT_LENGTH; Werkzeug spools them to disk.
    request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]
    form = ImportForm()
    if request.method == "GET":
        return _render(form)
    if not form.validate_on_submit():
        return _render(form, 422)
    upload = form.file.data
    path = _save(upload)
    job = imports.jobs.create(ctx(), form.kind.data, str(path), upload.filename,
                              owns_file=True, recompute=bool(form.recompute.data))
    flash(_("The file is queued for import. This page shows its progress."), "info")
    return redirect(url_for("admin.import_batch", batch_id=job.id))


def _job(batch_id: int) -> ImportBatch:
    job = admin_views.visible_import(batch_id, current_user)
    if job is None:
        abort(404)
    return job


@bp.route("/imports/<int:batch_id>")
@roles_required("admin")
def import_batch(batch_id: int):
    job = _job(batch_id)
    return render_template("scorecards/import_batch.html", batch=job, form=ActionForm(),
                           progress=imports.jobs.progress(job),
                           rejects=paginate(imports.jobs.rejects(job)))


@bp.route("/imports/<int:batch_id>/progress")
@roles_required("admin")
def import_progress(batch_id: int):
    return jsonify(imports.jobs.progress(_job(batch_id)))


@bp.route("/imports/<int:batch_id>/cancel", methods=["POST"])
@roles_required("admin")
def cancel_import(batch_id: int):
    job = _job(batch_id)
    with going_back_to("admin.import_batch", batch_id=batch_id):
        imports.jobs.cancel(ctx(), job)
    flash(_("Cancelling: the import stops after the batch it is writing. What is written "
            "stays; running the file again goes on from there."), "info")
    return redirect(url_for("admin.import_batch", batch_id=batch_id))


@bp.route("/imports/<int:batch_id>/rejects.csv")
@roles_required("admin")
def import_rejects_csv(batch_id: int):
    job = _job(batch_id)
    response = Response(stream_with_context(imports.jobs.rejects_csv(job)),
                        mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="import-{job.id}-rejected.csv"')
    return response
