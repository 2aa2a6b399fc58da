"""Scorecards on constructed histories: every KPI against a hand-computed figure, the beta
shrinkage and its interval, the small-sample rule, the composite, tiers and their hysteresis,
and the incremental recompute."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from models import (
    Agreement,
    Organization,
    Referral,
    ScorecardSnapshot,
    ScoreChange,
    TierState,
)
from portal.extensions import db
from portal.services import Ctx, imports, referrals, scoring
from portal.services.scoring import beta_ppf, betainc, posterior, raw_tier, step_tier
from tests import factories

NOW = datetime(2026, 6, 28, 4, 0, tzinfo=UTC)  # noon in Shanghai
T0 = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 2 June
H = timedelta(hours=1)
D = timedelta(days=1)


def _move(actor, referral, to, at, **kw):
    referrals.transition(actor, referral, to, at=at, **kw)


@pytest.fixture
def history(world):
    """Partner A's constructed history (all in June 2026 but r7), partner B's one referral.

    r1 gov:       submitted T0, review +10h, approved +30h, signed +40h, disbursed +60h
    r2 education: submitted T0+1d, documents +5h, back +29h (24 h on the partner), approved +45h
    r3 commerce:  submitted T0+2d, review +2h, declined +12h
    r4 other:     submitted T0+3d, documents +4h, expired +100h (96 h on the partner)
    r5 finance:   submitted T0+4d, withdrawn +8h
    r6 gov:       submitted T0+5d, buyer already registered by B at T0+4d: conflict, rejected
                  as duplicate +6h
    r7 gov:       submitted 150 days before NOW, disbursed 140 days before; 31 days past due at
                  60 days on book, current again later (early payment default)
    b1 gov (B):   submitted T0+4d, review +1h, approved +4h
    """
    officer = Ctx(user=world.officer)
    manager = Ctx(user=world.manager)
    a, b = world.partner_a, world.partner_b
    r = {}
    r[1] = factories.submit(a, at=T0, industry="government", external_ref="A-1")
    _move(officer, r[1], "under_review", T0 + 10 * H)
    _move(officer, r[1], "approved", T0 + 30 * H)
    _move(officer, r[1], "contract_signed", T0 + 40 * H)
    _move(officer, r[1], "disbursed", T0 + 60 * H)
    t = T0 + D
    r[2] = factories.submit(a, at=t, industry="education_science_culture_health",
                            external_ref="A-2")
    _move(officer, r[2], "documents_requested", t + 5 * H, note="payslips")
    _move(officer, r[2], "under_review", t + 29 * H)
    _move(officer, r[2], "approved", t + 45 * H)
    t = T0 + 2 * D
    r[3] = factories.submit(a, at=t, industry="commerce_trade", external_ref="A-3")
    _move(officer, r[3], "under_review", t + 2 * H)
    _move(officer, r[3], "declined", t + 12 * H, reason_code="income_insufficient",
          note="income")
    t = T0 + 3 * D
    r[4] = factories.submit(a, at=t, industry="other", external_ref="A-4")
    _move(officer, r[4], "documents_requested", t + 4 * H, note="contract")
    _move(officer, r[4], "expired", t + 100 * H)
    t = T0 + 4 * D
    r[5] = factories.submit(a, at=t, industry="finance_insurance", external_ref="A-5")
    _move(officer, r[5], "withdrawn", t + 8 * H)
    buyer = factories.national_id()
    b1 = factories.submit(b, at=t, industry="government", national_id=buyer, external_ref="B-1")
    _move(officer, b1, "under_review", t + H)
    _move(officer, b1, "approved", t + 4 * H)
    t = T0 + 5 * D
    r[6] = factories.submit(a, at=t, industry="government", national_id=buyer, external_ref="A-6")
    assert r[6].status == "conflict"
    _move(manager, r[6], "rejected_duplicate", t + 6 * H, note="B registered the buyer first")
    t = NOW - 150 * D
    r[7] = factories.submit(a, at=t, industry="government", external_ref="A-7")
    _move(officer, r[7], "under_review", t + D)
    _move(officer, r[7], "approved", t + 2 * D)
    _move(officer, r[7], "contract_signed", t + 5 * D)
    _move(officer, r[7], "disbursed", t + 10 * D)  # 140 days before NOW: 8 February
    db.session.flush()
    loans = ("org_code,external_ref,as_of,outstanding,days_past_due,status\n"
             "PARTNERA,A-1,2026-06-20,690000,35,delinquent\n"
             "PARTNERA,A-7,2026-04-09,690000,31,delinquent\n"
             "PARTNERA,A-7,2026-06-23,680000,0,current\n")
    report = imports.import_loans(Ctx(user=None), loans.encode(), now=NOW)
    assert report.created == 3, report.rejects
    db.session.commit()
    return r


def _kpis(org_id, kind="rolling90", key="current"):
    snap = db.session.scalar(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id == org_id, ScorecardSnapshot.period_kind == kind,
        ScorecardSnapshot.period_key == key))
    assert snap is not None, (kind, key)
    return snap


def test_each_kpi_against_a_hand_computed_figure(world, history):
    scoring.recompute_all(NOW)
    card = _kpis(world.org_a.id)
    k = card.kpis

    def rate(name, x, n):
        assert (k[name]["x"], k[name]["n"]) == (x, n), name
        assert k[name]["raw"] == pytest.approx(x / n, abs=1e-6), name

    rate("approval_rate", 2, 3)  # r1, r2 approved; r3 declined
    rate("document_first_pass", 2, 3)  # r2 was sent back for documents
    rate("pull_through", 1, 5)  # r1 disbursed; r3, r4, r5, r6 closed without a loan
    rate("conflict_rate", 1, 6)  # r6
    rate("class1_share", 4, 6)  # r1, r2, r5, r6
    rate("sla_compliance", 3, 3)  # every decision within 72 bank hours
    rate("delinquency_rate", 1, 2)  # r1 35 days past due; r7 current again
    assert k["npl_rate"]["x"] == 0 and k["npl_rate"]["n"] == 2
    rate("early_payment_default", 1, 1)  # r7: its first 90 days ended inside the window
    # Partner's clock: r2 24 h, r4 96 h -> median 60 h.
    assert k["partner_response_hours"]["raw"] == pytest.approx(60.0)
    assert k["partner_response_hours"]["n"] == 2
    # Bank's clock to decision: r1 30 h, r2 45 - 24 = 21 h, r3 12 h.
    assert k["bank_turnaround_hours"]["raw"] == pytest.approx(21.0)
    assert k["bank_turnaround_p90_hours"]["raw"] == pytest.approx(21 + 0.8 * (30 - 21))
    assert k["disbursement_hours"]["raw"] == pytest.approx(30.0)  # r1: +30 h to +60 h
    assert k["referrals"]["raw"] == 6
    assert k["disbursed_count"]["raw"] == 1
    assert k["disbursed_amount"]["raw"] == pytest.approx(700000.0)
    assert card.sample_size == 6
    assert card.extra["mix"] == {"1": 4, "2": 1, "3": 1}
    split = card.extra["split"]
    assert split["decided"] == 3
    assert split["bank_hours"] == pytest.approx((30 + 21 + 12) / 3)
    assert split["partner_hours"] == pytest.approx(24 / 3)


def test_rates_are_shrunk_toward_the_portfolio_with_an_interval(world, history):
    scoring.recompute_all(NOW)
    entry = _kpis(world.org_a.id).kpis["approval_rate"]
    # Portfolio: A 2 of 3, B 1 of 1 -> m = 3/4; k = 20.
    portfolio = scoring.portfolio_snapshot().kpis
    assert portfolio["approval_rate"]["value"] == pytest.approx(0.75)
    assert entry["value"] == pytest.approx((2 + 20 * 0.75) / (3 + 20))
    low, high = entry["interval"]
    assert low < entry["value"] < high
    a, b = 2 + 20 * 0.75, 1 + 20 * 0.25
    assert betainc(a, b, low) == pytest.approx(0.05, abs=1e-4)
    assert betainc(a, b, high) == pytest.approx(0.95, abs=1e-4)
    # Hours are weighted toward the portfolio's typical value the same way.
    hours = _kpis(world.org_a.id).kpis["partner_response_hours"]
    assert hours["value"] == pytest.approx(60.0)  # A is the only partner asked for documents


def test_sla_compliance_follows_the_partners_agreement(world, history):
    db.session.execute(update(Agreement).where(Agreement.org_id == world.org_a.id)
                       .values(bank_sla_hours=24))
    db.session.commit()
    scoring.recompute_all(NOW)
    card = _kpis(world.org_a.id)
    # r1 took 30 bank hours, r2 21, r3 12: two of three within a 24-hour promise.
    assert (card.kpis["sla_compliance"]["x"], card.kpis["sla_compliance"]["n"]) == (2, 3)
    assert card.extra["sla_hours"] == 24
    assert _kpis(world.org_b.id).extra["sla_hours"] in (72, 72.0)


def test_monthly_snapshots_and_the_early_payment_default_month(world, history):
    scoring.recompute_all(NOW)
    june = _kpis(world.org_a.id, "month", "2026-06").kpis
    assert (june["approval_rate"]["x"], june["approval_rate"]["n"]) == (2, 3)
    assert june["bank_turnaround_hours"]["raw"] == pytest.approx(21.0)
    assert (june["delinquency_rate"]["x"], june["delinquency_rate"]["n"]) == (1, 2)
    assert june["early_payment_default"]["n"] == 0
    may = _kpis(world.org_a.id, "month", "2026-05").kpis
    # r7 disbursed 8 February: its 90 days end 9 May.
    assert (may["early_payment_default"]["x"], may["early_payment_default"]["n"]) == (1, 1)
    feb = _kpis(world.org_a.id, "month", "2026-02").kpis
    assert feb["disbursed_count"]["raw"] == 1
    assert (feb["delinquency_rate"]["n"]) == 0
    april = _kpis(world.org_a.id, "month", "2026-04").kpis
    assert (april["delinquency_rate"]["x"], april["delinquency_rate"]["n"]) == (1, 1)
    keys = db.session.scalars(select(ScorecardSnapshot.period_key).where(
        ScorecardSnapshot.org_id == world.org_a.id, ScorecardSnapshot.period_kind == "month")
        .order_by(ScorecardSnapshot.period_key)).all()
    assert keys == [f"2025-{m:02d}" for m in range(7, 13)] + [f"2026-{m:02d}"
                                                                for m in range(1, 7)]


def test_month_boundaries_follow_the_banks_time_zone(world):
    # 23:30 UTC on 31 May is 07:30 on 1 June in Shanghai: a June referral.
    factories.submit(world.partner_a, at=datetime(2026, 5, 31, 23, 30, tzinfo=UTC))
    factories.submit(world.partner_a, at=datetime(2026, 5, 31, 15, 30, tzinfo=UTC))  # 23:30 CST
    db.session.commit()
    scoring.recompute_all(NOW)
    assert _kpis(world.org_a.id, "month", "2026-06").kpis["referrals"]["raw"] == 1
    assert _kpis(world.org_a.id, "month", "2026-05").kpis["referrals"]["raw"] == 1


def test_composite_contributions_add_up(world, history):
    scoring.recompute_all(NOW)
    cards = db.session.scalars(select(ScorecardSnapshot).where(
        ScorecardSnapshot.org_id.is_not(None))).all()
    assert cards
    for card in cards:
        points = sum(e["contribution"] for e in card.kpis.values())
        if card.composite is None:  # a month without any data in the whole portfolio
            assert points == 0
            continue
        assert points == pytest.approx(card.composite, abs=0.06)
        assert 0 <= card.composite <= 100
        maximum = sum(e["max_points"] for e in card.kpis.values())
        assert maximum == pytest.approx(100, abs=0.1)
        for name, entry in card.kpis.items():
            if entry["max_points"]:
                assert entry["contribution"] == pytest.approx(
                    entry["max_points"] * entry["score"], abs=0.01), name


def test_weights_are_admin_set_and_versioned(world, history):
    admin = Ctx(user=world.admin)
    only = {k.name: 0 for k in scoring.KPIS}
    only["approval_rate"] = 1
    row = scoring.save_weights(admin, only, scoring.DEFAULT_THRESHOLDS, "approval only")
    scoring.recompute_all(NOW)
    card = _kpis(world.org_a.id)
    assert card.weights_version == row.id
    value = (2 + 20 * 0.75) / 23
    expected = 100 * (value - 0.30) / (0.90 - 0.30)
    assert card.composite == pytest.approx(expected, abs=0.05)
    assert card.kpis["approval_rate"]["max_points"] == 100
    with pytest.raises(Exception) as refused:
        scoring.save_weights(admin, {k.name: 0 for k in scoring.KPIS},
                             scoring.DEFAULT_THRESHOLDS)
    assert "weight" in str(refused.value.fields)


# --- the small-sample rule -----------------------------------------------------------------

_ids = itertools.count(1)


def _bulk(org: Organization, approved: int, declined: int, at: datetime) -> None:
    """Decided referrals inserted in one statement: submitted `at`, decided 24 h later."""
    rows = []
    for i in range(approved + declined):
        n = next(_ids)
        status = "approved" if i < approved else "declined"
        rows.append({
            "org_id": org.id, "product_code": "housing_mortgage", "external_ref": f"BULK-{n}",
            "buyer_name": "测试", "national_id_hash": f"{n:064x}", "national_id_enc": "x",
            "national_id_masked": "x", "mobile_enc": "x", "mobile_masked": "x",
            "employer": "x", "industry": "government", "customer_class": 1,
            "monthly_income": 20000, "amount": 500000, "term_months": 120,
            "consent_notice_version": "bulk", "consent_obtained_at": at, "status": status,
            "clock": "bank" if status == "approved" else None,
            "status_changed_at": at + 24 * H, "bank_seconds": 86400, "partner_seconds": 0,
            "ever_documents_requested": False,
            "decline_reason": "credit_policy" if status == "declined" else None,
            "submitted_at": at, "decided_at": at + 24 * H,
            "closed_at": at + 24 * H if status == "declined" else None, "version": 1})
    db.session.execute(insert(Referral), rows)


def test_two_of_two_does_not_outrank_one_ninety_of_two_hundred(world):
    small = factories.OrgFactory(code="SMALL")
    large = factories.OrgFactory(code="LARGE")
    middle = factories.OrgFactory(code="MIDDLE")
    at = NOW - 20 * D
    _bulk(small, 2, 0, at)
    _bulk(large, 190, 10, at)
    _bulk(middle, 140, 60, at)
    db.session.commit()
    scoring.recompute_all(NOW)
    s = _kpis(small.id)
    big = _kpis(large.id)
    assert s.kpis["approval_rate"]["raw"] == 1.0 > big.kpis["approval_rate"]["raw"] == 0.95
    assert s.kpis["approval_rate"]["value"] < big.kpis["approval_rate"]["value"]
    # The small partner's interval is wide, the large one's narrow.
    width = [c.kpis["approval_rate"]["interval"][1] - c.kpis["approval_rate"]["interval"][0]
             for c in (s, big)]
    assert width[0] > 3 * width[1]
    assert s.composite < big.composite
    # Two referrals cannot make a strategic or even a core partner.
    assert s.tier == "watch"
    order = [code for code, in db.session.execute(
        select(Organization.code).join(ScorecardSnapshot, ScorecardSnapshot.org_id ==
                                       Organization.id)
        .where(ScorecardSnapshot.period_kind == "rolling90",
               Organization.code.in_(["SMALL", "LARGE"]))
        .order_by(ScorecardSnapshot.composite.desc()))]
    assert order == ["LARGE", "SMALL"]


# --- tiers and hysteresis --------------------------------------------------------------------

def test_raw_tier_from_composite_and_sample():
    t = scoring.DEFAULT_THRESHOLDS
    assert raw_tier(80, 100, t) == "strategic"
    assert raw_tier(80, 10, t) == "core"  # too few referrals for strategic
    assert raw_tier(80, 2, t) == "watch"  # too few for core
    assert raw_tier(60, 100, t) == "core"
    assert raw_tier(45, 100, t) == "watch"
    assert raw_tier(10, 100, t) == "exit"
    assert raw_tier(10, 2, t) == "watch"  # a tiny sample does not exit a partner either


def test_hysteresis_up_at_once_down_after_two_periods_below():
    state = None
    tiers = []
    for raw in ["core", "strategic", "core", "strategic", "core", "core", "exit", "watch",
                "watch", "exit", "strategic"]:
        state = step_tier(state, raw)
        tiers.append(state[0])
    assert tiers == [
        "core",
        "strategic",  # up at once
        "strategic",  # one period below: stays
        "strategic",  # back up: the count starts again
        "strategic",  # one below
        "core",  # two below: down
        "core",  # one below core
        "watch",  # two below: down to the better of the two (watch, not exit)
        "watch",
        "watch",  # one below watch
        "strategic",  # up at once
    ]


def test_hysteresis_continues_from_the_stored_month_before(world):
    months = scoring.month_periods(NOW)
    before = scoring.previous_month_key(months[0].key)
    db.session.add(ScorecardSnapshot(
        org_id=world.org_a.id, period_kind="month", period_key=before,
        period_start=months[0].start - 31 * D, period_end=months[0].start, sample_size=300,
        composite=90, raw_tier="strategic", tier="strategic", pending_down=0, kpis={}))
    db.session.commit()
    scoring.recompute_all(NOW)  # no referrals at all: every month is 'watch' on its own
    first = _kpis(world.org_a.id, "month", months[0].key)
    second = _kpis(world.org_a.id, "month", months[1].key)
    assert (first.raw_tier, first.tier, first.pending_down) == ("watch", "strategic", 1)
    assert (second.raw_tier, second.tier) == ("watch", "watch")
    state = db.session.get(TierState, world.org_a.id)
    assert state.tier == "watch"


# --- incremental ---------------------------------------------------------------------------

def test_a_referral_change_marks_its_partner_stale_and_recompute_stale_catches_up(world,
                                                                                  history):
    scoring.recompute_all(NOW)
    db.session.commit()
    assert scoring.stale_org_ids() == []
    before = _kpis(world.org_a.id).kpis["referrals"]["raw"]
    factories.submit(world.partner_a, at=NOW - 2 * H)
    assert scoring.stale_org_ids() == [world.org_a.id]
    result = scoring.recompute_stale(NOW)
    assert result.orgs == 1 and not result.full
    assert _kpis(world.org_a.id).kpis["referrals"]["raw"] == before + 1
    assert scoring.stale_org_ids() == []
    assert db.session.scalar(select(func.count()).select_from(ScoreChange)) == 0
    # B's card was left alone and the portfolio priors were reused.
    assert _kpis(world.org_b.id).computed_at < _kpis(world.org_a.id).computed_at


def test_recompute_org_without_priors_falls_back_to_everything(world, history):
    result = scoring.recompute_org(world.org_a.id, NOW)
    assert result.full
    assert _kpis(world.org_b.id) is not None


def test_recompute_is_idempotent(world, history):
    scoring.recompute_all(NOW)
    first = {(s.org_id, s.period_key): (s.composite, s.tier) for s in
             db.session.scalars(select(ScorecardSnapshot))}
    scoring.recompute_all(NOW)
    second = {(s.org_id, s.period_key): (s.composite, s.tier) for s in
              db.session.scalars(select(ScorecardSnapshot))}
    assert first == second


def test_card_json_has_the_contract_keys(world, history):
    scoring.recompute_all(NOW)
    card = scoring.card_json(_kpis(world.org_a.id))
    assert card["org_code"] == "PARTNERA"
    assert set(scoring.CONTRACT_KPIS) <= set(card["kpis"])
    assert 0 <= card["composite"] <= 100
    assert card["tier"] in scoring.TIERS
    for name in ("approval_rate", "pull_through", "npl_rate"):
        low, high = card["kpis"][name]["interval"]
        assert 0 <= low <= card["kpis"][name]["value"] <= high <= 1
    assert card["kpis"]["bank_turnaround_hours"]["value"] == pytest.approx(21.0)


# --- the beta distribution -------------------------------------------------------------------

@pytest.mark.parametrize("a", [0.3, 1.0, 2.5, 40.0, 900.0])
@pytest.mark.parametrize("p", [0.05, 0.5, 0.95])
def test_beta_quantile_closed_forms(a, p):
    assert beta_ppf(p, a, 1.0) == pytest.approx(p ** (1 / a), abs=1e-9)
    assert beta_ppf(p, 1.0, a) == pytest.approx(1 - (1 - p) ** (1 / a), abs=1e-9)


@pytest.mark.parametrize("a,b", [(0.2, 19.8), (3.5, 17.5), (190.5, 30.5), (2.0, 2000.0),
                                 (5000.0, 3.0)])
def test_beta_quantile_inverts_the_cdf(a, b):
    for p in (0.05, 0.95):
        assert betainc(a, b, beta_ppf(p, a, b)) == pytest.approx(p, abs=1e-8)


def test_symmetric_beta_median_is_a_half():
    assert beta_ppf(0.5, 7.0, 7.0) == pytest.approx(0.5, abs=1e-12)
    value, (low, high) = posterior(10, 20, 0.5, 20, 0.9)
    assert value == pytest.approx(0.5)
    assert low == pytest.approx(1 - high, abs=1e-9)
    assert math.isclose(betainc(20, 20, high) - betainc(20, 20, low), 0.9, abs_tol=1e-8)


CREDIT_KPIS = ("delinquency_rate", "npl_rate", "early_payment_default")


def test_a_partner_cannot_read_single_buyers_defaults_off_its_own_card(world, history, client,
                                                                       app, monkeypatch):
    # The attack (issue 10): with one to three loans the partner's card gave delinquency as a raw
    # fraction, so "1 of 1 loans 30+ days past due" named a buyer's repayment to the dealer.
    from tests.conftest import login
    from tests.integration_helpers import auth, make_key

    scoring.recompute_all(NOW)
    db.session.commit()
    stored = _kpis(world.org_a.id).kpis["delinquency_rate"]
    assert stored["x"] >= 1 and stored["n"] < 5  # the bank's own card shows a default

    own = client.get("/api/v1/scorecard", headers=auth(make_key(world.partner_a))).json
    for name in CREDIT_KPIS:
        entry = own["kpis"][name]
        assert entry["withheld"] is True
        assert [entry[k] for k in ("value", "raw", "interval", "contribution")] == [None] * 4
    assert own["kpis"]["approval_rate"]["value"] is not None  # the rest stays readable
    bank = client.get("/api/v1/scorecard?org_code=PARTNERA",
                      headers=auth(make_key(world.manager))).json
    assert bank["kpis"]["delinquency_rate"]["raw"] == pytest.approx(stored["raw"])
    # Agents never see the card, through the API as on the page.
    agent = client.get("/api/v1/scorecard", headers=auth(make_key(world.agent_a)))
    assert agent.status_code == 403

    login(client, world.partner_a)
    page = client.get("/partner/scorecard").get_data(as_text=True)
    row = page[page.index('data-kpi="delinquency_rate"'):]
    row = row[:row.index("</tr>")]
    assert f'{stored["x"]} / {stored["n"]}' not in row and 'data-testid="withheld"' in row

    # From the bank's minimum on, the partner reads its figures.
    monkeypatch.setitem(app.config, "SCORING_PARTNER_MIN_LOANS", 1)
    own = client.get("/api/v1/scorecard", headers=auth(make_key(world.partner_a))).json
    assert own["kpis"]["delinquency_rate"]["raw"] == pytest.approx(stored["raw"])
