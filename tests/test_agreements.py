"""Cooperation agreements: lifecycle, renewal, templates, acceptance proof, verification,
referral gating, partner isolation and deterministic, cached PDFs."""

from __future__ import annotations

import hashlib
import io
import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Agreement, AgreementAcceptance, AgreementTemplate, AuditEntry, utcnow
from portal import worker
from portal.extensions import db
from portal.services import Ctx, agreements
from portal.services.agreements import pdf
from portal.services.errors import Forbidden, NotFound, StateConflict, ValidationFailed
from tests import factories
from tests.conftest import login


@pytest.fixture(autouse=True)
def _pdf_cache(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path / "pdf-cache"))


def today():
    return agreements.local_today()


def terms(**overrides) -> dict:
    data = {
        "products": ["housing_mortgage"],
        "projects": "旭日花园二期\n旭日广场",
        "stage_guarantee": "乙方提供阶段性连带责任保证。",
        "onsite_staff": "甲方每周二派驻客户经理一名。",
        "bank_sla_hours": "48",
        "partner_doc_days": "5",
        "effective_from": today().isoformat(),
        "expires_on": (today() + timedelta(days=364)).isoformat(),
    }
    data.update(overrides)
    return data


def as_ctx(user, ip="10.1.2.3") -> Ctx:
    return Ctx(user=user, ip=ip)


def issued(world, org=None, **overrides) -> Agreement:
    manager = as_ctx(world.manager)
    agreement = agreements.draft(manager, org or world.org_a, terms(**overrides))
    agreements.issue(manager, agreement)
    return agreement


# --- lifecycle ----------------------------------------------------------------------------------

def test_lifecycle_draft_issue_accept_active_expired(world):
    manager = as_ctx(world.manager)
    agreement = agreements.draft(manager, world.org_a, terms(effective_from=(
        today() + timedelta(days=5)).isoformat()))
    assert agreement.status == "draft"
    assert re.fullmatch(rf"AGR-PARTNERA-{today().year}-\d{{3}}", agreement.number)
    assert agreement.version == 1 and agreement.projects == ["旭日花园二期", "旭日广场"]
    assert agreement.content is None and agreement.pdf_sha256 is None

    agreements.issue(manager, agreement)
    assert agreement.status == "issued" and agreement.issued_by_id == world.manager.id
    assert agreement.pdf_sha256 == hashlib.sha256(agreement.pdf_data).hexdigest()
    assert agreement.content["clauses"][0]["no"] == "第一条"
    assert agreement.content_sha256 == pdf.content_hash(agreement.content)

    agreements.accept(as_ctx(world.partner_a), agreement)
    assert agreement.status == "accepted"  # effective in five days: not yet active

    agreements.roll_statuses(today=today() + timedelta(days=4))
    assert agreement.status == "accepted"
    agreements.roll_statuses(today=today() + timedelta(days=5))
    assert agreement.status == "active" and agreement.activated_at is not None

    agreements.roll_statuses(today=agreement.expires_on)
    assert agreement.status == "active"
    agreements.roll_statuses(today=agreement.expires_on + timedelta(days=1))
    assert agreement.status == "expired" and agreement.ended_at is not None

    actions = db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "agreement", AuditEntry.target_id == str(agreement.id))
        .order_by(AuditEntry.id)).all()
    assert actions == ["agreement.draft", "agreement.issued", "agreement.accepted",
                       "agreement.active", "agreement.expired"]


def test_acceptance_on_or_after_the_effective_date_activates_at_once(world):
    agreement = issued(world)
    agreements.accept(as_ctx(world.partner_a), agreement)
    assert agreement.status == "active"


def test_terminate_needs_a_reason_and_ends_the_agreement(world):
    agreement = issued(world)
    manager = as_ctx(world.manager)
    with pytest.raises(ValidationFailed) as err:
        agreements.terminate(manager, agreement, "  ")
    assert "reason" in err.value.fields
    agreements.terminate(manager, agreement, "Partner licence withdrawn")
    assert agreement.status == "terminated"
    assert agreement.terminated_by_id == world.manager.id
    assert agreement.termination_reason == "Partner licence withdrawn"
    with pytest.raises(StateConflict):
        agreements.terminate(manager, agreement, "again, twice")


