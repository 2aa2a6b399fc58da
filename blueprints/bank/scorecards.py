"""The channel manager's cockpit: partner scorecards, the follow-up pool and the contact log.

Routes on the bank face's blueprint. Every page reads stored snapshots; nothing here computes a
KPI. Channel managers and admins only.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select

from blueprints import going_back_to, paginate
from models import Referral, User
from portal.bank_time import typed_local
from portal.extensions import db
from portal.i18n import page_locale
from portal.labels import PARTNER_TYPES
from portal.security import ctx, roles_required
from portal.services import (
    annual_reviews,
    branches,
    customer_leads,
    followups,
    partners,
    referrals,
    scoring,
    sites,
)
from portal.services.errors import ValidationFailed
from portal.services.portfolio import PortfolioQuery, class_mix
from portal.services.portfolio import parse as parse_period
from portal.services.scoring import TIER_BADGES, TIER_LABELS
from portal.services.scoring import kept as scoring_kept
from portal.services.scoring import views as scorecard_views
from portal.services.scoring import writing as scoring_writing

from .routes import bp
from .scorecard_forms import (
    ActionForm,
    AddFollowUpForm,
    AssignForm,
    CloseForm,
    CockpitFilterForm,
    ContactForm,
    NoteForm,
    first_problem,
)

manager_required = roles_required("channel_manager", "admin")
# As every list's page: each row carries ten figures with their sort links, and a 50-row page
# was the heaviest template of the bank's face (issue 15).
PER_PAGE = 25


@bp.record_once
def _template_globals(state) -> None:
    # The tier names and colours, for the scorecard macros (imported without context).
    state.app.jinja_env.globals.update(TIER_LABELS=TIER_LABELS, TIER_BADGES=TIER_BADGES)


def _staff_choices(blank: str):
    users = db.session.execute(select(User.id, User.name, User.role).where(
        User.role.in_(("channel_manager", "admin", "credit_officer")), User.active,
        branches.staff_in_scope(current_user)).order_by(User.name))
    return [("", blank)] + [(str(uid), name) for uid, name, _role in users]


def _filters_from(form: CockpitFilterForm) -> scorecard_views.CockpitFilters:
    manager = form.manager.data or ""
    if manager == "me":
        manager_id = current_user.id
    else:
        manager_id = int(manager) if manager.isdigit() else None
    sort = request.args.get("sort", "composite")
    if sort not in scorecard_views.SORTS:
        sort = "composite"
    direction = request.args.get("dir", "asc" if sort == "name" else "desc")
    return scorecard_views.CockpitFilters(
        kind=form.kind.data or None, branch=form.branch.data or None, manager_id=manager_id,
        tier=form.tier.data if form.tier.data in TIER_LABELS else None,
        q=(request.args.get("q") or "").strip()[:100] or None, sort=sort,
        desc=direction != "asc", viewer=current_user._get_current_object())


# --- cockpit ------------------------------------------------------------------------------------

@bp.route("/scorecards", endpoint="scorecards")
@manager_required
def cockpit():
    form = CockpitFilterForm(formdata=request.args)
    # Read first: whatever is kept under it is no older than it says (kept.py).
    basis, kept = scoring_kept.basis(), scoring_kept.panels()
    scope = branches.scope_of(current_user)
    choices = kept.read(basis, ("choices", scope),
                        lambda: scorecard_views.filter_choices(current_user))
    form.kind.choices = [("", _("Any partner type"))] + [
        (k, v) for k, v in PARTNER_TYPES.items() if k != "bank"]
    form.branch.choices = [("", _("All my branches"))] + choices["branches"]
    form.manager.choices = ([("", _("Any channel manager")), ("me", _("My partners"))]
                            + [(str(i), n) for i, n in choices["managers"]])
    form.tier.choices = [("", _("Any tier"))] + [(t, TIER_LABELS[t]) for t in TIER_LABELS]
    form.validate()
    filters = _filters_from(form)
    page = min(max(1, request.args.get("page", 1, type=int)), 10_000)
    ranking = kept.read(basis, ("ranking", scope, str(page_locale()), filters.chosen(), page),
                        lambda: _ranking(filters, page))
    reviews, review_counts = annual_reviews.due_summary(
        current_user, branch=branches.visible_branch(current_user, form.branch.data))
    rows = ranking["rows"]
    return render_template(
        "scorecards/cockpit.html", form=form, filters=filters, per_page=PER_PAGE, **ranking,
        exchange=customer_leads.balance(current_user, [r["id"] for r in rows], _stored_referrals(
            {r["id"]: r["referrals"] for r in rows})),
        stale=scorecard_views.stale_count(), TIER_LABELS=TIER_LABELS, TIER_BADGES=TIER_BADGES,
        action_form=ActionForm(), reviews=reviews, review_counts=review_counts)


def _ranking(filters: scorecard_views.CockpitFilters, page: int) -> dict:
    """The cockpit's panels that change only with the scores and the directory: the ranking's
    page, the tier counts, the branch roll-up, both trends and when the scores were computed."""
    total, counts, rollup = scorecard_views.cockpit_summary(filters)
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    rows, total = scorecard_views.cockpit_page(filters, page, PER_PAGE, total)
    columns = [scoring.KPI_BY_NAME[n] for n in scorecard_views.COCKPIT_KPIS]
    months = scorecard_views.portfolio_months(filters)
    rows = _with_cells(rows, columns)
    for row in rows:
        del row["kpis"]  # drawn into the cells; not kept twice
    return {"rows": rows, "total": total, "page": page, "pages": pages,
            "counts": counts, "rollup": rollup, "columns": columns,
            "trend": scorecard_views.cockpit_trend(filters, months),
            "portfolio_trend": scorecard_views.portfolio_trend(months),
            "computed": scorecard_views.last_computed()}


def _stored_referrals(counts: dict) -> dict | None:
    """The partners' referral counts kept on their current cards, if every card has one."""
    return counts if all(isinstance(n, int) for n in counts.values()) else None


