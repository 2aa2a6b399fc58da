"""Bank staff see their branch's subtree only (issue 14).

The tree: the province; EAST with its operating branch EAST_OP (partner A); WEST (partner B).
A channel manager, a credit officer and an administrator of EAST ask for every object of partner
B's by its id — every bank page and action that names an object, and the API — and find nothing
(404), exactly as partner A would; the province's staff open all of it. The lists never show
partner B to EAST's staff. Also here: the tree's rules, the CLI, reassignment, and the roll-ups.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from models import (
    AuditEntry,
    Branch,
    ContactLog,
    FollowUp,
    Organization,
    Referral,
    ReferralEvent,
    RevealRequest,
    User,
    utcnow,
)
from portal.extensions import db
from portal.services import (
    Ctx,
    branches,
    customer_leads,
    disputes,
    documents,
    followups,
    referrals,
    reveals,
    scoring,
    sites,
)
from portal.services.errors import Forbidden, ValidationFailed
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key, pdf_bytes
from tests.test_access_matrix import ACCESS

# URL arguments that name an object of a partner's (what another branch must not reach).
PARTNER_OBJECTS = {"referral_id", "document_id", "agreement_id", "follow_up_id", "dispute_id",
                   "org_id", "request_id", "item_id", "lead_id", "site_id", "assignment_id"}
ROLE_OF = {"east_manager": "manager", "east_officer": "officer", "east_admin": "admin",
           "manager": "manager", "officer": "officer", "admin": "admin"}


@pytest.fixture
def tree(world):
    east = factories.branch("EAST", model="loan_centre_deep")
    west = factories.branch("WEST", model="key_account")
    east_op = factories.branch("EAST_OP", "EAST", model="joint_deep")
    world.org_a.branch_id, world.org_b.branch_id = east_op.id, west.id
    world.east_manager = factories.UserFactory.bank("channel_manager", email="m.east@bank.test",
                                                    branch=east)
    world.east_officer = factories.UserFactory.bank("credit_officer", email="o.east@bank.test",
                                                    branch=east)
    world.east_admin = factories.UserFactory.bank("admin", email="a.east@bank.test",
                                                  branch=east)
    world.west_manager = factories.UserFactory.bank("channel_manager", email="m.west@bank.test",
                                                    branch=west)
    world.org_b.channel_manager_id = world.west_manager.id
    world.east, world.west, world.east_op = east, west, east_op
    db.session.commit()
    return world


@pytest.fixture
def b_objects(tree):
    """Partner B's objects (WEST), one of each kind a URL can name; and one conflict of B's."""
    w = tree
    officer, manager = Ctx(user=w.officer), Ctx(user=w.manager)
    referral = factories.submit(w.partner_b)
    document = documents.upload(Ctx(user=w.partner_b), referral, "id_card", "id.pdf",
                                pdf_bytes())
    agreement = factories.active_agreement(w.org_b)
    follow_up = followups.add(manager, referral)
    ask = reveals.ask(officer, referral, "other", "scope test")
    followups.log_contact(manager, w.org_b, "call", None, "Called partner B")
    # A's buyer, registered by B later: a conflict of B's whose holder is A's (EAST).
    held_by_a = factories.submit(w.partner_a)
    data = factories.intake(national_id=referrals.pii.decrypt(held_by_a.national_id_enc))
    conflict = referrals.submit(Ctx(user=w.partner_b), w.org_b, data).referral
    assert conflict.status == "conflict"
    scoring.recompute_all()
    dispute = disputes.open_dispute(Ctx(user=w.partner_b), w.org_b,
                                    {"subject": "kpi:approval_rate", "note": "Looks low"})
    lead = customer_leads.create(manager, w.org_b, {
        "customer_name": "Scope", "mobile": "13812345678", "need": "other", "consent": True,
        "consent_method": "signed_form", "consent_at": utcnow() - timedelta(hours=1)})
    site = sites.create(manager, w.org_b, {"kind": "showroom", "code": "B-SHOW",
                                           "name": "B's showroom", "quota_amount": "5000000"})
    placed = sites.assign(manager, site, w.west_manager, ["tue", "thu"])
    db.session.commit()
    return {"site_id": site.id, "assignment_id": placed.id,
            "referral_id": referral.id, "document_id": document.id,
            "agreement_id": agreement.id, "follow_up_id": follow_up.id, "dispute_id": dispute.id,
            "org_id": w.org_b.id, "request_id": ask.id, "name": "approval_rate",
            "user_id": w.partner_b.id, "conflict_id": conflict.id, "held_by_a": held_by_a.id,
            "template_id": 1, "batch_id": 1, "branch_id": w.west.id,
            "item_id": document.stipulation_id, "filter_id": 1, "code": "consumer_loan",
            "lead_id": lead.id}


def _client(app, user):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, user)
    return client


def _object_rules(app, method):
    """Every bank and admin route that names a partner's object."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if (rule.endpoint.split(".")[0] in ("bank", "admin") and method in rule.methods
                and set(rule.arguments) & PARTNER_OBJECTS):
            yield rule