def test_illegal_moves_are_refused(world):
    manager = as_ctx(world.manager)
    draft = agreements.draft(manager, world.org_a, terms())
    with pytest.raises(StateConflict):
        agreements.accept(as_ctx(world.partner_a), draft)  # not issued yet
    with pytest.raises(StateConflict):
        agreements.activate(manager, draft)
    with pytest.raises(StateConflict):
        agreements.renew(manager, draft)
    agreements.issue(manager, draft)
    with pytest.raises(StateConflict):
        agreements.issue(manager, draft)  # twice
    with pytest.raises(StateConflict):
        agreements.update_draft(manager, draft, terms())
    with pytest.raises(Forbidden):
        agreements.accept(as_ctx(world.agent_a), draft)  # an agent may not accept
    with pytest.raises(NotFound):
        agreements.accept(as_ctx(world.partner_b), draft)  # another organisation's
    with pytest.raises(NotFound):
        agreements.accept(as_ctx(world.manager), draft)  # bank staff do not accept
    with pytest.raises(StateConflict):
        agreements.accept(as_ctx(world.partner_a), draft, pdf_sha256="0" * 64)  # not what I read
    for user in (world.partner_a, world.officer):
        with pytest.raises(Forbidden):
            agreements.draft(as_ctx(user), world.org_a, terms())
        with pytest.raises(Forbidden):
            agreements.terminate(as_ctx(user), draft, "not allowed to do this")


@pytest.mark.parametrize("overrides, field", [
    ({"products": []}, "products"),
    ({"products": ["no_such_loan"]}, "products"),
    ({"bank_sla_hours": "0"}, "bank_sla_hours"),
    ({"partner_doc_days": "many"}, "partner_doc_days"),
    ({"effective_from": "31/12/2026"}, "effective_from"),
    ({"expires_on": "2000-01-01"}, "expires_on"),
])
def test_draft_validation(world, overrides, field):
    with pytest.raises(ValidationFailed) as err:
        agreements.draft(as_ctx(world.manager), world.org_a, terms(**overrides))
    assert field in err.value.fields


def test_particulars_follow_the_partner_type(world):
    dealer = factories.OrgFactory(code="DEALER", kind="car_dealer", agreement=False)
    agreement = agreements.draft(as_ctx(world.manager), dealer, terms(
        products=["auto_loan"], brands="Northstar\nNorthstar EV"))
    assert agreement.brands == ["Northstar", "Northstar EV"]
    assert agreement.projects == [] and agreement.stage_guarantee is None  # developers only
    assert agreement.template.family == "auto"
    titles = [c["title"] for c in agreements.build_content(agreement)["clauses"]]
    assert "合作品牌" in titles and "阶段性担保" not in titles
    # Clauses are numbered in order, with no gap where a clause is left out.
    numbers = [c["no"] for c in agreements.build_content(agreement)["clauses"]]
    assert numbers[:3] == ["第一条", "第二条", "第三条"] and numbers[9] == "第十条"


# --- renewal ------------------------------------------------------------------------------------

def test_renewal_is_a_new_version_that_supersedes_the_old_when_active(world):
    manager, partner = as_ctx(world.manager), as_ctx(world.partner_a)
    v1 = issued(world)
    agreements.accept(partner, v1)
    assert v1.status == "active"

    v2 = agreements.renew(manager, v1)
    assert (v2.number, v2.version, v2.supersedes_id, v2.status) == (v1.number, 2, v1.id, "draft")
    assert v2.effective_from == v1.expires_on + timedelta(days=1)
    assert v2.products == v1.products and v2.projects == v1.projects
    with pytest.raises(StateConflict):
        agreements.renew(manager, v1)  # one renewal at a time

    agreements.issue(manager, v2)
    agreements.accept(partner, v2)
    assert v2.status == "accepted" and v1.status == "active"  # not yet effective

    agreements.roll_statuses(today=v2.effective_from)
    assert v2.status == "active" and v1.status == "superseded"
    assert [a.version for a in agreements.history(v1)] == [2, 1]
    # Nothing of v1 was rewritten: its PDF and acceptance are still there.
    assert v1.pdf_data and v1.acceptance.pdf_sha256 == v1.pdf_sha256
    with pytest.raises(StateConflict):
        agreements.renew(manager, v1)  # superseded