def _with_cells(rows: list[dict], columns) -> list[dict]:
    """The ranking's KPI cells, as HTML: fifty partners by ten figures drawn through macros, a
    link built per cell, then a template loop per cell were most of the page's time (issue 15).
    Every variable piece is escaped here (Markup.format was as slow as the template)."""
    # One link built, the others by substitution: a KPI's name is a plain identifier.
    link = str(escape(url_for("bank.scorecard_kpi", org_id=918273645, name="kpi_name_here")
                      )).replace("918273645", "{org}").replace("kpi_name_here", "{kpi}")
    adjusted_label = str(escape(_("adj.")))
    names = [(kpi, str(escape(kpi.name))) for kpi in columns]
    for row in rows:
        cells = []
        org = int(row["id"])
        for kpi, name in names:
            e = row["kpis"].get(kpi.name) or {}
            text = scoring_writing.kpi_text(kpi.kind, e.get("raw"))
            cell = (f'<td class="text-end small" data-kpi="{name}"><a class="text-reset" '
                    f'href="{link.format(org=org, kpi=name)}">'
                    f'{scoring_writing.NO_FIGURE if text is None else escape(text)}</a>')
            if kpi.kind == "rate" and e.get("n"):
                cell += (f' <span data-testid="count">({escape(e.get("x"))} / '
                         f'{escape(e.get("n"))})</span>')
            if kpi.shrink and kpi.kind in ("rate", "hours"):
                adjusted = scoring_writing.kpi_text(kpi.kind, e.get("value"))
                if adjusted is not None:
                    cell += (f'<div class="text-muted" data-testid="adjusted">{adjusted_label} '
                             f'{escape(adjusted)}</div>')
            cells.append(cell + "</td>")
        row["cells_html"] = Markup("".join(cells))  # noqa: S704  # nosec B704  # escaped above
    return rows


@bp.route("/scorecards/recompute", methods=["POST"])
@manager_required
def recompute_scorecards():
    if not ActionForm().validate_on_submit():
        abort(400)
    everything = request.form.get("scope") == "all"
    if everything and current_user.role != "admin":
        abort(403)
    result = scoring.recompute_all() if everything else scoring.recompute_stale()
    if result is None:
        flash(_("Every scorecard is up to date."), "info")
    else:
        flash(_("Scorecards recomputed for %(n)d partner(s) in %(s).1f s.", n=result.orgs,
                s=result.seconds), "success")
    return redirect(url_for("bank.scorecards"))


def _mix_period() -> PortfolioQuery:
    """The class mix's period from the query string (a bad date: the default year)."""
    try:
        return parse_period({"from": request.args.get("from"), "to": request.args.get("to")})
    except ValidationFailed:
        return PortfolioQuery()


# The card page's lists, their statements built once per viewer's scope and partner: building
# them cost a tenth of the page (issue 15).
@branches.per_scope
def _latest_contacts(scope: branches.Scope, org_id: int):
    return followups.contacts(org_id=org_id, viewer=scope).limit(10)


@branches.per_scope
def _active_follow_ups(scope: branches.Scope, org_id: int):
    return followups.pool(status="active", org_id=org_id, user=scope).limit(20)