def _url(rule, objects):
    return rule.build({name: objects[name] for name in rule.arguments}, append_unknown=False)[1]


def _fingerprint():
    db.session.expire_all()
    counts = [db.session.scalar(select(func.count()).select_from(t)) for t in
              (Referral, ReferralEvent, FollowUp, ContactLog, RevealRequest, AuditEntry)]
    rows = db.session.execute(select(Referral.id, Referral.status, Referral.version)).all()
    return counts, rows


@pytest.mark.parametrize("who", ["east_manager", "east_officer", "east_admin"])
def test_another_branchs_objects_are_not_found_on_every_page_and_action(app, tree, b_objects,
                                                                        who):
    client = _client(app, getattr(tree, who))
    role = ROLE_OF[who]
    checked = 0
    for rule in _object_rules(app, "GET"):
        if "GET" not in rule.methods or role not in ACCESS[rule.endpoint]:
            continue
        url = _url(rule, b_objects)
        assert client.get(url).status_code == 404, f"{who} GET {url}"
        checked += 1
    # Officers: the referral and its document; managers: also agreements, cards, follow-ups...
    assert checked >= (2 if role == "officer" else 10)
    before = _fingerprint()
    for rule in _object_rules(app, "POST"):
        if role not in ACCESS[rule.endpoint]:
            continue
        url = _url(rule, b_objects)
        response = client.post(url, data={
            "to": "under_review", "decision": "approve", "version": "1", "note": "x",
            "reason": "x", "reason_code": "other", "reason_text": "x", "kinds": "id_card",
            "answer": "x", "kind": "call", "body": "x", "outcome": "reached",
            "name": "Renamed", "status": "active"})
        assert response.status_code == 404, f"{who} POST {url}"
    counts, rows = _fingerprint()
    # Nothing changed but the refusals' own audit entries (access.denied).
    assert rows == before[1] and counts[:-1] == before[0][:-1]
    # Their own branch's partner is theirs to open.
    own = factories.submit(tree.partner_a)
    db.session.commit()
    if role in ACCESS["bank.referral"]:
        assert client.get(f"/bank/referrals/{own.id}").status_code == 200


@pytest.mark.parametrize("who", ["manager", "officer", "admin"])
def test_the_provinces_staff_open_every_branchs_objects(app, tree, b_objects, who):
    client = _client(app, getattr(tree, who))
    role = ROLE_OF[who]
    for rule in _object_rules(app, "GET"):
        if "GET" not in rule.methods or role not in ACCESS[rule.endpoint]:
            continue
        url = _url(rule, b_objects)
        status = client.get(url).status_code
        assert status < 400, f"{who} GET {url}: {status}"


LISTS = ["/bank/queue", "/bank/referrals", "/bank/conflicts?scope=all", "/bank/held?scope=all",
         "/bank/agreements?scope=all", "/bank/scorecards", "/bank/followups?scope=all",
         "/bank/followups?view=candidates&scope=all", "/bank/contacts?scope=all",
         "/bank/disputes?status=", "/bank/portfolio?group_by=org", "/admin/orgs",
         "/bank/agreements/new", "/bank/leads", "/bank/leads/new"]


def _mentions_b(html: str) -> bool:
    return "PARTNERB" in html or "Partner B" in html


