"""What stands behind each figure of a partner's card (channel managers and admins): the
referrals or loan statements of a KPI's denominator in the card's period, its numerator a tab
away; and the partner's buyer class mix for any period."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import select

from blueprints import paginate
from models import ScorecardSnapshot
from portal.extensions import db
from portal.services import partners, sites
from portal.services.scoring import KPI_BY_NAME
from portal.services.scoring.drill import Drill, local_range, period_of

from .routes import bp
from .scorecards import manager_required


def snapshot_for(org_id: int, period: str) -> ScorecardSnapshot | None:
    kind = "rolling90" if period == "current" else "month"
    return db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id == org_id, ScorecardSnapshot.period_kind == kind,
        ScorecardSnapshot.period_key == period))


@bp.route("/scorecards/<int:org_id>/kpis/<name>")
@manager_required
def scorecard_kpi(org_id: int, name: str):
    org = partners.partner_org(org_id, current_user)
    kpi = KPI_BY_NAME.get(name)
    period_key = request.args.get("period", "current")[:12]
    snapshot = snapshot_for(org.id, period_key) if org is not None else None
    if org is None or kpi is None or snapshot is None:
        abort(404)
    part = "num" if request.args.get("part") == "num" and kpi.kind == "rate" else "den"
    own_sites = sites.of_org(org.id)
    # A site of another partner (or none known) reads as no site filter at all.
    site_id = request.args.get("site", type=int)
    if site_id not in {0, *(s.id for s in own_sites)}:
        site_id = None
    drill = Drill(kpi, org.id, period_of(snapshot), site_id)
    page = paginate(drill.query(part))
    entry = (snapshot.kpis or {}).get(kpi.name) or {}
    return render_template(
        "scorecards/kpi_drill.html", org=org, kpi=kpi, drill=drill, page=page, part=part,
        period_key=period_key, entry=entry, days=local_range(drill.period),
        counts={"num": drill.count("num") if kpi.kind == "rate" else None,
                "den": drill.count("den")},
        in_num=drill.numerator_ids([row.id for row in page.items]),
        site_id=site_id, site_names={s.id: f"{s.name} ({s.code})" for s in own_sites},
        by_site=drill.by_site(part) if own_sites else {})