@branches.per_scope
def _latest_leads(scope: branches.Scope, org_id: int):
    return customer_leads.search(scope, org_id=org_id).limit(5)


@bp.route("/scorecards/<int:org_id>")
@manager_required
def scorecard(org_id: int):
    org = partners.partner_org(org_id, current_user)
    if org is None:
        abort(404)
    card, months, portfolio = scoring.card_with_months(org.id)
    own_sites = sites.of_org(org.id)
    contact_form = ContactForm(formdata=None)
    contact_form.org_id.choices = [(str(org.id), org.name)]
    contact_form.org_id.data = str(org.id)
    # Unless a period is asked for, the stored months' mix (as last computed).
    asked = request.args.get("from") or request.args.get("to")
    period_mix = None if asked else scorecard_views.months_class_mix(months)
    return render_template(
        "scorecards/detail.html", org=org, card=card, months=months, portfolio=portfolio,
        rows=scorecard_views.explain(card) if card else [],
        state=scorecard_views.tier_state(org.id),
        trend=scorecard_views.org_trend(months), mix=scorecard_views.mix_chart(card),
        split=scorecard_views.split_chart(card),
        period_mix=period_mix or class_mix(org.id, _mix_period()),
        mix_from_months=period_mix is not None,
        contacts=db.session.scalars(_latest_contacts(current_user, org.id)).all(),
        pool=db.session.scalars(_active_follow_ups(current_user, org.id)).all(),
        exchange=customer_leads.balance(current_user, [org.id], _stored_referrals(
            {org.id: (card.extra or {}).get("referrals") if card else None}))[org.id],
        leads=db.session.scalars(_latest_leads(current_user, org.id)).all(),
        cadence=followups.cadence(), contact_form=contact_form, TIER_LABELS=TIER_LABELS,
        site_warnings=sites.warnings(org.id, own_sites), site_count=len(own_sites),
        kinds=followups.CONTACT_KINDS, reasons=followups.REASONS,
        TIER_BADGES=TIER_BADGES, k=scoring.setting("SCORING_PRIOR_STRENGTH"),
        level=scoring.setting("SCORING_INTERVAL"), sla=scoring.setting("SCORING_SLA_HOURS"))


# --- follow-up pool -----------------------------------------------------------------------------

@bp.route("/followups")
@manager_required
def followup_pool():
    view = request.args.get("view", "pool")
    scope = request.args.get("scope", "mine" if current_user.role == "channel_manager" else "all")
    status = request.args.get("status", "active")
    if status not in ("active", "open", "in_progress", "closed"):
        status = "active"
    page_no = max(1, request.args.get("page", 1, type=int))
    per_page = current_app.config.get("PER_PAGE", 25)
    if view == "candidates":
        query = followups.candidates(user=current_user)
        if scope == "mine":
            query = query.where(Referral.org.has(channel_manager_id=current_user.id))
    else:
        query = followups.pool(status=status,
                               assigned_to=current_user.id if scope == "mine" else None,
                               unassigned=scope == "unassigned", user=current_user)
    page = db.paginate(query, page=page_no, per_page=per_page, error_out=False)
    form = AddFollowUpForm(formdata=None)
    form.assigned_to.choices = _staff_choices(_("Nobody yet"))
    return render_template("scorecards/followups.html", page=page, view=view, scope=scope,
                           status=status, form=form, reasons=followups.REASONS,
                           statuses=followups.STATUSES, reason_for=followups.reason_for)


@bp.route("/followups", methods=["POST"])
@manager_required
def followup_add():
    form = AddFollowUpForm()
    form.assigned_to.choices = _staff_choices("")
    if not form.validate_on_submit() or not (form.referral_id.data or "").isdigit():
        flash(first_problem(form, _("Choose a referral to add.")), "danger")
        return redirect(url_for("bank.followup_pool", view="candidates"))
    referral = referrals.get_for(current_user, int(form.referral_id.data))
    with going_back_to("bank.followup_pool", view="candidates"):
        entry = followups.add(ctx(), referral, assigned_to=form.assigned_to.data or None,
                              next_action_at=typed_local(form.next_action_at.data),
                              note=form.note.data)
    flash(_("%(name)s is in the follow-up pool.", name=referral.buyer_name), "success")
    return redirect(url_for("bank.followup", follow_up_id=entry.id))


