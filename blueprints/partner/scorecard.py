"""The partner's own scorecard: its tier, its card explained, and how fast the bank served it.

A partner administrator sees only their own organisation's card (there is no id in the URL to
try another one); agents do not see the scorecard.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from blueprints import shown_again
from portal.security import ctx, roles_required
from portal.services import disputes, portfolio, scoring
from portal.services.errors import ValidationFailed
from portal.services.scoring import TIER_BADGES, TIER_LABELS
from portal.services.scoring import views as scorecard_views

from .routes import bp


def _mix_period() -> portfolio.PortfolioQuery:
    try:
        return portfolio.parse({"from": request.args.get("from"), "to": request.args.get("to")})
    except ValidationFailed:
        return portfolio.PortfolioQuery()


@bp.route("/scorecard")
@roles_required("partner_admin")
def scorecard():
    return _render()


def _render(errors: dict | None = None, typed: dict | None = None, status: int = 200):
    org = current_user.org
    card, months, _portfolio = scoring.card_with_months(org.id)
    return render_template(
        "scorecards/partner_card.html", org=org, card=card, months=months,
        headline=scoring.shown_to_partner(card) if card else None,
        rows=scorecard_views.explain(card, partner_view=True) if card else [],
        trend=scorecard_views.org_trend(months, partner_view=True),
        mix=scorecard_views.mix_chart(card),
        split=scorecard_views.split_chart(card), TIER_LABELS=TIER_LABELS,
        period_mix=portfolio.class_mix(org.id, _mix_period()),
        disputes=disputes.for_org(org.id), loans=disputes.loans_of(org.id),
        dispute_statuses=disputes.STATUSES,
        dispute_kpis=[kpi for kpi in scoring.KPIS if kpi.partner_visible],
        dispute_errors=errors or {}, typed=typed or {},
        TIER_BADGES=TIER_BADGES, k=scoring.setting("SCORING_PRIOR_STRENGTH"),
        level=scoring.setting("SCORING_INTERVAL"), sla=scoring.setting("SCORING_SLA_HOURS"),
        min_loans=scoring.setting("SCORING_PARTNER_MIN_LOANS")), status


@bp.route("/disputes", methods=["POST"])
@roles_required("partner_admin")
def open_dispute():
    typed = request.form.to_dict()
    with shown_again() as refusal:
        disputes.open_dispute(ctx(), current_user.org, typed)
        flash(_("Your dispute is with the bank. The answer will appear here."), "success")
        return redirect(url_for("partner.scorecard") + "#disputes")
    return _render(errors=refusal.fields, typed=typed, status=422)