def test_renewal_effective_today_supersedes_at_acceptance(world):
    manager, partner = as_ctx(world.manager), as_ctx(world.partner_a)
    v1 = issued(world)
    agreements.accept(partner, v1)
    v2 = agreements.renew(manager, v1, {"effective_from": today().isoformat(),
                                        "products": ["housing_mortgage", "consumer_loan"]})
    agreements.issue(manager, v2)
    agreements.accept(partner, v2)
    assert v2.status == "active" and v1.status == "superseded"
    assert v2.products == ["consumer_loan", "housing_mortgage"]


# --- templates ----------------------------------------------------------------------------------

def test_template_edit_makes_a_new_version_and_old_versions_stay(world, as_user):
    agreements.ensure_default_templates()
    v1 = agreements.latest_template("real_estate")
    before = agreements.draft(as_ctx(world.manager), world.org_a, terms())
    body = v1.body.replace("## 其他 | Miscellaneous", "## 附则 | Final provisions")

    with pytest.raises(Forbidden):
        agreements.edit_template(as_ctx(world.manager), v1, body=body)
    v2 = agreements.edit_template(as_ctx(world.admin), v1, body=body, note="renamed 其他")
    assert (v2.key, v2.version, v2.created_by_id) == ("real_estate", 2, world.admin.id)
    assert db.session.get(AgreementTemplate, v1.id).body == v1.body  # unchanged
    with pytest.raises(ValidationFailed):
        agreements.edit_template(as_ctx(world.admin), v2, body=body)  # nothing changed

    after = agreements.draft(as_ctx(world.manager), world.org_a, terms())
    assert (before.template_id, before.template_version) == (v1.id, 1)
    assert after.template_id == v2.id
    assert "附则" in [c["title"] for c in agreements.build_content(after)["clauses"]]
    assert "附则" not in [c["title"] for c in agreements.build_content(before)["clauses"]]

    db.session.commit()
    client = as_user(world.admin)
    page = client.get(f"/bank/agreement-templates/{v1.id}")
    assert page.status_code == 200 and "## 其他 | Miscellaneous" in page.get_data(as_text=True)
    listing = client.get("/bank/agreement-templates").get_data(as_text=True)
    assert "v2" in listing


@pytest.mark.parametrize("body", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}\n## 标题\n- x",  # the sandbox refuses
    "## 标题\n- {{ agreement.no_such_field }}",  # strict: unknown names fail at edit time
    "## 标题\n- {% if %}",  # syntax
    "no clause at all",
])
def test_template_edit_refuses_a_broken_or_unsafe_body(world, body):
    agreements.ensure_default_templates()
    template = agreements.latest_template("service")
    with pytest.raises(ValidationFailed) as err:
        agreements.edit_template(as_ctx(world.admin), template, body=body)
    assert "body" in err.value.fields


def test_admin_edits_a_template_through_the_page(world, as_user):
    agreements.ensure_default_templates()
    v1 = agreements.latest_template("retail")
    db.session.commit()
    client = as_user(world.admin)
    form = client.get(f"/bank/agreement-templates/{v1.id}/edit")
    assert form.status_code == 200
    response = client.post(f"/bank/agreement-templates/{v1.id}/edit", data={
        "title": v1.title, "body": v1.body + "\n## 附件 | Annex\n- 无。", "note": "annex"})
    assert response.status_code == 302
    assert agreements.latest_template("retail").version == 2


# --- acceptance with proof ----------------------------------------------------------------------