def test_lists_show_another_branchs_partner_to_nobody_but_the_province(app, tree, b_objects):
    east, province = _client(app, tree.east_manager), _client(app, tree.admin)
    east_admin = _client(app, tree.east_admin)
    seen_by_province = []
    for url in LISTS:
        whole = province.get(url).get_data(as_text=True)
        if _mentions_b(whole):
            seen_by_province.append(url)
        for client in (east, east_admin):
            response = client.get(url)
            if response.status_code == 403:
                continue
            assert response.status_code == 200, url
            assert not _mentions_b(response.get_data(as_text=True)), url
    assert {"/bank/referrals", "/bank/conflicts?scope=all", "/bank/agreements?scope=all",
            "/bank/scorecards", "/bank/followups?scope=all", "/bank/contacts?scope=all",
            "/bank/disputes?status=", "/admin/orgs", "/bank/leads"} <= set(seen_by_province)
    # The reveal requests and the reveal log are about B's buyer: not EAST's to read.
    page = east.get("/bank/reveal-requests").get_data(as_text=True)
    assert f'/bank/referrals/{b_objects["referral_id"]}"' not in page
    assert reveals.pending_count(tree.east_manager) == 0
    assert reveals.pending_count(tree.manager) == 1


def test_a_conflict_names_a_holder_of_another_branch_to_nobody_there(app, tree, b_objects):
    """WEST's manager settles B's conflict; the buyer's holder is EAST's partner A: WEST learns
    it is held, not by whom."""
    west = _client(app, tree.west_manager)
    page = west.get("/bank/conflicts?scope=all").get_data(as_text=True)
    assert f'/bank/referrals/{b_objects["conflict_id"]}"' in page
    assert 'data-testid="other-branch"' in page and "PARTNERA" not in page
    detail = west.get(f"/bank/referrals/{b_objects['conflict_id']}").get_data(as_text=True)
    assert 'data-testid="other-branch"' in detail and "PARTNERA" not in detail
    # The province sees who holds it.
    page = _client(app, tree.manager).get("/bank/conflicts?scope=all").get_data(as_text=True)
    assert f'/bank/referrals/{b_objects["held_by_a"]}"' in page


def test_the_api_answers_another_branchs_objects_with_404(app, tree, b_objects):
    key = make_key(tree.east_officer)
    client = app.test_client()
    rid = b_objects["referral_id"]
    assert client.get(f"/api/v1/referrals/{rid}", headers=auth(key)).status_code == 404
    moved = client.post(f"/api/v1/referrals/{rid}/transitions", headers=auth(key),
                        json={"to": "under_review"})
    assert moved.status_code == 404
    upload = client.post(f"/api/v1/referrals/{rid}/documents", headers=auth(key),
                         data={"kind": "id_card", "file": (pdf_bytes(), "x.pdf")})
    assert upload.status_code == 404
    listed = client.get("/api/v1/referrals?per_page=100", headers=auth(key)).get_json()
    assert {r["org_code"] for r in listed["items"]} <= {"PARTNERA"}
    assert any(r["org_code"] == "PARTNERA" for r in listed["items"])
    manager_key = make_key(tree.east_manager)
    agreement = b_objects["agreement_id"]
    assert client.get(f"/api/v1/agreements/{agreement}/pdf",
                      headers=auth(manager_key)).status_code == 404
    listed = client.get("/api/v1/agreements", headers=auth(manager_key)).get_json()["items"]
    assert listed and agreement not in {a["id"] for a in listed}
    card = client.get("/api/v1/scorecard?org_code=PARTNERB", headers=auth(manager_key))
    assert card.status_code == 404
    cards = client.get("/api/v1/scorecards", headers=auth(manager_key)).get_json()
    assert {c["org_code"] for c in cards["items"]} == {"PARTNERA"}
    # The province's key reads both.
    province = make_key(tree.officer)
    assert client.get(f"/api/v1/referrals/{rid}", headers=auth(province)).status_code == 200
    both = client.get("/api/v1/scorecards", headers=auth(make_key(tree.manager))).get_json()
    assert {c["org_code"] for c in both["items"]} == {"PARTNERA", "PARTNERB"}


# --- the tree ---------------------------------------------------------------------------------

