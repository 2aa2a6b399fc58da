"""The partner's own scorecard: its tier, its card explained, and how fast the bank served it.

A partner administrator sees only their own organisation's card (there is no id in the URL to
try another one); agents do not see the scorecard.
"""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from portal.security import roles_required
from portal.services import portfolio, scoring
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
    org = current_user.org
    card = scoring.current_card(org.id)
    months = scoring.monthly_cards(org.id)
    return render_template(
        "scorecards/partner_card.html", org=org, card=card, months=months,
        rows=scorecard_views.explain(card, partner_view=True) if card else [],
        trend=scorecard_views.org_trend(months), mix=scorecard_views.mix_chart(card),
        split=scorecard_views.split_chart(card), TIER_LABELS=TIER_LABELS,
        period_mix=portfolio.class_mix(org.id, _mix_period()),
        TIER_BADGES=TIER_BADGES, k=scoring.setting("SCORING_PRIOR_STRENGTH"),
        level=scoring.setting("SCORING_INTERVAL"), sla=scoring.setting("SCORING_SLA_HOURS"),
        min_loans=scoring.setting("SCORING_PARTNER_MIN_LOANS"))
