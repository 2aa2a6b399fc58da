"""Disputes on the bank's side (channel managers and admins): the open ones first, each answered
with a note the partner reads (and an internal one it does not), the disputed loan's statement
corrected when the partner is right (audited)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import paginate, shown_again
from portal.labels import INDUSTRIES
from portal.security import ctx
from portal.services import disputes
from portal.services.scoring import KPI_BY_NAME

from .routes import bp
from .scorecards import manager_required


@bp.route("/disputes")
@manager_required
def disputes_page():
    status = request.args.get("status", "open")
    page = paginate(disputes.bank_list(status if status in disputes.STATUSES else None,
                                      current_user))
    return render_template("scorecards/disputes.html", page=page, status=status,
                           statuses=disputes.STATUSES, KPI_BY_NAME=KPI_BY_NAME)


def _render(dispute, *, errors=None, typed=None, status=200):
    return render_template(
        "scorecards/dispute.html", d=dispute, statements=disputes.statements(dispute),
        statuses=disputes.STATUSES, KPI_BY_NAME=KPI_BY_NAME, INDUSTRIES=INDUSTRIES,
        errors=errors or {}, typed=typed or {}), status


@bp.route("/disputes/<int:dispute_id>")
@manager_required
def dispute(dispute_id: int):
    return _render(disputes.get(dispute_id, current_user))


@bp.route("/disputes/<int:dispute_id>/answer", methods=["POST"])
@manager_required
def answer_dispute(dispute_id: int):
    item = disputes.get(dispute_id, current_user)
    typed = request.form.to_dict()
    with shown_again() as refusal:
        disputes.answer(ctx(), item, typed)
        flash(_("Answer saved; the partner sees it on its scorecard."), "success")
        return redirect(url_for("bank.dispute", dispute_id=item.id))
    return _render(item, errors=refusal.fields, typed=typed, status=422)


@bp.route("/disputes/<int:dispute_id>/correct", methods=["POST"])
@manager_required
def correct_loan(dispute_id: int):
    item = disputes.get(dispute_id, current_user)
    typed = request.form.to_dict()
    with shown_again() as refusal:
        disputes.correct(ctx(), item, typed)
        flash(_("The statement is corrected and the change recorded in the audit log."),
              "success")
        return redirect(url_for("bank.dispute", dispute_id=item.id))
    return _render(item, errors=refusal.fields, typed=typed, status=422)