def test_the_tree_keeps_codes_unique_levels_and_no_cycles(tree):
    system = Ctx(user=None)
    with pytest.raises(ValidationFailed) as err:
        branches.create(system, code="east", name="Again")
    assert "code" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        branches.create(system, code="X", name="")  # too short a code, and no name
    assert set(err.value.fields) == {"code", "name"}
    with pytest.raises(ValidationFailed) as err:
        branches.create(system, code="DEEPER", name="Too deep", parent="EAST_OP")
    assert "parent" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        branches.create(system, code="NEWB", name="New", parent="NOPE", model="sideways")
    assert set(err.value.fields) == {"parent", "model"}
    # No cycles: EAST cannot move under its own operating branch, nor under itself.
    for parent in (tree.east_op, tree.east):
        with pytest.raises(ValidationFailed) as err:
            branches.update(system, tree.east, name="East", parent=parent)
        assert "parent" in err.value.fields
    # EAST (with a branch under it) under WEST would make a fourth level.
    with pytest.raises(ValidationFailed):
        branches.update(system, tree.east, name="East", parent=tree.west)
    # An operating branch moves, with its partners: now WEST's staff see partner A.
    branches.update(system, tree.east_op, name="Moved", parent=tree.west)
    db.session.commit()
    moved = db.session.get(Branch, tree.east_op.id)
    assert moved.path == f"{tree.west.path}{moved.id}/" and moved.level == 2
    assert branches.may_see_org(tree.west_manager, tree.org_a)
    assert not branches.may_see_org(tree.east_manager, tree.org_a)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "branch.update"))
    assert entry.detail["changes"]["parent"] == ["EAST", "WEST"]


def test_only_the_provinces_administrators_shape_the_tree(app, tree):
    with pytest.raises(Forbidden):
        branches.create(Ctx(user=tree.east_admin), code="SOUTH", name="South")
    client = _client(app, tree.east_admin)
    page = client.get("/admin/branches").get_data(as_text=True)
    assert "EAST_OP" in page and 'data-branch="WEST"' not in page
    assert 'data-testid="branch-form"' not in page
    assert client.get(f"/admin/branches/{tree.west.id}").status_code == 404


def test_admin_pages_create_and_edit_branches(app, tree):
    client = _client(app, tree.admin)
    response = client.post("/admin/branches", data={"code": "south", "name": "South",
                                                    "parent": "", "model": "key_account"})
    assert response.status_code == 302
    south = branches.by_code("SOUTH")
    assert south.parent.code == "PROVINCE" and south.level == 1
    again = client.post("/admin/branches", data={"code": "SOUTH", "name": "Twice",
                                                 "parent": "", "model": ""})
    assert again.status_code == 422
    assert "already exists" in again.get_data(as_text=True)
    cycle = client.post(f"/admin/branches/{tree.east.id}", data={
        "name": "East", "parent": "EAST_OP", "model": ""})
    assert cycle.status_code == 422 and "cannot move under itself" in cycle.get_data(as_text=True)
    page = client.get("/admin/branches").get_data(as_text=True)
    assert page.index('data-branch="EAST"') < page.index('data-branch="EAST_OP"')
    assert "Loan-centre deep distribution" in page


def test_a_users_branch_is_set_on_the_admin_page_and_audited(app, tree):
    client = _client(app, tree.admin)
    response = client.post(f"/admin/users/{tree.officer.id}/branch", data={"branch": "WEST"})
    assert response.status_code == 302
    officer = db.session.get(User, tree.officer.id)
    assert officer.branch.code == "WEST"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.branch"))
    assert entry.detail == {"changes": {"branch": [None, "WEST"]}}
    # A partner's user has no branch: the page says so and changes nothing.
    client.post(f"/admin/users/{tree.partner_a.id}/branch", data={"branch": "WEST"})
    assert db.session.get(User, tree.partner_a.id).branch_id is None