@bp.route("/followups/<int:follow_up_id>")
@manager_required
def followup(follow_up_id: int):
    entry = followups.get(follow_up_id, current_user)
    assign_form = AssignForm(formdata=None)
    assign_form.assigned_to.choices = _staff_choices(_("Nobody"))
    assign_form.assigned_to.data = str(entry.assigned_to_id or "")
    return render_template("scorecards/followup.html", entry=entry, assign_form=assign_form,
                           note_form=NoteForm(formdata=None), close_form=CloseForm(formdata=None),
                           reasons=followups.REASONS, statuses=followups.STATUSES,
                           outcomes=followups.OUTCOMES, note_kinds=followups.NOTE_KINDS)


@bp.route("/followups/<int:follow_up_id>/assign", methods=["POST"])
@manager_required
def followup_assign(follow_up_id: int):
    entry = followups.get(follow_up_id, current_user)
    form = AssignForm()
    form.assigned_to.choices = _staff_choices("")
    if not form.validate_on_submit():
        flash(first_problem(form, _("Check the date and time.")), "danger")
        return redirect(url_for("bank.followup", follow_up_id=entry.id))
    with going_back_to("bank.followup", follow_up_id=entry.id):
        followups.assign(ctx(), entry, form.assigned_to.data or None,
                         typed_local(form.next_action_at.data))
    flash(_("Assignment saved."), "success")
    return redirect(url_for("bank.followup", follow_up_id=entry.id))


@bp.route("/followups/<int:follow_up_id>/notes", methods=["POST"])
@manager_required
def followup_note(follow_up_id: int):
    entry = followups.get(follow_up_id, current_user)
    form = NoteForm()
    if not form.validate_on_submit():
        flash(first_problem(form, _("Write what happened.")), "danger")
        return redirect(url_for("bank.followup", follow_up_id=entry.id))
    with going_back_to("bank.followup", follow_up_id=entry.id):
        followups.add_note(ctx(), entry, form.kind.data, form.body.data,
                           typed_local(form.next_action_at.data))
    flash(_("Follow-up recorded."), "success")
    return redirect(url_for("bank.followup", follow_up_id=entry.id))


@bp.route("/followups/<int:follow_up_id>/close", methods=["POST"])
@manager_required
def followup_close(follow_up_id: int):
    entry = followups.get(follow_up_id, current_user)
    form = CloseForm()
    if not form.validate_on_submit():
        flash(_("Choose the outcome."), "danger")
        return redirect(url_for("bank.followup", follow_up_id=entry.id))
    with going_back_to("bank.followup", follow_up_id=entry.id):
        followups.close(ctx(), entry, form.outcome.data, form.note.data)
    flash(_("Follow-up closed."), "success")
    return redirect(url_for("bank.followup", follow_up_id=entry.id))


# --- contact log --------------------------------------------------------------------------------

def _partner_choices():
    return [("", "—")] + [(str(o.id), f"{o.name} ({o.code})")
                          for o in partners.partner_orgs(current_user)]


@bp.route("/contacts")
@manager_required
def contacts():
    scope = request.args.get("scope", "mine" if current_user.role == "channel_manager" else "all")
    manager_id = current_user.id if scope == "mine" else None
    org_id = request.args.get("org", type=int)
    page = paginate(followups.contacts(org_id=org_id, manager_id=manager_id,
                                      viewer=current_user))
    form = ContactForm(formdata=None)
    form.org_id.choices = _partner_choices()
    if org_id:
        form.org_id.data = str(org_id)
    return render_template("scorecards/contacts.html", page=page, scope=scope, form=form,
                           overdue=followups.overdue(manager_id, viewer=current_user),
                           cadence=followups.cadence(),
                           kinds=followups.CONTACT_KINDS, TIER_LABELS=TIER_LABELS,
                           TIER_BADGES=TIER_BADGES)


@bp.route("/contacts", methods=["POST"])
@manager_required
def contact_log():
    form = ContactForm()
    form.org_id.choices = _partner_choices()
    back = request.form.get("back")
    target = (url_for("bank.scorecard", org_id=int(form.org_id.data))
              if back == "card" and (form.org_id.data or "").isdigit()
              else url_for("bank.contacts"))
    if not form.validate_on_submit() or not (form.org_id.data or "").isdigit():
        flash(first_problem(form, _("Choose the partner and write a short summary.")), "danger")
        return redirect(target)
    org = partners.partner_org(int(form.org_id.data), current_user)
    if org is None:
        abort(404)
    with going_back_to(url=target):
        followups.log_contact(ctx(), org, form.kind.data, typed_local(form.at.data),
                              form.summary.data)
    flash(_("Contact with %(name)s recorded.", name=org.name), "success")
    return redirect(target)
