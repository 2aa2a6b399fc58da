"""Admin: the scoring weights, tier thresholds and contact cadence (versioned, audited)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import Length, Optional

from blueprints import shown_again
from models import ScoringWeights
from portal.extensions import db
from portal.security import ctx, roles_required
from portal.services import followups, scoring
from portal.services.scoring import DEFAULT_THRESHOLDS, KPIS, TIER_LABELS, TIERS

from .routes import bp


class WeightsForm(FlaskForm):
    """CSRF and the note; the weights are one input per KPI (w_<name>), read by hand."""

    note = StringField(validators=[Optional(), Length(max=500)])


def _render(values: dict, errors: dict | None = None, status: int = 200):
    history = db.session.scalars(select(ScoringWeights).order_by(ScoringWeights.id.desc())
                                 .limit(10)).all()
    return render_template("scorecards/weights.html", kpis=KPIS, values=values,
                           errors=errors or {}, history=history, form=WeightsForm(),
                           tiers=list(reversed(TIERS)), TIER_LABELS=TIER_LABELS,
                           thresholds=list(DEFAULT_THRESHOLDS),
                           current=scoring.current_weights()), status


@bp.route("/scoring", methods=["GET", "POST"])
@roles_required("admin")
def scoring_weights():
    current = scoring.current_weights()
    values = {"weights": current.weights, "thresholds": current.thresholds,
              "cadence": followups.cadence(), "note": ""}
    if request.method == "GET":
        return _render(values)
    form = WeightsForm()
    if not form.validate_on_submit():
        return _render(values, {"note": [_("The form has expired. Reload the page.")]}, 400)
    values = {
        "weights": {k.name: request.form.get(f"w_{k.name}", "") for k in KPIS},
        "thresholds": {t: request.form.get(f"t_{t}", "") for t in DEFAULT_THRESHOLDS},
        "cadence": {t: request.form.get(f"c_{t}", "") for t in TIERS},
        "note": form.note.data or "",
    }
    with shown_again() as refusal:
        scoring.save_weights(ctx(), values["weights"], values["thresholds"], values["note"])
        followups.set_cadence(ctx(), values["cadence"])
    if refusal.error:
        return _render(values, {k: [v] for k, v in refusal.fields.items()}, 422)
    if request.form.get("recompute"):
        result = scoring.recompute_all()
        flash(_("Weights saved; every scorecard recomputed in %(s).1f s.", s=result.seconds),
              "success")
    else:
        flash(_("Weights saved. They apply from the next recompute."), "success")
    return redirect(url_for("admin.scoring_weights"))