def test_reassigning_a_partner_is_audited_and_keeps_its_manager_in_its_branch(app, tree):
    client = _client(app, tree.admin)
    form = {"name": "Partner B", "status": "active", "contact_name": "", "contact_phone": "",
            "contact_email": ""}
    # EAST's manager cannot look after a partner of WEST.
    refused = client.post(f"/admin/orgs/{tree.org_b.id}", data={
        **form, "branch": "WEST", "channel_manager_id": str(tree.east_manager.id)})
    assert refused.status_code == 422 and "works in another branch" in refused.get_data(
        as_text=True)
    assert db.session.get(Organization, tree.org_b.id).channel_manager_id == tree.west_manager.id
    done = client.post(f"/admin/orgs/{tree.org_b.id}", data={
        **form, "branch": "EAST", "channel_manager_id": str(tree.east_manager.id)})
    assert done.status_code == 302
    org = db.session.get(Organization, tree.org_b.id)
    assert org.branch.code == "EAST" and org.channel_manager_id == tree.east_manager.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "org.reassign"))
    assert entry.target_id == str(org.id)
    assert entry.detail["changes"] == {"branch": ["WEST", "EAST"],
                                       "channel_manager": ["m.west@bank.test",
                                                           "m.east@bank.test"]}
    # Now partner B is EAST's: its manager opens B's page; WEST's no longer does.
    db.session.commit()
    assert _client(app, tree.east_manager).get(f"/bank/scorecards/{org.id}").status_code == 200
    assert _client(app, tree.west_manager).get(f"/bank/scorecards/{org.id}").status_code == 404
    assert branches.may_see_org(tree.east_manager, org)
    assert not branches.may_see_org(tree.west_manager, org)


# --- roll-ups and filters -----------------------------------------------------------------------

def _disburse(user, officer, at):
    r = factories.submit(user, at=at)
    for to in ("under_review", "approved", "contract_signed", "disbursed"):
        at += timedelta(hours=6)
        referrals.transition(officer, r, to, at=at)
    return r


def test_the_portfolio_rolls_up_and_filters_by_branch(app, tree):
    officer = Ctx(user=tree.officer)
    start = utcnow() - timedelta(days=20)
    for i in range(3):
        _disburse(tree.partner_a, officer, start + timedelta(days=i))
    _disburse(tree.partner_b, officer, start)
    db.session.commit()
    province, east = _client(app, tree.manager), _client(app, tree.east_manager)

    def groups(client, **args):
        body = client.get("/bank/portfolio.csv", query_string=args).get_data(as_text=True)
        return body

    key = make_key(tree.manager)
    api = app.test_client()
    whole = api.get("/api/v1/portfolio?group_by=branch", headers=auth(key)).get_json()
    assert {g["key"]: g["borrowers"] for g in whole["groups"]} == {"EAST": 3, "WEST": 1}
    assert whole["total"]["borrowers"] == 4
    # Filtered to EAST, rolled up one level down: its operating branch.
    east_only = api.get("/api/v1/portfolio?group_by=branch&branch=EAST",
                        headers=auth(key)).get_json()
    assert {g["key"]: g["borrowers"] for g in east_only["groups"]} == {"EAST_OP": 3}
    # EAST's own staff: their subtree only, whatever they ask for.
    east_key = make_key(tree.east_manager)
    mine = api.get("/api/v1/portfolio?group_by=org", headers=auth(east_key)).get_json()
    assert {g["key"] for g in mine["groups"]} == {"PARTNERA"}
    other = api.get("/api/v1/portfolio?group_by=org&branch=WEST", headers=auth(east_key))
    assert other.get_json()["total"]["borrowers"] == 0
    # The page offers EAST's staff their own branches only, and its cells open the loans.
    page = east.get("/bank/portfolio?group_by=branch").get_data(as_text=True)
    options = re.findall(r'<option value="([A-Z_]+)"', page.split('name="branch"')[1]
                         .split("</select>")[0])
    assert options == ["EAST", "EAST_OP"]
    loans = east.get("/bank/portfolio/loans?group_by=branch&key=EAST_OP").get_data(as_text=True)
    assert loans.count("Partner A") >= 3 and "Partner B" not in loans
    assert "WEST" in groups(province, group_by="branch")


