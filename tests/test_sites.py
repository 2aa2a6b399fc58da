"""Partners' projects, showrooms and offices (issue 14, point 3).

A site's quota counts the loans approved or signed and those disbursed through it; the partner's
channel manager hears of it once at 80 % and once at 100 %, and the site's and the partner's
pages warn. Bank staff placed on site are shown to the partner by name and work contact only.
A referral names one of its own partner's active sites, on the form, in the API and in the
history import; another partner's site is refused, and nothing is written. The portfolio and the
scorecard drill read per site.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Notification, PartnerSite, Referral, SiteStaff
from portal.bank_time import bank_today
from portal.extensions import db
from portal.services import Ctx, disclosure, imports, referrals, scoring, sites
from portal.services.errors import ValidationFailed
from portal.services.portfolio import PortfolioQuery, portfolio
from portal.services.scoring import KPI_BY_NAME
from portal.services.scoring.drill import Drill, period_of
from tests import factories
from tests.conftest import login
from tests.integration_helpers import api_body, auth, make_key
from tests.test_branch_scope import tree  # noqa: F401  (the EAST/WEST tree fixture)
from tests.test_imports import csv_bytes, row


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _site(world, org=None, *, code="GARDEN", quota="1000000", kind="project", active=True,
          **extra) -> PartnerSite:
    site = sites.create(Ctx(user=world.manager), org or world.org_a, {
        "kind": kind, "code": code, "name": f"{code.title()} site", "quota_amount": quota,
        "active": active, **extra})
    db.session.commit()
    return site


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _asset(amount: str) -> dict:
    return {"amount": amount, "asset_price": str(int(amount) * 2), "down_payment": amount}


def _approve(world, site, amount: str, *, disburse: bool = False) -> Referral:
    referral = factories.submit(world.partner_a, site=str(site.id), **_asset(amount))
    officer = Ctx(user=world.officer)
    referrals.transition(officer, referral, "under_review")
    referrals.transition(officer, referral, "approved", terms={
        "amount": amount, "term_months": 240, "rate_percent": "3.1"})
    if disburse:
        today = bank_today()
        referrals.transition(officer, referral, "contract_signed", terms={
            "number": f"C{referral.id}", "amount": amount, "date": today})
        referrals.transition(officer, referral, "disbursed", terms={
            "amount": amount, "date": today})
    db.session.commit()
    return referral


def _warnings() -> list[int]:
    db.session.expire_all()
    return sorted(n.params["threshold"] for n in db.session.scalars(
        select(Notification).where(Notification.kind == "site_quota")))


# --- quota use and its warnings ------------------------------------------------------------------

def test_the_manager_is_warned_once_at_80_and_once_at_100_percent(app, world, monkeypatch,
                                                                  as_user):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")  # staff hear by e-mail
    site = _site(world, quota="1000000")
    first = _approve(world, site, "500000")
    assert _warnings() == []  # 50 %
    declined = factories.submit(world.partner_a, site=str(site.id), **_asset("900000"))
    referrals.transition(Ctx(user=world.officer), declined, "under_review")
    referrals.transition(Ctx(user=world.officer), declined, "declined", note="no",
                         reason_code="credit_policy")
    db.session.commit()
    assert _warnings() == []  # a declined loan uses nothing
    second = _approve(world, site, "300000")
    assert _warnings() == [80]
    notice = db.session.scalar(select(Notification).where(Notification.kind == "site_quota"))
    assert notice.user_id == world.manager.id  # the partner's channel manager
    # Signing and paying out the same amounts crosses nothing new.
    today = bank_today()
    referrals.transition(Ctx(user=world.officer), second, "contract_signed", terms={
        "number": "C-2", "amount": "300000", "date": today})
    referrals.transition(Ctx(user=world.officer), first, "contract_signed", terms={
        "number": "C-1", "amount": "500000", "date": today})
    referrals.transition(Ctx(user=world.officer), first, "disbursed", terms={
        "amount": "500000", "date": today})
    db.session.commit()
    assert _warnings() == [80]
    _approve(world, site, "200000")
    assert _warnings() == [80, 100]
    _approve(world, site, "150000")  # past 100 %: still the one warning
    assert _warnings() == [80, 100]
    use = sites.usage(db.session.get(PartnerSite, site.id))
    assert (use.disbursed, use.committed) == (Decimal("500000"), Decimal("650000"))
    assert use.percent == 115 and use.level == 100
    assert _count(AuditEntry, AuditEntry.action == "site.quota_warning") == 2
    # The site, the partner's sites and the partner's page all show the warning.
    client = as_user(world.manager)
    for url in (f"/bank/sites/{site.id}", f"/bank/partners/{world.org_a.id}/sites",
                f"/bank/scorecards/{world.org_a.id}"):
        html = client.get(url).get_data(as_text=True)
        assert 'data-testid="quota-warning"' in html and "whole quota" in html, url


def test_a_new_quota_starts_the_warnings_afresh(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    site = _site(world, quota="1000000")
    _approve(world, site, "850000")
    assert _warnings() == [80]
    data = {name: getattr(site, name) for name in sites.FIELDS}
    sites.update(Ctx(user=world.manager), site, {**data, "quota_amount": "120万"})
    db.session.commit()
    assert site.quota_amount == Decimal("1200000") and site.quota_warned == 0  # 70 %
    _approve(world, site, "150000")
    assert _warnings() == [80, 80]  # 80 % of the new quota is a new warning


def test_a_site_without_a_quota_warns_nobody(app, world, monkeypatch, as_user):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    site = _site(world, quota="")
    _approve(world, site, "900000")
    assert _warnings() == []
    html = as_user(world.manager).get(f"/bank/sites/{site.id}").get_data(as_text=True)
    assert "No quota agreed." in html and "quota-warning" not in html


# --- on-site staff -------------------------------------------------------------------------------

def test_the_partner_sees_who_is_on_site_and_when(world, as_user, client):
    site = _site(world)
    other = _site(world, world.org_b, code="B-OFFICE", kind="office")
    officer = world.officer
    officer.name = "Li Qiang"
    sites.assign(Ctx(user=world.manager), site, officer, ["mon", "wed"], "021-5888 1234")
    sites.assign(Ctx(user=world.manager), other, world.admin, ["fri"])
    db.session.commit()
    assert set(disclosure.onsite_contact(site.staff[0])) == {
        "name", "email", "work_phone", "days", "site_id", "site_name"}
    login(client, world.agent_a)
    for url in ("/partner/", f"/partner/sites/{site.id}", "/partner/sites"):
        html = client.get(url).get_data(as_text=True)
        contacts = html[html.index('data-testid="onsite-contacts"'):]
        assert "Li Qiang" in contacts and "officer@bank.test" in contacts, url
        assert "021-5888 1234" in contacts and ">Mon<" in contacts and ">Wed<" in contacts
        assert ">Tue<" not in contacts
        # Nobody of another partner's site, and nothing internal about the officer.
        assert "admin@bank.test" not in html and "Credit officer" not in contacts
    # The site's facts read as on the bank's page (one macro for both).
    details = client.get(f"/partner/sites/{site.id}").get_data(as_text=True)
    details = details[details.index('data-testid="site-details"'):details.index("</dl>")]
    assert "Kind of site" in details and "Real-estate project" in details
    # Partner B sees its own contact only.
    client.post("/logout")
    login(client, world.partner_b)
    html = client.get("/partner/").get_data(as_text=True)
    assert "admin@bank.test" in html and "officer@bank.test" not in html


def test_staff_are_placed_by_managers_within_the_partners_branch(tree, as_user):  # noqa: F811
    w = tree
    site = _site(w, code="EASTSITE")
    # A's partner is in EAST: WEST's manager works elsewhere.
    with pytest.raises(ValidationFailed) as refused:
        sites.assign(Ctx(user=w.manager), site, w.west_manager, ["mon"])
    assert "user_id" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        sites.assign(Ctx(user=w.manager), site, w.east_officer, [])
    assert "days" in refused.value.fields
    client = as_user(w.east_manager)
    response = client.post(f"/bank/sites/{site.id}/staff", data={
        "user_id": str(w.east_officer.id), "days": ["sat", "sun"], "work_phone": "139 0000 1111"})
    assert response.status_code == 302
    placed = db.session.scalar(select(SiteStaff))
    assert placed.weekdays == ["sat", "sun"] and placed.work_phone == "139 0000 1111"
    # Days missing: shown again with the error and what was chosen.
    response = client.post(f"/bank/sites/{site.id}/staff", data={
        "user_id": str(w.east_manager.id), "work_phone": "x-not-a-phone"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Choose at least one day" in html and "Enter a telephone number" in html
    response = client.post(f"/bank/sites/{site.id}/staff/{placed.id}/remove")
    assert response.status_code == 302 and _count(SiteStaff) == 0
    assert _count(AuditEntry, AuditEntry.action.in_(("site.staff_assign",
                                                     "site.staff_remove"))) == 2


# --- branch scope --------------------------------------------------------------------------------

def test_another_branchs_sites_are_not_found(tree, as_user, client):  # noqa: F811
    w = tree
    b_site = _site(w, w.org_b, code="B-SHOW", kind="showroom")
    a_site = _site(w, code="A-PROJ")
    east = as_user(w.east_manager)
    for url in (f"/bank/sites/{b_site.id}", f"/bank/sites/{b_site.id}/edit",
                f"/bank/partners/{w.org_b.id}/sites"):
        assert east.get(url).status_code == 404, url
    assert east.post(f"/bank/sites/{b_site.id}/staff", data={
        "user_id": str(w.east_officer.id), "days": ["mon"]}).status_code == 404
    assert east.post(f"/bank/partners/{w.org_b.id}/sites", data={
        "kind": "office", "code": "INTRUDER", "name": "x"}).status_code == 404
    assert east.get(f"/bank/sites/{a_site.id}").status_code == 200
    assert _count(PartnerSite) == 2 and _count(SiteStaff) == 0
    client.post("/logout")
    login(client, w.partner_b)
    assert client.get(f"/partner/sites/{a_site.id}").status_code == 404
    assert client.get(f"/partner/sites/{b_site.id}").status_code == 200


# --- keeping sites -------------------------------------------------------------------------------

def test_a_manager_creates_and_edits_a_site_and_bad_input_is_kept(world, as_user):
    client = as_user(world.manager)
    url = f"/bank/partners/{world.org_a.id}/sites"
    response = client.post(url, data={"kind": "project", "code": "9bad", "name": "Lakeside",
                                      "quota_amount": "lots", "address": "Lake Road 1"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "starting with a letter" in html and "Enter the quota in yuan" in html
    assert 'value="Lake Road 1"' in html and _count(PartnerSite) == 0
    response = client.post(url, data={
        "kind": "project", "code": "lakeside", "name": "Lakeside", "quota_amount": "5000万",
        "presale_permit": "预许字(2026)第1号", "staged_guarantee": "y",
        "guarantee_contract_number": "BZ-1", "guarantee_expected_end": "2028-06-30",
        "active": "y"})
    assert response.status_code == 302
    site = db.session.scalar(select(PartnerSite))
    assert (site.code, site.quota_amount, site.staged_guarantee) == (
        "LAKESIDE", Decimal("50000000"), True)
    assert site.guarantee_expected_end.isoformat() == "2028-06-30"
    # The same code again is refused; a showroom keeps no permit or guarantee.
    response = client.post(url, data={"kind": "office", "code": "LAKESIDE", "name": "Again"})
    assert response.status_code == 422 and "already has a site" in response.get_data(True)
    response = client.post(f"/bank/sites/{site.id}/edit", data={
        "kind": "showroom", "code": "LAKESIDE", "name": "Lakeside showroom",
        "presale_permit": "kept?", "staged_guarantee": "y", "active": "y"})
    assert response.status_code == 302
    db.session.refresh(site)
    assert site.kind == "showroom" and site.presale_permit is None and not site.staged_guarantee
    assert _count(AuditEntry, AuditEntry.action.in_(("site.create", "site.update"))) == 2
    # Officers do not keep sites.
    client.post("/logout")
    login(client, world.officer)
    assert client.get(f"/bank/sites/{site.id}").status_code == 403


# --- a referral names its site -------------------------------------------------------------------

def test_the_form_offers_only_the_partners_active_sites_and_refuses_another_partners(
        world, as_user):
    own = _site(world, code="OWN")
    closed = _site(world, code="CLOSED", active=False)
    theirs = _site(world, world.org_b, code="THEIRS")
    client = as_user(world.agent_a)
    html = client.get("/partner/referrals/new").get_data(as_text=True)
    assert f'value="{own.id}"' in html
    assert f'value="{closed.id}"' not in html and f'value="{theirs.id}"' not in html
    data = {**factories.intake(buyer_name="Typed Name"), "consent": "y"}
    for refused in (theirs.id, closed.id, 999999):
        response = client.post("/partner/referrals/new", data={**data, "site": str(refused)})
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert 'data-error-for="site"' in html and "not one of your organisation" in html
        assert 'value="Typed Name"' in html  # nothing typed is lost
    assert _count(Referral) == 0
    response = client.post("/partner/referrals/new", data={**data, "site": str(own.id)})
    assert response.status_code == 302
    referral = db.session.scalar(select(Referral))
    assert referral.site_id == own.id
    page = client.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    assert 'data-testid="referral-site"' in page and "Own site" in page
    client.post("/logout")
    login(client, world.officer)
    page = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert 'data-testid="referral-site"' in page and "OWN" in page


def test_the_api_takes_a_site_by_id_or_code_and_refuses_another_partners(world, client):
    own = _site(world, code="OWN-SHOW", kind="showroom")
    theirs = _site(world, world.org_b, code="THEIRS")
    key = make_key(world.partner_a)
    for refused in (theirs.id, "THEIRS", str(theirs.id), "NOPE", True):
        response = client.post("/api/v1/referrals", headers=auth(key),
                               json=api_body(site=refused))
        assert response.status_code == 422, refused
        assert "site" in response.json["error"]["fields"], refused
    assert _count(Referral) == 0
    by_code = client.post("/api/v1/referrals", headers=auth(key), json=api_body(site="own-show"))
    assert by_code.status_code == 201, by_code.json
    assert by_code.json["site"] == {"id": own.id, "code": "OWN-SHOW", "name": "Own-Show site"}
    by_id = client.post("/api/v1/referrals", headers=auth(key), json=api_body(site=own.id))
    assert by_id.status_code == 201 and by_id.json["site"]["id"] == own.id
    none = client.post("/api/v1/referrals", headers=auth(key), json=api_body())
    assert none.status_code == 201 and none.json["site"] is None
    listed = client.get("/api/v1/sites", headers=auth(key)).json
    assert [s["code"] for s in listed["items"]] == ["OWN-SHOW"] and listed["total"] == 1
    assert client.get("/api/v1/sites", headers=auth(make_key(world.manager))).status_code == 403
    spec = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert "site" in spec["ReferralIn"]["properties"] and "site" in spec["ReferralOut"][
        "properties"]


def test_the_history_import_takes_an_optional_site_column(world):
    own = _site(world, code="OWN")
    _site(world, world.org_b, code="THEIRS")
    header = ("org_code,external_ref,product,buyer_name,national_id,mobile,industry,"
              "monthly_income,amount,term_months,submitted_at,status_history,site")
    report = imports.import_referrals(Ctx(user=None, ip="test"), csv_bytes(
        row(ref="S-1") + ",OWN", row(ref="S-2") + ",THEIRS", row(ref="S-3") + ",",
        header=header), "history.csv")
    assert (report.created, report.rejected) == (2, 1), report.rejects
    assert "S-2" not in {r.external_ref for r in db.session.scalars(select(Referral))}
    assert "site" in report.rejects[0][1]
    named = {r.external_ref: r.site_id for r in db.session.scalars(select(Referral))}
    assert named == {"S-1": own.id, "S-3": None}


# --- per site: portfolio and scorecard drill -----------------------------------------------------

def _disburse(world, amount: str, site=None) -> Referral:
    overrides = {"site": str(site.id)} if site else {}
    referral = factories.submit(world.partner_a, **_asset(amount), **overrides)
    officer, today = Ctx(user=world.officer), bank_today()
    referrals.transition(officer, referral, "under_review")
    referrals.transition(officer, referral, "approved", terms={
        "amount": amount, "term_months": 240, "rate_percent": "3.1"})
    referrals.transition(officer, referral, "contract_signed", terms={
        "number": f"C{referral.id}", "amount": amount, "date": today})
    referrals.transition(officer, referral, "disbursed", terms={"amount": amount, "date": today})
    return referral


def test_the_portfolio_reads_per_site(world, as_user):
    garden = _site(world, code="GARDEN", quota="")
    lake = _site(world, code="LAKE", quota="")
    _disburse(world, "500000", garden)
    _disburse(world, "300000", garden)
    _disburse(world, "200000", lake)
    _disburse(world, "150000")
    factories.submit(world.partner_a, amount="400000", site=str(lake.id))  # not lent
    db.session.commit()
    book = portfolio(PortfolioQuery(group_by="site"))
    got = {g.key: (g.label, g.borrowers, g.disbursed_amount) for g in book.groups}
    assert got == {str(garden.id): ("Garden site (PARTNERA)", 2, 800000.0),
                   str(lake.id): ("Lake site (PARTNERA)", 1, 200000.0),
                   "0": ("No site named", 1, 150000.0)}
    only = portfolio(PortfolioQuery(group_by="product", site=garden.id))
    assert (only.total.borrowers, only.total.disbursed_amount) == (2, 800000.0)
    client = as_user(world.manager)
    page = client.get(f"/bank/portfolio?group_by=site&org_code=PARTNERA&site={garden.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="site-filter"' in html
    assert f'value="{garden.id}" selected' in html
    loans = client.get(f"/bank/portfolio/loans?group_by=site&key={lake.id}")
    assert loans.get_data(as_text=True).count('data-testid="loan-row"') in (0, 1)
    from portal.services.portfolio import loans as loan_query
    rows = db.session.scalars(loan_query(PortfolioQuery(group_by="site", key="0"))).all()
    assert [r.amount for r in rows] == [Decimal("150000")]
    # The API reads the same, per site.
    key = make_key(world.manager)
    answer = client.get(f"/api/v1/portfolio?group_by=site&site={garden.id}",
                        headers=auth(key)).json
    assert [(g["key"], g["borrowers"]) for g in answer["groups"]] == [(str(garden.id), 2)]
    assert answer["filters"]["site"] == str(garden.id)


def test_the_scorecard_drill_reads_per_site(world, as_user):
    garden = _site(world, code="GARDEN", quota="")
    lake = _site(world, code="LAKE", quota="")
    for site in (garden, garden, lake, None):
        factories.submit(world.partner_a, **({"site": str(site.id)} if site else {}))
    db.session.commit()
    scoring.recompute_all()
    db.session.commit()
    kpi = KPI_BY_NAME["referrals"]
    from blueprints.bank.scorecard_drill import snapshot_for

    drill = Drill(kpi, world.org_a.id, period_of(snapshot_for(world.org_a.id, "current")))
    assert drill.by_site() == {garden.id: 2, lake.id: 1, 0: 1}
    assert Drill(kpi, world.org_a.id, drill.period, garden.id).count("den") == 2
    assert Drill(kpi, world.org_a.id, drill.period, 0).count("den") == 1
    client = as_user(world.manager)
    base = f"/bank/scorecards/{world.org_a.id}/kpis/referrals"
    html = client.get(f"{base}?site={lake.id}").get_data(as_text=True)
    assert html.count('data-testid="drill-row"') == 1 and 'data-testid="drill-by-site"' in html
    # Another partner's site is no filter at all.
    theirs = _site(world, world.org_b, code="THEIRS", quota="")
    html = client.get(f"{base}?site={theirs.id}").get_data(as_text=True)
    assert html.count('data-testid="drill-row"') == 4
