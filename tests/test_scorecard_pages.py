"""Scorecard pages: the cockpit, a partner's card explained, the partner's own card, the
follow-up pool and the contact log, the admin's weights; who may see what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import (
    ContactLog,
    FollowUp,
    FollowUpNote,
    ScoringWeights,
    TierState,
    utcnow,
)
from portal.extensions import db
from portal.services import Ctx, followups, referrals, scoring
from tests import factories
from tests.conftest import login


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def html(response) -> str:
    return response.get_data(as_text=True)


def codes(page: str) -> list[str]:
    return re.findall(r'data-testid="ranking-row" data-org-code="([A-Z0-9_]+)"', page)


@pytest.fixture
def scored(world):
    """A with four decided referrals (three approved), B with one declined; cards computed."""
    officer = Ctx(user=world.officer)
    now = utcnow()
    world.org_b.branch = factories.branch("CHANGCHUN")
    for i, (user, outcome) in enumerate([(world.partner_a, "approved")] * 3
                                        + [(world.partner_a, "declined"),
                                           (world.partner_b, "declined")]):
        at = now - timedelta(days=10 - i)
        r = factories.submit(user, at=at, industry="government" if i % 2 else "other")
        referrals.transition(officer, r, "under_review", at=at + timedelta(hours=3))
        referrals.transition(officer, r, outcome, at=at + timedelta(hours=20),
                             reason_code="income_insufficient", note="n")
    scoring.recompute_all()
    db.session.commit()
    return world


def test_cockpit_ranks_and_filters(scored, as_user):
    client = as_user(scored.manager)
    page = html(client.get("/bank/scorecards"))
    assert codes(page) == ["PARTNERA", "PARTNERB"]
    assert 'data-chart="chart-tiers"' in page and "chart.umd.min.js" in page
    assert "Approval rate" in page
    # sort by name descending, then filters
    assert codes(html(client.get("/bank/scorecards?sort=name&dir=desc"))) == [
        "PARTNERB", "PARTNERA"]
    assert codes(html(client.get("/bank/scorecards?sort=approval_rate&dir=asc"))) == [
        "PARTNERB", "PARTNERA"]
    assert codes(html(client.get("/bank/scorecards?kind=property_broker"))) == ["PARTNERB"]
    assert codes(html(client.get("/bank/scorecards?branch=CHANGCHUN"))) == ["PARTNERB"]
    assert codes(html(client.get("/bank/scorecards?manager=me"))) == ["PARTNERA"]
    assert codes(html(client.get(f"/bank/scorecards?manager={scored.manager.id}"))) == [
        "PARTNERA"]
    tier = db.session.get(TierState, scored.org_a.id).tier
    assert "PARTNERA" in codes(html(client.get(f"/bank/scorecards?tier={tier}")))
    assert codes(html(client.get("/bank/scorecards?q=partner b"))) == ["PARTNERB"]
    # nonsense parameters are ignored, not errors
    assert client.get("/bank/scorecards?sort=drop&dir=x&page=999&manager=x").status_code == 200


def test_cockpit_in_chinese_translates_the_chart_labels(scored, client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    login(client, scored.manager)
    page = html(client.get("/bank/scorecards"))
    spec = re.search(r'<script type="application/json" id="chart-tiers">(.*?)</script>', page,
                     re.S)
    assert spec is not None
    assert "Average composite" not in spec.group(1)


def _trend_data(trend):
    return trend["data"]["labels"], [d["data"] for d in trend["data"]["datasets"]]


def test_cockpit_trend_read_from_the_portfolio_rows_is_the_partners_cards_summed(scored,
                                                                               app):
    """The job keeps each month's partner tiers, and their totals, in the portfolio's row; the
    trend summed from them equals the one grouped over every partner's monthly cards, under
    each filter, and follows a one-partner recompute."""
    from models import ScorecardSnapshot as S
    from portal.services.scoring import views

    months = scoring.monthly_cards(None)
    assert months and all(set(m.extra["tiers"]) == {str(scored.org_a.id), str(scored.org_b.id)}
                          for m in months)
    assert all(sum(n for n, _sum, _scored in m.extra["tier_totals"]["all"].values()) == 2
               for m in months)
    tier = db.session.get(TierState, scored.org_a.id).tier
    with app.test_request_context():
        for f in (views.CockpitFilters(), views.CockpitFilters(kind="property_broker"),
                  views.CockpitFilters(tier=tier), views.CockpitFilters(q="partner a"),
                  views.CockpitFilters(q="nobody")):
            # Without filters the totals answer; with them, the partners' entries.
            assert (views._subtree(f) == "all") == (f == views.CockpitFilters())
            portfolio = views.portfolio_months(f)
            assert [m.period_key for m in portfolio] == [m.period_key for m in months]
            stored = views.cockpit_trend(f, portfolio)
            counts, sums, n = views._trend_from_partner_cards(f)
            if not counts:
                assert stored is None
                continue
            labels, data = _trend_data(stored)
            assert labels == sorted(counts)
            assert data[-1] == [round(sums[k] / n[k], 1) if n[k] else None for k in labels]
            assert data[:-1] == [[counts[k].get(t, 0) for k in labels]
                                 for t in reversed(scoring.TIERS)]
        # Cards stored before the portfolio rows carried the tiers: the grouped query.
        everyone = views.cockpit_trend(views.CockpitFilters())
        for m in months:
            m.extra = {k: v for k, v in m.extra.items() if k not in ("tiers", "tier_totals")}
        db.session.flush()
        assert views.cockpit_trend(views.CockpitFilters()) == everyone
    # An incremental recompute refreshes the partner's entries.
    db.session.execute(S.__table__.update().where(
        S.org_id == scored.org_a.id, S.period_kind == "month").values(tier="watch"))
    scoring.recompute_org(scored.org_a.id)
    db.session.commit()
    stored = {m.period_key: m.extra["tiers"][str(scored.org_a.id)]
              for m in scoring.monthly_cards(None)}
    cards = {m.period_key: [m.tier, m.composite] for m in scoring.monthly_cards(scored.org_a.id)}
    assert stored == cards


def test_a_card_its_months_and_the_portfolio_read_in_one_statement(scored):
    for org in (scored.org_a, scored.org_b, scored.manager.org):
        card, months, portfolio = scoring.card_with_months(org.id)
        assert card is scoring.current_card(org.id)
        assert months == scoring.monthly_cards(org.id)
        assert portfolio is scoring.portfolio_snapshot()
    assert scoring.card_with_months(scored.org_a.id)[0] is not None
    assert len(scoring.card_with_months(scored.org_a.id)[1]) >= 1


def test_cockpit_count_tiers_and_branches_from_one_statement(scored, as_user):
    from portal.services.scoring import views

    client = as_user(scored.manager)
    page = html(client.get("/bank/scorecards"))
    assert "2 in all" in page
    with client.application.test_request_context():
        for f in (views.CockpitFilters(), views.CockpitFilters(kind="property_broker"),
                  views.CockpitFilters(tier=db.session.get(TierState, scored.org_a.id).tier)):
            total, counts, rollup = views.cockpit_summary(f)
            assert counts == views.tier_counts(f)
            assert rollup == views.branch_rollup(f)
            assert total == views.cockpit_page(f, 1, 50)[1]


def test_the_partners_referral_count_is_kept_on_its_card(scored, as_user):
    """The cockpit's and the card's "to us" figure is the partner's referrals as last computed
    (kept on the current card by the job), like every other figure there."""
    def to_us(page: str, code: str) -> str:
        row = page.split(f'data-org-code="{code}"', 1)[1].split("</tr>", 1)[0]
        return re.search(r'data-testid="exchange"><a[^>]*>(\d+) /', row).group(1)

    card = scoring.current_card(scored.org_a.id)
    assert card.extra["referrals"] == 4
    client = as_user(scored.manager)
    assert to_us(html(client.get("/bank/scorecards")), "PARTNERA") == "4"
    factories.submit(scored.partner_a)
    db.session.commit()
    assert to_us(html(client.get("/bank/scorecards")), "PARTNERA") == "4"
    scoring.recompute_stale()
    db.session.commit()
    assert scoring.current_card(scored.org_a.id).extra["referrals"] == 5
    assert to_us(html(client.get("/bank/scorecards")), "PARTNERA") == "5"
    assert scoring.current_card(scored.org_b.id).extra["referrals"] == 1


def test_cockpit_reads_snapshots_only(scored, as_user):
    client = as_user(scored.manager)
    factories.submit(scored.partner_a)  # a new referral: A is stale, the page does not compute
    db.session.commit()
    page = html(client.get("/bank/scorecards"))
    assert "1 partner changed since: recompute" in page
    response = client.post("/bank/scorecards/recompute")
    assert response.status_code == 302
    assert scoring.stale_org_ids() == []
    assert "changed since" not in html(client.get("/bank/scorecards"))


def test_detail_explains_the_score(scored, as_user):
    client = as_user(scored.manager)
    page = html(client.get(f"/bank/scorecards/{scored.org_a.id}"))
    assert "How the score is made" in page
    for name in scoring.CONTRACT_KPIS:
        assert f'data-kpi="{name}"' in page
    assert "3 / 4" in page  # approval: 3 approved of 4 decided
    assert 'data-testid="class-mix"' in page and "Class 1: 2" in page
    assert 'data-testid="turnaround-split"' in page
    assert 'data-chart="chart-mix"' in page and 'data-chart="chart-split"' in page
    card = scoring.current_card(scored.org_a.id)
    assert f"{card.composite:.1f}" in page
    assert client.get("/bank/scorecards/999999").status_code == 404
    bank = scored.manager.org
    assert client.get(f"/bank/scorecards/{bank.id}").status_code == 404


def test_partner_sees_own_card_and_the_banks_speed(scored, as_user):
    client = as_user(scored.partner_a)
    page = html(client.get("/partner/scorecard"))
    assert 'data-testid="bank-speed"' in page
    assert "How fast the bank served you" in page
    assert "Partner A" in page and "Partner B" not in page
    assert "Scorecard" in html(client.get("/partner/"))  # the navigation link


def test_partner_b_cannot_see_as_card(scored, as_user):
    client = as_user(scored.partner_b)
    own = html(client.get("/partner/scorecard"))
    assert "Partner B" in own and "Partner A" not in own
    assert client.get(f"/bank/scorecards/{scored.org_a.id}").status_code == 403
    assert client.get("/bank/scorecards").status_code == 403


@pytest.mark.parametrize("who,path,status", [
    ("agent_a", "/partner/scorecard", 403),
    ("officer", "/bank/scorecards", 403),
    ("officer", "/bank/followups", 403),
    ("officer", "/bank/contacts", 403),
    ("partner_a", "/bank/followups", 403),
    ("manager", "/admin/scoring", 403),
    ("admin", "/admin/scoring", 200),
    ("admin", "/bank/scorecards", 200),
    ("manager", "/bank/followups", 200),
    ("manager", "/bank/contacts", 200),
])
def test_access(world, as_user, who, path, status):
    assert as_user(getattr(world, who)).get(path).status_code == status


def test_pages_without_snapshots_say_so(app, world, as_user):
    assert "No scorecards match" in html(as_user(world.manager).get("/bank/scorecards"))
    partner = app.test_client()
    partner.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(partner, world.partner_a)
    assert "not ready yet" in html(partner.get("/partner/scorecard"))


def test_follow_up_pool_flow(world, as_user):
    officer = Ctx(user=world.officer)
    good = factories.submit(world.partner_a, industry="government", buyer_name="李娜")
    referrals.transition(officer, good, "declined", reason_code="income_insufficient", note="n")
    policy = factories.submit(world.partner_a, industry="government")
    referrals.transition(officer, policy, "declined", reason_code="credit_policy", note="n")
    avoid = factories.submit(world.partner_a, industry="other")
    referrals.transition(officer, avoid, "withdrawn")
    db.session.commit()
    client = as_user(world.manager)
    page = html(client.get("/bank/followups?view=candidates&scope=all"))
    ids = [int(i) for i in re.findall(r'data-testid="candidate-row" data-referral-id="(\d+)"',
                                      page)]
    assert ids == [good.id]  # not a credit-policy decline, not a class-3 buyer
    response = client.post("/bank/followups", data={"referral_id": good.id,
                                                     "assigned_to": world.manager.id})
    assert response.status_code == 302
    entry = db.session.scalar(select(FollowUp))
    assert (entry.reason, entry.assigned_to_id, entry.status) == ("declined", world.manager.id,
                                                                  "open")
    assert "李娜" in html(client.get("/bank/followups"))  # mine
    assert good.id not in [int(i) for i in re.findall(
        r'data-referral-id="(\d+)"', html(client.get("/bank/followups?view=candidates")))]
    again = client.post("/bank/followups", data={"referral_id": good.id})
    assert again.status_code == 302 and db.session.scalar(
        select(func.count()).select_from(FollowUp)) == 1
    client.post(f"/bank/followups/{entry.id}/notes",
                data={"kind": "call", "body": "Called; new job, will reapply in May",
                      "next_action_at": "2026-12-01T10:00"})
    db.session.refresh(entry)
    assert entry.status == "in_progress" and entry.next_action_at is not None
    client.post(f"/bank/followups/{entry.id}/assign", data={"assigned_to": world.admin.id})
    db.session.refresh(entry)
    assert entry.assigned_to_id == world.admin.id
    client.post(f"/bank/followups/{entry.id}/close", data={"outcome": "converted"})
    db.session.refresh(entry)
    assert (entry.status, entry.outcome) == ("closed", "converted")
    page = html(client.get(f"/bank/followups/{entry.id}"))
    assert "Called; new job" in page and 'data-testid="note-form"' not in page
    refused = client.post(f"/bank/followups/{entry.id}/notes", data={"kind": "call",
                                                                     "body": "late"})
    assert refused.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(FollowUpNote)) == 1


def test_contact_log_cadence_and_overdue(world, as_user):
    client = as_user(world.manager)
    page = html(client.get("/bank/contacts?scope=all"))
    overdue = re.findall(r'data-testid="overdue-row" data-org-code="(\w+)"', page)
    assert set(overdue) == {"PARTNERA", "PARTNERB"}  # never contacted
    response = client.post("/bank/contacts", data={"org_id": world.org_a.id, "kind": "visit",
                                                   "summary": "Visited the sales office"})
    assert response.status_code == 302
    page = html(client.get("/bank/contacts?scope=all"))
    assert re.findall(r'data-testid="overdue-row" data-org-code="(\w+)"', page) == ["PARTNERB"]
    assert "Visited the sales office" in page
    # A strategic partner last seen 20 days ago is overdue on a 14-day cadence.
    db.session.add(TierState(org_id=world.org_b.id, tier="strategic", pending_down=0))
    db.session.add(ContactLog(org_id=world.org_b.id, user_id=world.manager.id, kind="call",
                              at=utcnow() - timedelta(days=20), summary="call"))
    db.session.commit()
    late = followups.overdue()
    assert [(o.org.code, o.days_over) for o in late] == [("PARTNERB", 6)]
    # the card's contact form returns to the card
    response = client.post("/bank/contacts", data={"org_id": world.org_b.id, "kind": "call",
                                                   "summary": "Quarterly call", "back": "card"})
    assert response.headers["Location"].endswith(f"/bank/scorecards/{world.org_b.id}")
    assert followups.overdue() == []
    refused = client.post("/bank/contacts", data={"org_id": world.org_a.id, "kind": "visit",
                                                  "summary": "x", "at": "2099-01-01T10:00"})
    assert refused.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(ContactLog)) == 3


def test_admin_sets_weights_thresholds_and_cadence(world, as_user):
    client = as_user(world.admin)
    form = {f"w_{k.name}": k.weight for k in scoring.KPIS}
    form.update({f"t_{k}": v for k, v in scoring.DEFAULT_THRESHOLDS.items()})
    form.update({"c_strategic": 7, "c_core": 30, "c_watch": 45, "c_exit": 90,
                 "note": "weekly visits to strategic partners", "recompute": "1"})
    form["w_npl_rate"] = 25
    response = client.post("/admin/scoring", data=form)
    assert response.status_code == 302
    row = db.session.scalar(select(ScoringWeights))
    assert row.weights["npl_rate"] == 25 and row.note.startswith("weekly")
    assert followups.cadence()["strategic"] == 7
    form["w_npl_rate"] = "-1"
    form["t_core"] = 90  # above strategic
    bad = client.post("/admin/scoring", data=form)
    assert bad.status_code == 422
    assert "between 0 and 100" in html(bad)
    assert db.session.scalar(select(func.count()).select_from(ScoringWeights)) == 1


# --- API v1 ------------------------------------------------------------------------------------

def test_api_scorecards_for_the_bank_and_own_card_for_partners(scored, client):
    from tests.integration_helpers import auth, make_key

    bank = make_key(scored.manager)
    partner_a = make_key(scored.partner_a)
    partner_b = make_key(scored.partner_b)
    listing = client.get("/api/v1/scorecards", headers=auth(bank))
    assert listing.status_code == 200
    body = listing.json
    assert (body["page"], body["per_page"], body["total"]) == (1, 25, 2)
    assert [c["org_code"] for c in body["items"]] == ["PARTNERA", "PARTNERB"]
    card = body["items"][0]
    assert set(scoring.CONTRACT_KPIS) <= set(card["kpis"])
    assert {"org_code", "composite", "tier", "sample_size", "kpis"} <= set(card)
    assert set(card["kpis"]["approval_rate"]) >= {"value", "interval", "contribution"}
    low, high = card["kpis"]["approval_rate"]["interval"]
    assert 0 <= low <= card["kpis"]["approval_rate"]["value"] <= high <= 1
    assert client.get("/api/v1/scorecards?tier=nope", headers=auth(bank)).status_code == 422
    assert client.get("/api/v1/scorecards", headers=auth(partner_a)).status_code == 403
    own = client.get("/api/v1/scorecard", headers=auth(partner_a))
    assert own.status_code == 200 and own.json["org_code"] == "PARTNERA"
    assert own.json["kpis"]["approval_rate"]["raw"] == 0.75
    assert client.get("/api/v1/scorecard?org_code=PARTNERA",
                      headers=auth(partner_b)).status_code == 404
    assert client.get("/api/v1/scorecard", headers=auth(partner_b)).json["org_code"] == \
        "PARTNERB"
    assert client.get("/api/v1/scorecard?org_code=partnera",
                      headers=auth(bank)).json["org_code"] == "PARTNERA"
    assert client.get("/api/v1/scorecard", headers=auth(bank)).status_code == 403
    assert client.get("/api/v1/scorecard").status_code == 401
    doc = client.get("/api/v1/openapi.json").json
    assert {"/scorecards", "/scorecard"} <= set(doc["paths"])
    assert "ScorecardOut" in doc["components"]["schemas"]


def test_api_scorecard_pages_are_each_card_as_the_single_card_endpoint_gives_it(scored,
                                                                              client):
    """The list's page (ids sorted first, cards validated in one pass) holds, in order, what
    GET /scorecard?org_code= gives for each partner, page after page."""
    from tests.integration_helpers import auth, make_key

    bank = make_key(scored.manager)
    for i in range(3):
        factories.OrgFactory(code=f"EXTRA{i}", name=f"Extra {i}")
    scoring.recompute_all()
    db.session.commit()
    whole = client.get("/api/v1/scorecards?per_page=100", headers=auth(bank)).json
    assert whole["total"] == 5 and len(whole["items"]) == 5
    composites = [c["composite"] for c in whole["items"]]
    assert composites == sorted(composites, reverse=True)
    paged = []
    for page in (1, 2, 3):
        body = client.get(f"/api/v1/scorecards?per_page=2&page={page}", headers=auth(bank))
        assert body.status_code == 200 and body.mimetype == "application/json"
        assert (body.json["page"], body.json["per_page"], body.json["total"]) == (page, 2, 5)
        paged += body.json["items"]
    assert paged == whole["items"]
    for card in whole["items"]:
        one = client.get(f"/api/v1/scorecard?org_code={card['org_code']}", headers=auth(bank))
        assert one.json == card
    beyond = client.get("/api/v1/scorecards?page=9", headers=auth(bank)).json
    assert beyond["items"] == [] and beyond["total"] == 5


def test_api_scorecard_list_gives_the_card_the_job_wrote_last(scored, client):
    """The list keeps each card as it wrote it; a recompute writes new cards, and the list then
    gives those, equal to what GET /scorecard gives (the kept ones are never served stale)."""
    from tests.integration_helpers import auth, make_key

    bank = make_key(scored.manager)
    before = {c["org_code"]: c for c in client.get("/api/v1/scorecards",
                                                   headers=auth(bank)).json["items"]}
    assert before["PARTNERB"]["sample_size"] == 1
    officer = Ctx(user=scored.officer)
    at = utcnow() - timedelta(days=2)
    r = factories.submit(scored.partner_b, at=at)
    referrals.transition(officer, r, "under_review", at=at + timedelta(hours=2))
    referrals.transition(officer, r, "approved", at=at + timedelta(hours=5))
    scoring.recompute_all()
    db.session.commit()
    after = {c["org_code"]: c for c in client.get("/api/v1/scorecards",
                                                  headers=auth(bank)).json["items"]}
    assert after["PARTNERB"]["sample_size"] == 2
    assert after["PARTNERB"]["kpis"]["approval_rate"]["raw"] == 0.5
    assert after["PARTNERB"]["computed_at"] != before["PARTNERB"]["computed_at"]
    for code, card in after.items():
        assert client.get(f"/api/v1/scorecard?org_code={code}",
                          headers=auth(bank)).json == card


def test_api_scorecard_not_computed_yet(world, client):
    from tests.integration_helpers import auth, make_key

    response = client.get("/api/v1/scorecard", headers=auth(make_key(world.partner_a)))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_in_chinese_the_contact_log_names_who_recorded_and_the_weights_who_changed(world,
                                                                                  as_user):
    client = as_user(world.admin)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    client.post("/bank/contacts", data={"org_id": world.org_a.id, "kind": "visit",
                                        "summary": "Visited"})
    contacts = html(client.get("/bank/contacts?scope=all"))
    assert "<th>记录人</th>" in contacts and "确认人" not in contacts
    weights = html(client.get("/admin/scoring"))
    assert "<th>修改人</th>" in weights and "确认人" not in weights


@pytest.mark.parametrize("language, hours", [("en", "h"), ("zh-CN", "小时")])
def test_a_kpi_is_written_the_same_on_every_scorecard_page(app, language, hours):
    """kpi_value and kpi_interval (the card, the partner's card, the drill page) and the
    cockpit's cells share one writer: per cent, hours, yuan, counts, a dash for nothing."""
    from portal.services.scoring import writing

    kinds = {kind: next(k for k in scoring.KPIS if k.kind == kind)
             for kind in ("rate", "hours", "amount", "count")}
    with app.test_request_context("/", headers={"Accept-Language": language}):
        assert str(writing.kpi_value(kinds["rate"], 0.7123)) == "71.2%"
        assert str(writing.kpi_value(kinds["hours"], 23.16)) == f"23.2 {hours}"
        assert str(writing.kpi_value(kinds["amount"], 1234567.5)) == "¥1,234,567.50"
        assert str(writing.kpi_value(kinds["count"], 12.0)) == "12"
        assert writing.kpi_value(kinds["rate"], None) == writing.NO_FIGURE
        assert str(writing.kpi_interval(kinds["rate"], [0.61, 0.702])) == (
            '<span class="text-muted small">61.0–70.2%</span>')
        assert writing.kpi_interval(kinds["hours"], [1.0, 2.0]) == ""
        assert writing.kpi_interval(kinds["rate"], None) == ""
        rendered = app.jinja_env.from_string(
            "{{ kpi_value(k, v) }}|{{ kpi_interval(k, i) }}").render(
            k=kinds["rate"], v=0.5, i=[0.4, 0.6])
        assert rendered == '50.0%|<span class="text-muted small">40.0–60.0%</span>'