def test_the_cockpit_filters_and_rolls_up_by_branch(app, tree):
    for user in (tree.partner_a, tree.partner_b):
        factories.submit(user)
    scoring.recompute_all()
    db.session.commit()
    province = _client(app, tree.manager)
    page = province.get("/bank/scorecards").get_data(as_text=True)
    rollup = re.findall(r'<tr data-branch="([A-Z_]+)">', page)
    assert sorted(rollup) == ["EAST", "WEST"]
    codes = re.compile(r'data-testid="ranking-row" data-org-code="([A-Z0-9_]+)"')
    assert codes.findall(province.get("/bank/scorecards?branch=EAST").get_data(
        as_text=True)) == ["PARTNERA"]
    assert codes.findall(province.get("/bank/scorecards?branch=WEST").get_data(
        as_text=True)) == ["PARTNERB"]
    east = _client(app, tree.east_manager)
    assert codes.findall(east.get("/bank/scorecards").get_data(as_text=True)) == ["PARTNERA"]
    # A branch outside their subtree filters to nothing rather than widening the view.
    assert codes.findall(east.get("/bank/scorecards?branch=WEST").get_data(as_text=True)) == []


def test_the_cockpit_trend_of_a_branch_subtree_is_its_partners_cards_summed(app, tree):
    """A branch manager's cockpit, and one filtered by branch, draw the trend from the totals
    the job keeps per subtree; they are the partners' own monthly cards grouped."""
    from portal.services.scoring import views

    for user in (tree.partner_a, tree.partner_a, tree.partner_b):
        factories.submit(user)
    scoring.recompute_all()
    db.session.commit()
    cases = [(tree.east_manager, None, str(tree.east.id)),
             (tree.manager, "EAST", str(tree.east.id)),
             (tree.manager, "EAST_OP", str(tree.east_op.id)),
             (tree.manager, "WEST", str(tree.west.id)),
             (tree.manager, None, "all"),
             (tree.east_manager, "WEST", None)]  # outside their subtree: nobody
    with app.test_request_context():
        for viewer, branch, unit in cases:
            f = views.CockpitFilters(viewer=viewer, branch=branch)
            assert views._subtree(f) == unit
            months = views.portfolio_months(f)
            trend = views.cockpit_trend(f, months)
            # The same months as if stored before the totals were kept: each partner's entry.
            entries = views.cockpit_trend(f, [SimpleNamespace(period_key=m.period_key,
                                                              kpis=m.kpis, kept=None)
                                              for m in months])
            assert trend == entries
            assert (trend is None) == (unit is None)
            if unit:
                bars = trend["data"]["datasets"][:-1]
                partners = {str(tree.east.id): 1, str(tree.east_op.id): 1,
                            str(tree.west.id): 1, "all": 2}[unit]
                assert sum(d["data"][-1] for d in bars) == partners


# --- the command line ---------------------------------------------------------------------------