def test_partner_admin_accepts_through_the_page_and_proof_is_recorded(world, client, as_user):
    agreement = issued(world)
    db.session.commit()
    # The browser's user agent, from login on (a change would end a "strong" session).
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 test-browser"
    client = as_user(world.partner_a)
    page = client.get(f"/partner/agreements/{agreement.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and agreement.pdf_sha256 in html and "合作范围" in html
    downloaded = client.get(f"/partner/agreements/{agreement.id}/pdf")
    assert downloaded.status_code == 200 and downloaded.mimetype == "application/pdf"
    sha = hashlib.sha256(downloaded.data).hexdigest()
    assert sha == agreement.pdf_sha256 == downloaded.headers["X-Content-SHA256"]

    unconfirmed = client.post(f"/partner/agreements/{agreement.id}/accept",
                              data={"pdf_sha256": sha})
    assert unconfirmed.status_code == 302 and agreement.status == "issued"
    response = client.post(f"/partner/agreements/{agreement.id}/accept",
                           data={"pdf_sha256": sha, "confirm": "y"})
    assert response.status_code == 302
    acceptance = db.session.scalar(select(AgreementAcceptance))
    assert acceptance.agreement_id == agreement.id
    assert acceptance.user_id == world.partner_a.id
    assert acceptance.ip == "127.0.0.1"
    assert acceptance.user_agent == "Mozilla/5.0 test-browser"
    assert acceptance.pdf_sha256 == sha
    assert acceptance.accepted_at is not None
    assert db.session.get(Agreement, agreement.id).status == "active"
    shown = client.get(f"/partner/agreements/{agreement.id}").get_data(as_text=True)
    assert "test-browser" not in shown  # partners see who and when; addresses are bank-side


def test_agent_cannot_accept(world, as_user):
    agreement = issued(world)
    db.session.commit()
    response = as_user(world.agent_a).post(f"/partner/agreements/{agreement.id}/accept",
                                           data={"confirm": "y"})
    assert response.status_code == 403
    assert db.session.get(Agreement, agreement.id).status == "issued"


# --- verification -------------------------------------------------------------------------------

def test_verify_the_accepted_pdf_a_tampered_one_and_an_unknown_hash(world, client):
    agreement = issued(world)
    acceptance = agreements.accept(as_ctx(world.partner_a), agreement)
    data = agreement.pdf_data
    db.session.commit()

    match = agreements.verify(data)
    assert match.agreement.id == agreement.id and match.acceptance.id == acceptance.id
    assert match.matched == "accepted"
    assert agreements.verify(agreement.pdf_sha256.upper()).agreement.id == agreement.id
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    assert agreements.verify(bytes(tampered)) is None
    assert agreements.verify("ab" * 32) is None
    with pytest.raises(ValidationFailed):
        agreements.verify("not a hash")

    # The public page, without logging in.
    page = client.post("/agreements/verify", data={"file": (io.BytesIO(data), "a.pdf")},
                       content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="verify-match"' in html
    assert 'data-matched="accepted"' in html and agreement.number in html
    assert f'data-testid="verify-version">{agreement.version}<' in html
    page = client.post("/agreements/verify",
                       data={"file": (io.BytesIO(bytes(tampered)), "a.pdf")},
                       content_type="multipart/form-data")
    assert 'data-testid="verify-none"' in page.get_data(as_text=True)
    page = client.post("/agreements/verify", data={"sha256": "cd" * 32})
    assert 'data-testid="verify-none"' in page.get_data(as_text=True)
    assert client.post("/agreements/verify", data={"sha256": "xyz"}).status_code == 422
    assert client.get("/agreements/verify").status_code == 200


def test_verify_an_issued_pdf_not_yet_accepted_and_a_footer_content_hash(world):
    agreement = issued(world)
    match = agreements.verify(agreement.pdf_sha256)
    assert match.matched == "issued" and match.acceptance is None
    match = agreements.verify(agreement.content_sha256)
    assert match.matched == "content" and match.agreement.id == agreement.id


# --- gating -------------------------------------------------------------------------------------

def test_no_agreement_means_no_referrals(world):
    org = factories.OrgFactory(code="NOAGR", agreement=False)
    user = factories.UserFactory(org=org, role="partner_admin")
    with pytest.raises(Forbidden) as err:
        factories.submit(user)
    assert "no cooperation agreement in force" in str(err.value.message)


def test_a_product_not_covered_is_refused_with_its_name(world, app):
    org = factories.OrgFactory(code="AUTOONLY", kind="car_dealer", agreement=["auto_loan"])
    user = factories.UserFactory(org=org, role="partner_admin")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(Forbidden) as err:
            factories.submit(user, product="housing_mortgage")
        assert "does not cover Housing mortgage" in str(err.value.message)
    referral = factories.submit(user, product="auto_loan", asset_description="SUV",
                                asset_price="260000", down_payment="80000", amount="150000",
                                term_months="36")
    assert referral.status == "submitted"


def test_gating_follows_status_and_dates(world):
    org = factories.OrgFactory(code="GATED", agreement=False)
    user = factories.UserFactory(org=org, role="partner_admin")
    lapsed = factories.active_agreement(org, ["housing_mortgage"], days_left=-1)
    assert lapsed.status == "active"  # not rolled yet, but past its expiry: not in force
    with pytest.raises(Forbidden):
        factories.submit(user)
    agreement = issued(world, org=org)
    with pytest.raises(Forbidden):
        factories.submit(user)  # issued, not accepted
    agreements.accept(as_ctx(user), agreement)
    assert factories.submit(user).status == "submitted"
    agreements.terminate(as_ctx(world.manager), agreement, "Cooperation ended")
    with pytest.raises(Forbidden):
        factories.submit(user)


def test_history_imports_skip_the_gate(world):
    from portal.services import referrals

    org = factories.OrgFactory(code="IMPORTED", agreement=False)
    user = factories.UserFactory(org=org, role="partner_admin")
    result = referrals.submit(Ctx(user=None, ip="import"), org, factories.intake(), gate=False)
    assert result.referral.org_id == org.id and user.org_id == org.id


def test_new_referral_page_refuses_an_uncovered_product(world, as_user):
    org = factories.OrgFactory(code="WEBGATE", agreement=["consumer_loan"])
    user = factories.UserFactory(org=org, role="partner_admin", email="gate@web.test")
    db.session.commit()
    client = as_user(user)
    response = client.post("/partner/referrals/new", data={
        **factories.intake(), "consent": "y"}, headers={"Accept-Language": "en"})
    assert response.status_code in (403, 422)
    assert "does not cover" in response.get_data(as_text=True)


# --- expiry warnings ----------------------------------------------------------------------------

def test_expiring_soon_for_partner_manager_and_admin(world, as_user):
    soon = factories.active_agreement(world.org_a, ["housing_mortgage"], days_left=10)
    factories.active_agreement(world.org_b, ["housing_mortgage"], days_left=200)
    assert soon in agreements.expiring_soon(world.org_a)
    assert soon in agreements.expiring_soon(world.partner_a)
    assert soon in agreements.expiring_soon(world.manager)  # org A is the manager's partner
    assert agreements.expiring_soon(world.partner_b) == []
    assert agreements.expiring_soon(world.officer) == []
    assert soon in agreements.expiring_soon(world.admin)
    assert soon not in agreements.expiring_soon(world.org_a, days=5)

    db.session.commit()
    page = as_user(world.partner_a).get("/partner/agreements").get_data(as_text=True)
    assert 'data-testid="agreements-expiring"' in page and soon.number in page


@pytest.mark.parametrize("who, url", [
    ("partner_a", "/partner/"), ("manager", "/bank/conflicts"), ("admin", "/admin/")])
def test_dashboards_warn_of_agreements_ending_within_30_days(world, as_user, who, url):
    soon = factories.active_agreement(world.org_a, ["housing_mortgage"], days_left=12)
    db.session.commit()
    page = as_user(getattr(world, who)).get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="agreements-expiring"' in html and soon.number in html


def test_no_warning_for_partner_b(world, as_user):
    factories.active_agreement(world.org_a, ["housing_mortgage"], days_left=12)
    db.session.commit()
    html = as_user(world.partner_b).get("/partner/").get_data(as_text=True)
    assert 'data-testid="agreements-expiring"' not in html


def test_an_accepted_renewal_clears_the_warning(world):
    manager, partner = as_ctx(world.manager), as_ctx(world.partner_a)
    v1 = issued(world, expires_on=(today() + timedelta(days=20)).isoformat())
    agreements.accept(partner, v1)
    assert v1 in agreements.expiring_soon(world.org_a)
    v2 = agreements.renew(manager, v1)
    agreements.issue(manager, v2)
    assert v1 in agreements.expiring_soon(world.org_a)  # issued, not accepted: still warn
    agreements.accept(partner, v2)
    assert v2.status == "accepted"
    assert v1 not in agreements.expiring_soon(world.org_a)


def test_the_partner_dashboard_links_to_an_issued_renewal(world, as_user):
    """Issue 13: once the renewal is issued the warning stops promising one and links to it; a
    draft renewal stays the bank's own (no link, no number)."""
    manager, partner = as_ctx(world.manager), as_ctx(world.partner_a)
    v1 = issued(world, expires_on=(today() + timedelta(days=20)).isoformat())
    agreements.accept(partner, v1)
    v2 = agreements.renew(manager, v1)
    db.session.commit()
    client = as_user(world.partner_a)
    draft_page = client.get("/partner/").get_data(as_text=True)
    assert "Your channel manager will send a renewal to accept." in draft_page
    assert f"/partner/agreements/{v2.id}" not in draft_page

    agreements.issue(manager, v2)
    db.session.commit()
    page = client.get("/partner/").get_data(as_text=True)
    assert "will send a renewal" not in page
    assert (f'href="/partner/agreements/{v2.id}" data-testid="issued-renewal">'
            f"read and accept version {v2.version}") in page
    assert client.get(f"/partner/agreements/{v2.id}").status_code == 200


# --- isolation and roles ------------------------------------------------------------------------

def test_partner_b_cannot_see_partner_a_agreement_or_pdf(world, app, as_user):
    agreement = issued(world)
    draft = agreements.draft(as_ctx(world.manager), world.org_a, terms())
    db.session.commit()
    client = as_user(world.partner_b)
    assert client.get(f"/partner/agreements/{agreement.id}").status_code == 404
    assert client.get(f"/partner/agreements/{agreement.id}/pdf").status_code == 404
    assert client.post(f"/partner/agreements/{agreement.id}/accept",
                       data={"confirm": "y"}).status_code == 404
    listing = client.get("/partner/agreements").get_data(as_text=True)
    assert agreement.number not in listing
    assert db.session.get(Agreement, agreement.id).status == "issued"
    # Partner A sees its own issued agreement, but not a draft.
    client = app.test_client()
    login(client, world.partner_a)
    assert client.get(f"/partner/agreements/{agreement.id}").status_code == 200
    assert client.get(f"/partner/agreements/{draft.id}").status_code == 404
    assert client.get(f"/partner/agreements/{draft.id}/pdf").status_code == 404


@pytest.mark.parametrize("role, status", [
    ("partner_a", 403), ("officer", 403), ("manager", 200), ("admin", 200)])
def test_bank_agreement_pages_by_role(world, as_user, role, status):
    agreement = issued(world)
    db.session.commit()
    client = as_user(getattr(world, role))
    assert client.get("/bank/agreements").status_code == status
    assert client.get(f"/bank/agreements/{agreement.id}").status_code == status
    assert client.get(f"/bank/agreements/{agreement.id}/pdf").status_code == status


def test_templates_are_for_admins(world, as_user):
    assert as_user(world.manager).get("/bank/agreement-templates").status_code == 403


def test_admin_creates_a_template_for_a_family_and_product(world, as_user):
    agreements.ensure_default_templates()
    db.session.commit()
    client = as_user(world.admin)
    assert client.get("/bank/agreement-templates/new").status_code == 200
    taken = client.post("/bank/agreement-templates/new", data={
        "key": "auto", "family": "auto", "product_code": "", "title": "x", "body": "## 一\n- 1"})
    assert taken.status_code == 422
    response = client.post("/bank/agreement-templates/new", data={
        "key": "auto.auto_loan", "family": "auto", "product_code": "auto_loan",
        "title": "个人汽车贷款业务合作协议（专用）",
        "body": "## 合作范围 | Scope\n- 乙方：{{ partner.name }}。"})
    assert response.status_code == 302
    dealer = factories.OrgFactory(code="DEALER2", kind="car_dealer", agreement=False)
    chosen = agreements.default_template_for(dealer, ["auto_loan"])
    assert chosen.key == "auto.auto_loan"
    assert agreements.default_template_for(dealer, ["consumer_loan"]).key == "auto"


def test_channel_manager_drafts_issues_renews_and_terminates_through_the_pages(world, as_user):
    db.session.commit()
    client = as_user(world.manager)
    assert client.get("/bank/agreements/new").status_code == 200  # choose the partner first
    form = client.get(f"/bank/agreements/new?org_id={world.org_a.id}")
    assert form.status_code == 200 and "projects" in form.get_data(as_text=True)
    template = agreements.default_template_for(world.org_a)
    data = {**terms(products=["housing_mortgage", "consumer_loan"]),
            "template_id": str(template.id)}
    data["products"] = ["housing_mortgage", "consumer_loan"]
    bad = client.post(f"/bank/agreements/new?org_id={world.org_a.id}",
                      data={**data, "expires_on": "2000-01-01"})
    assert bad.status_code == 422
    response = client.post(f"/bank/agreements/new?org_id={world.org_a.id}", data=data)
    assert response.status_code == 302
    agreement = db.session.scalar(select(Agreement).where(Agreement.status == "draft"))
    assert agreement.products == ["consumer_loan", "housing_mortgage"]
    assert client.get(f"/bank/agreements/{agreement.id}").status_code == 200
    assert client.get(f"/bank/agreements/{agreement.id}/edit").status_code == 200

    assert client.post(f"/bank/agreements/{agreement.id}/issue").status_code == 302
    agreement = db.session.get(Agreement, agreement.id)
    assert agreement.status == "issued" and agreement.pdf_sha256
    agreements.accept(as_ctx(world.partner_a), agreement)
    db.session.commit()

    assert client.get(f"/bank/agreements/{agreement.id}/renew").status_code == 200
    response = client.post(f"/bank/agreements/{agreement.id}/renew", data={
        **data, "effective_from": (agreement.expires_on + timedelta(days=1)).isoformat(),
        "expires_on": (agreement.expires_on + timedelta(days=366)).isoformat()})
    assert response.status_code == 302
    renewal = db.session.scalar(select(Agreement).where(Agreement.supersedes_id == agreement.id))
    assert renewal.version == 2 and renewal.status == "draft"

    no_confirm = client.post(f"/bank/agreements/{agreement.id}/terminate",
                             data={"reason": "Partner closed its office"})
    assert no_confirm.status_code == 302
    assert db.session.get(Agreement, agreement.id).status == "active"
    client.post(f"/bank/agreements/{agreement.id}/terminate",
                data={"reason": "Partner closed its office", "confirm": "y"})
    assert db.session.get(Agreement, agreement.id).status == "terminated"
    listing = client.get("/bank/agreements?scope=all&status=terminated").get_data(as_text=True)
    assert agreement.number in listing


def test_pages_render_in_both_languages(world, as_user):
    agreement = issued(world)
    db.session.commit()
    client = as_user(world.manager)
    client.post("/language/en")
    english = client.get(f"/bank/agreements/{agreement.id}").get_data(as_text=True)
    assert "Scope of cooperation" in english and "Acceptance record" in english
    client.post("/language/zh_CN")
    chinese = client.get(f"/bank/agreements/{agreement.id}").get_data(as_text=True)
    assert "合作范围" in chinese


# --- PDF: determinism, cache, no network --------------------------------------------------------

def test_same_agreement_renders_the_same_bytes_and_the_cache_is_hit(world, app, tmp_path):
    agreement = agreements.draft(as_ctx(world.manager), world.org_a, terms())
    content = agreements.document(agreement)
    first = pdf.render(content, use_cache=False)
    second = pdf.render(content, use_cache=False)
    assert first.data == second.data and first.sha256 == second.sha256
    assert first.data.startswith(b"%PDF-")

    cold = agreements.pdf_for(agreement)
    assert not cold.cached and cold.data == first.data
    cached_files = list((tmp_path / "pdf-cache").rglob("*.pdf"))
    assert len(cached_files) == 1
    warm = agreements.pdf_for(agreement)
    assert warm.cached and warm.data == first.data

    agreement.bank_sla_hours = 24  # different content: a different document
    changed = agreements.pdf_for(agreement)
    assert not changed.cached and changed.sha256 != first.sha256


def test_unused_renderings_leave_the_cache_and_come_back_identical(world, app, tmp_path):
    agreement = agreements.draft(as_ctx(world.manager), world.org_a, terms())
    first = agreements.pdf_for(agreement)
    (cached,) = (tmp_path / "pdf-cache").rglob("*.pdf")
    stray = cached.with_name("half-written.tmp")
    stray.write_bytes(b"%PDF-")
    now = utcnow()
    month_ago = (now - timedelta(days=31)).timestamp()
    for path in (cached, stray):
        os.utime(path, (month_ago, month_ago))
    # A rendering used since is kept: reading it from the cache marks it as used.
    assert agreements.pdf_for(agreement).cached
    assert pdf.prune_cache(now - timedelta(days=30)) == 0 and cached.exists()
    assert not stray.exists()
    os.utime(cached, (month_ago, month_ago))
    assert worker.housekeeping(now)["pdf_cache_pruned"] == 1 and not cached.exists()
    again = agreements.pdf_for(agreement)
    assert not again.cached and again.data == first.data and cached.exists()


def test_issued_pdf_is_kept_byte_for_byte(world):
    agreement = issued(world)
    issued_bytes = agreement.pdf_data
    world.org_a.name = "Partner A (renamed)"  # later changes do not touch an issued agreement
    assert agreements.pdf_for(agreement).data == issued_bytes
    assert agreements.document(agreement)["partner"]["name"] == "Partner A"
    # ... and re-rendering the frozen content gives the same bytes again.
    assert pdf.render(agreement.content, use_cache=False).sha256 == agreement.pdf_sha256


def test_url_fetcher_refuses_everything_outside_the_static_folder(app, tmp_path):
    fetcher = pdf.StaticOnlyFetcher(app.static_folder)
    inside = fetcher.fetch(f"file://{app.static_folder}/pdf/agreement.css")
    assert b"@page" in inside.read()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    for url in ("http://example.com/font.css", "https://cdn.example.com/x.png",
                f"file://{outside}", f"file://{app.static_folder}/../portal/config.py",
                "ftp://example.com/x"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_cli_rolls_statuses_by_date(app, world):
    lapsed = factories.active_agreement(world.org_a, ["housing_mortgage"], days_left=-1)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["agreements", "roll"])
    assert result.exit_code == 0 and "expired: 1" in result.output
    assert db.session.get(Agreement, lapsed.id).status == "expired"



def test_agreement_lists_only_read_and_the_housekeeping_rolls(world, app, as_user):
    lapsed = factories.active_agreement(world.org_a, ["housing_mortgage"], days_left=-1)
    due = factories.active_agreement(world.org_a, ["consumer_loan"], status="accepted")
    db.session.commit()
    moves = select(func.count()).where(AuditEntry.target_type == "agreement")
    audited = db.session.scalar(moves)
    assert as_user(world.manager).get("/bank/agreements").status_code == 200
    partner = app.test_client()
    login(partner, world.partner_a)
    assert partner.get("/partner/agreements").status_code == 200
    db.session.expire_all()
    assert (lapsed.status, due.status) == ("active", "accepted")  # a GET writes nothing
    assert db.session.scalar(moves) == audited
    done = worker.housekeeping()
    assert (done["agreements_activated"], done["agreements_expired"]) == (1, 1)
    assert (lapsed.status, due.status) == ("expired", "active")


@pytest.mark.parametrize("n, text", [
    (1, "一"), (9, "九"), (10, "十"), (12, "十二"), (20, "二十"), (35, "三十五"), (99, "九十九"),
    (0, "0"), (100, "100")])
def test_chinese_clause_numbers(n, text):
    assert agreements.chinese_number(n) == text


def test_chinese_dates_and_clause_headings():
    from datetime import date

    from portal.services.agreements.chinese import clause_number

    assert agreements.chinese_date(date(2026, 1, 5)) == "2026年1月5日"
    assert clause_number(11) == "第十一条"


def test_terms_report_every_field_at_once(world):
    with pytest.raises(ValidationFailed) as err:
        agreements.clean_terms(world.org_a, {"products": "no_such_loan", "bank_sla_hours": "x",
                                             "partner_doc_days": "0",
                                             "effective_from": "2026-03-01",
                                             "expires_on": "2032-03-01"})
    assert {k: str(v) for k, v in err.value.fields.items()} == {
        "products": "Choose loan products from the list.",
        "bank_sla_hours": "Enter a whole number.",
        "partner_doc_days": "Enter a number from 1 to 90.",
        "expires_on": "An agreement runs for at most five years."}
    with pytest.raises(ValidationFailed) as err:
        agreements.clean_terms(world.org_a, {"products": ["housing_mortgage"]})
    assert set(err.value.fields) == {"effective_from", "expires_on"}  # no default dates


def test_two_admins_accepting_at_once_leave_one_acceptance(app, world):
    from tests.test_concurrency import run_together

    second = factories.UserFactory(org=world.org_a, role="partner_admin", email="admin2@a.test")
    agreement = issued(world)
    db.session.commit()

    def accepter(user_id):
        def job():
            from models import User

            agreements.accept(as_ctx(db.session.get(User, user_id)),
                              db.session.get(Agreement, agreement.id))
            return "accepted"
        return job

    results = run_together(app, [accepter(world.partner_a.id), accepter(second.id)])
    assert results.count("accepted") == 1, results
    assert [type(r) for r in results if r != "accepted"] == [StateConflict], results
    db.session.expire_all()
    assert db.session.scalar(select(func.count(AgreementAcceptance.id))) == 1
    assert db.session.get(Agreement, agreement.id).status == "active"