def test_cli_builds_the_tree_and_places_partners_and_staff(app, world):
    cli = app.test_cli_runner()
    first = cli.invoke(args=["branches", "create", "--code", "PROV", "--name", "Province"])
    assert first.exit_code == 0 and "(the root)" in first.output, first.output
    second = cli.invoke(args=["branches", "create", "--code", "NORTH", "--name", "North",
                              "--model", "joint_deep"])
    assert second.exit_code == 0 and "under PROV" in second.output
    third = cli.invoke(args=["branches", "create", "--code", "NORTH_1", "--name", "North 1",
                             "--parent", "north"])
    assert third.exit_code == 0 and "under NORTH" in third.output
    duplicate = cli.invoke(args=["branches", "create", "--code", "NORTH", "--name", "Again"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    missing = cli.invoke(args=["branches", "create", "--code", "SOUTH_1", "--name", "S",
                               "--parent", "SOUTH"])
    assert missing.exit_code == 1 and "No branch with code SOUTH" in missing.output
    bad_model = cli.invoke(args=["branches", "create", "--code", "Q1", "--name", "Q",
                                 "--model", "sideways"])
    assert bad_model.exit_code == 2
    listed = cli.invoke(args=["branches", "list"])
    assert listed.output.splitlines()[2].startswith("    NORTH_1")

    org = cli.invoke(args=["orgs", "create", "--code", "NCARS", "--name", "North Cars",
                           "--type", "car_dealer", "--branch", "NORTH_1"])
    assert org.exit_code == 0, org.output
    assert db.session.scalar(select(Organization).where(
        Organization.code == "NCARS")).branch.code == "NORTH_1"
    user = cli.invoke(args=["users", "create", "--email", "north@bank.test",
                            "--role", "channel_manager", "--branch", "NORTH"])
    assert user.exit_code == 0 and "branch NORTH" in user.output
    staff = db.session.scalar(select(User).where(User.email == "north@bank.test"))
    assert staff.branch.code == "NORTH"
    assert branches.may_see_org(staff, db.session.scalar(
        select(Organization).where(Organization.code == "NCARS")))
    assert not branches.may_see_org(staff, world.org_a)  # in no branch: the province's
    root_user = cli.invoke(args=["users", "create", "--email", "prov@bank.test",
                                 "--role", "credit_officer"])
    assert root_user.exit_code == 0
    assert branches.scope_branch(db.session.scalar(
        select(User).where(User.email == "prov@bank.test"))) is None
    partner = cli.invoke(args=["users", "create", "--email", "p@a.test", "--role",
                               "partner_agent", "--org", "PARTNERA", "--branch", "NORTH"])
    assert partner.exit_code == 1 and "Only the bank's staff belong to a branch" in partner.output
    unknown = cli.invoke(args=["orgs", "create", "--code", "ZED", "--name", "Zed",
                               "--type", "car_dealer", "--branch", "NOWHERE"])
    assert unknown.exit_code == 1 and "No branch with code NOWHERE" in unknown.output


def test_ids_posted_in_forms_reach_no_other_branch(app, tree, b_objects):
    """The pages that take an object's id in the form, not the URL: a follow-up for B's buyer,
    a contact with partner B, a draft agreement for B."""
    east = _client(app, tree.east_manager)
    before = _fingerprint()
    added = east.post("/bank/followups", data={"referral_id": str(b_objects["referral_id"]),
                                                "assigned_to": "", "note": "x"})
    assert added.status_code == 404
    logged = east.post("/bank/contacts", data={"org_id": str(tree.org_b.id), "kind": "call",
                                               "at": "", "summary": "Called B"})
    assert logged.status_code == 404
    chooser = east.get(f"/bank/agreements/new?org_id={tree.org_b.id}").get_data(as_text=True)
    assert 'data-testid="agreement-form"' not in chooser and "Partner B" not in chooser
    counts, rows = _fingerprint()
    assert rows == before[1] and counts[:-1] == before[0][:-1]


def test_follow_ups_go_to_staff_who_can_see_the_partner(tree, b_objects):
    entry = db.session.get(FollowUp, b_objects["follow_up_id"])
    with pytest.raises(ValidationFailed) as err:
        followups.assign(Ctx(user=tree.manager), entry, tree.east_manager.id)
    assert "another branch" in str(err.value.fields["assigned_to"])
    followups.assign(Ctx(user=tree.manager), entry, tree.west_manager.id)
    assert entry.assigned_to_id == tree.west_manager.id


def test_a_held_partner_without_a_manager_alerts_its_branchs_managers_only(tree):
    from portal.services import probes

    tree.org_b.channel_manager_id = None
    db.session.flush()
    db.session.expire(tree.org_b)
    alerted = {u.email for u in probes.managers_to_alert(tree.org_b)}
    assert alerted == {"m.west@bank.test", "manager@bank.test"}


def test_the_menus_counts_follow_a_user_moved_to_another_branch(tree, b_objects):
    """The badges' statements are built once per scope and kept (branches.per_scope): moved to
    WEST, EAST's manager counts partner B's waiting reveal request; moved back, not; and the
    manager who stayed in WEST counts it throughout."""
    from portal.services import messages

    east, west = tree.east_manager, tree.west_manager
    messages.post(Ctx(user=tree.partner_b), db.session.get(Referral, b_objects["referral_id"]),
                  "A question from B")
    db.session.flush()

    def counts(user):
        return reveals.pending_count(user), messages.unread_count(user)

    assert counts(east) == (0, 0)
    assert counts(west) == (1, 1)
    east.branch = tree.west
    db.session.flush()
    assert counts(east) == (1, 0)  # B has a manager of its own (WEST's): not east's thread
    tree.org_b.channel_manager_id = east.id
    db.session.flush()
    assert counts(east) == (1, 1)
    east.branch = tree.east
    db.session.flush()
    assert counts(east) == (0, 0)
    assert counts(west) == (1, 0)
