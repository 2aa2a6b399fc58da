"""Partner admission (准入) and annual reviews (年审), issue 14 point 2.

A company applies on the public page (the unified social credit code checked by python-stdnum,
the licence through the upload checks); a channel manager of the branch applied to asks for more
by e-mail (a link that answers once), approves (the organisation, pending until its first
agreement is accepted; its administrator invited by a single-use link; the first agreement
drafted) or declines with a reason. Another branch's applications are not found. Active partners
fall due for an annual review a year after admission or their last review; the cockpit shows
the due and overdue ones of the manager's branches.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from stdnum.cn import uscc as stdnum_uscc

from models import (
    Agreement,
    AnnualReview,
    AuditEntry,
    Organization,
    PartnerApplication,
    PasswordResetToken,
    User,
    utcnow,
)
from portal.bank_time import bank_today, day_start
from portal.extensions import db, limiter
from portal.services import Ctx, admission, agreements, annual_reviews
from portal.services.errors import Forbidden, ValidationFailed
from tests import factories
from tests.conftest import login
from tests.integration_helpers import pdf_bytes
from tests.test_notifications import SmtpSink

NEW = "a-new-and-long-password-2026"


def page(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def mail(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", sink.port)
        monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "portal@bank.test")
        monkeypatch.setitem(app.config, "PORTAL_URL", "https://portal.bank.test")
        yield sink


@pytest.fixture
def tree(world):
    """The province; EAST with its operating branch EAST_OP (partner A); WEST (partner B); a
    channel manager in each second-level branch."""
    east = factories.branch("EAST")
    west = factories.branch("WEST")
    east_op = factories.branch("EAST_OP", "EAST")
    world.org_a.branch_id, world.org_b.branch_id = east_op.id, west.id
    world.east_manager = factories.UserFactory.bank("channel_manager", email="m.east@bank.test",
                                                    branch=east)
    world.west_manager = factories.UserFactory.bank("channel_manager", email="m.west@bank.test",
                                                    branch=west)
    db.session.commit()
    return world


def _client(app, user=None):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    if user is not None:
        login(client, user)
    return client


def _form(**overrides) -> dict:
    data = {"company_name": "Morning Light Realty", "uscc": factories.uscc(),
            "kind": "property_broker", "branch": "EAST_OP", "contact_name": "Zhou Chen",
            "contact_mobile": "139 1688 1234", "contact_email": "zhou@morning-light.test",
            "products": ["housing_mortgage", "consumer_loan"]}
    data.update(overrides)
    return data


def _apply(client, licence: bytes | None = None, filename="licence.pdf", **overrides):
    data = _form(**overrides)
    data["licence"] = (io.BytesIO(pdf_bytes() if licence is None else licence), filename)
    return client.post("/apply", data=data, content_type="multipart/form-data")


def _audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- the unified social credit code ----------------------------------------------------------

VALID = ["91110000600037341L"]  # python-stdnum's own example
for _body in ("91310115MA1H7Y2K0", "91440300708461136", "12100000400010398"):
    VALID.append(_body + stdnum_uscc.calc_check_digit(_body))


@pytest.mark.parametrize("number", VALID)
def test_a_code_with_its_right_check_digit_is_taken(number):
    assert admission.clean_uscc(number) == number
    assert admission.clean_uscc(" " + number.lower()[:9] + " " + number[9:]) == number


def _wrong_digit(number: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return number[:17] + next(c for c in alphabet if c != number[17])


@pytest.mark.parametrize("number", [_wrong_digit(n) for n in VALID] + [
    "91110000600037341", "91110000600037341LL", "91110000600O37341L", "", "not a code"])
def test_a_wrong_check_digit_length_or_letter_is_refused(number):
    with pytest.raises(ValueError):
        admission.clean_uscc(number)


def test_the_login_page_links_to_the_application(app, tree):
    assert 'href="/apply"' in page(_client(app).get("/login"))


# --- applying -----------------------------------------------------------------------------------

def test_an_application_is_taken_with_its_licence_checked_and_stored(app, tree):
    client = _client(app)
    form = page(client.get("/apply"))
    assert "EAST_OP" in form and "housing_mortgage" in form
    response = _apply(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/apply/sent")
    assert "the bank has your application" in page(client.get(response.headers["Location"]))
    application = db.session.scalar(select(PartnerApplication))
    assert (application.status, application.kind, application.branch.code) == (
        "submitted", "property_broker", "EAST_OP")
    assert application.contact_mobile == "13916881234"
    assert application.products == ["consumer_loan", "housing_mortgage"]
    assert admission.licence_path(application).read_bytes() == pdf_bytes()
    [entry] = _audit("application.submit")
    assert entry.detail["licence_sha256"] == application.licence_sha256


def test_bad_input_is_marked_field_by_field_and_nothing_typed_is_lost(app, tree):
    client = _client(app)
    response = _apply(client, licence=b"<html><script>alert(1)</script></html>",
                      filename="licence.pdf", uscc=_wrong_digit(VALID[1]),
                      contact_mobile="12345", contact_email="not-an-email", products=[],
                      company_name="Kept Company Name")
    html = page(response)
    assert response.status_code == 422
    errors = dict(re.findall(r'data-error-for="(\w+)"[^>]*>([^<]+)<', html))
    assert set(errors) >= {"uscc", "contact_mobile", "contact_email", "products", "licence"}
    assert "check digit" in errors["uscc"]
    assert "Only PDF, JPEG and PNG" in errors["licence"]
    assert 'value="Kept Company Name"' in html and _wrong_digit(VALID[1]) in html
    assert re.search(r'<option selected value="EAST_OP"', html)
    assert db.session.scalar(select(func.count(PartnerApplication.id))) == 0


def test_a_second_open_application_or_an_existing_partner_is_refused(app, tree):
    client = _client(app)
    number = factories.uscc()
    assert _apply(client, uscc=number).status_code == 302
    again = _apply(client, uscc=number)
    assert again.status_code == 422 and "already being reviewed" in page(again)
    factories.OrgFactory(code=VALID[2], agreement=False)
    db.session.commit()
    known = _apply(client, uscc=VALID[2])
    assert known.status_code == 422 and "already works with the bank" in page(known)


def test_the_public_form_is_rate_limited(app, tree):
    client = _client(app)
    try:
        codes = [client.post("/apply", data={}).status_code for _ in range(31)]
    finally:
        limiter.reset()
    assert codes[:30] == [422] * 30 and codes[30] == 429


# --- the review ---------------------------------------------------------------------------------

def _link(message, pattern) -> str:
    return re.search(pattern, message.get_content()).group(1)


def test_the_whole_review_path_more_information_approval_invitation_and_activation(
        app, tree, mail):
    _apply(_client(app), contact_email="owner@morning-light.test")
    application = db.session.scalar(select(PartnerApplication))
    manager = _client(app, tree.east_manager)
    listed = page(manager.get("/bank/applications"))
    assert "Morning Light Realty" in listed
    assert "Morning Light Realty" in page(manager.get(f"/bank/applications/{application.id}"))
    licence = manager.get(f"/bank/applications/{application.id}/licence")
    assert licence.data == pdf_bytes() and _audit("application.licence_download")

    # More information: the applicant is asked by e-mail, with a link that answers once.
    refused = manager.post(f"/bank/applications/{application.id}/request-info",
                           data={"message": ""})
    assert refused.status_code == 422 and "Write what the applicant should add" in page(refused)
    asked = manager.post(f"/bank/applications/{application.id}/request-info",
                         data={"message": "Please send a clearer scan of the licence."})
    assert asked.status_code == 302
    [request_mail] = mail.parsed()
    assert request_mail["To"].addresses[0].addr_spec == "owner@morning-light.test"
    assert "clearer scan" in request_mail.get_content()
    link = _link(request_mail, r"https://portal\.bank\.test(/apply/more/\S+)")
    stored = db.session.scalar(select(PartnerApplication.link_token_hash))
    assert link.rsplit("/", 1)[1] not in stored  # kept as a hash only
    applicant = _client(app)
    assert "clearer scan" in page(applicant.get(link))
    empty = applicant.post(link, data={"note": ""}, content_type="multipart/form-data")
    assert empty.status_code == 422
    answered = applicant.post(link, data={
        "note": "Here is a better scan.",
        "licence": (io.BytesIO(pdf_bytes("better scan")), "licence-2.pdf")},
        content_type="multipart/form-data")
    assert answered.status_code == 302
    db.session.expire_all()
    assert application.status == "submitted" and application.licence_filename == "licence-2.pdf"
    assert "Here is a better scan." in page(manager.get(f"/bank/applications/{application.id}"))
    # The attack: the link again, read from the mailbox later or forwarded.
    assert applicant.get(link).status_code == 404
    again = applicant.post(link, data={"note": "Overwritten by a replay"},
                           content_type="multipart/form-data")
    assert again.status_code == 404
    db.session.expire_all()
    assert application.applicant_note == "Here is a better scan."

    # Approval: the pending organisation, its invited administrator, the drafted agreement.
    approved = manager.post(f"/bank/applications/{application.id}/approve")
    assert approved.status_code == 302
    db.session.expire_all()
    org = db.session.scalar(select(Organization).where(Organization.code == application.uscc))
    assert (org.status, org.kind, org.branch.code, org.channel_manager_id) == (
        "pending", "property_broker", "EAST_OP", tree.east_manager.id)
    assert application.status == "approved" and application.org_id == org.id
    admin = db.session.scalar(select(User).where(User.org_id == org.id))
    assert (admin.email, admin.role) == ("owner@morning-light.test", "partner_admin")
    [draft] = db.session.scalars(select(Agreement).where(Agreement.org_id == org.id)).all()
    assert draft.status == "draft" and draft.products == ["consumer_loan", "housing_mortgage"]
    assert draft.template.family == agreements.family_of(org)
    invitation = mail.parsed()[-1]
    assert invitation["To"].addresses[0].addr_spec == "owner@morning-light.test"
    invite = _link(invitation, r"https://portal\.bank\.test(/password/reset/\S+)")
    assert invite.rsplit("/", 1)[1] not in db.session.scalar(
        select(PasswordResetToken.token_hash))
    assert not org.can_submit
    assert {e.action for e in db.session.scalars(select(AuditEntry))} >= {
        "application.request_info", "application.add_info", "application.approve",
        "org.create", "user.invite", "agreement.draft"}

    # The invitation works once; a second use (an attacker with the old e-mail) is refused.
    invited = _client(app)
    assert invited.post(invite, data={"new_password": NEW, "confirm": NEW}).status_code == 302
    replay = _client(app).post(invite, data={"new_password": NEW + "x", "confirm": NEW + "x"})
    assert replay.status_code == 404
    login(_client(app), admin, password=NEW)

    # The first agreement accepted: the partner becomes active.
    agreements.issue(Ctx(user=tree.east_manager), draft)
    db.session.commit()
    agreements.accept(Ctx(user=admin, ip="127.0.0.1"), draft)
    db.session.commit()
    db.session.expire_all()
    assert org.status == "active" and org.can_submit
    assert _audit("org.activate")[0].target_id == str(org.id)
    # A decided application takes no further decision.
    late = manager.post(f"/bank/applications/{application.id}/decline",
                        data={"reason": "Too late now", "confirm": "y"})
    assert late.status_code in (302, 409)
    db.session.expire_all()
    assert application.status == "approved"


def test_a_decline_needs_its_confirmation_and_reason_and_tells_the_applicant(app, tree, mail):
    application = factories.application("EAST", contact_email="decline@applicant.test")
    db.session.commit()
    manager = _client(app, tree.east_manager)
    url = f"/bank/applications/{application.id}/decline"
    unconfirmed = manager.post(url, data={"reason": "Outside our region"})
    assert unconfirmed.status_code == 422 and "Tick the box" in page(unconfirmed)
    assert 'Outside our region' in page(unconfirmed)  # what was typed is kept
    no_reason = manager.post(url, data={"reason": "", "confirm": "y"})
    assert no_reason.status_code == 422
    db.session.expire_all()
    assert application.status == "submitted" and mail.parsed() == []
    assert manager.post(url, data={"reason": "Outside our region", "confirm": "y"}
                        ).status_code == 302
    db.session.expire_all()
    assert application.status == "declined" and application.decided_by_id == tree.east_manager.id
    [told] = mail.parsed()
    assert "Outside our region" in told.get_content()
    assert _audit("application.decline")


def test_an_expired_answer_link_and_an_expired_invitation_are_refused(app, tree, mail):
    application = factories.application("EAST")
    db.session.commit()
    manager = _client(app, tree.east_manager)
    manager.post(f"/bank/applications/{application.id}/request-info",
                 data={"message": "Send the articles of association."})
    link = _link(mail.parsed()[0], r"(/apply/more/\S+)")
    application.link_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    applicant = _client(app)
    assert applicant.get(link).status_code == 404
    assert applicant.post(link, data={"note": "Too late"},
                          content_type="multipart/form-data").status_code == 404
    db.session.expire_all()
    assert application.status == "info_requested" and application.applicant_note is None

    # Answered after all (a new request), then approved; the invitation lapses unused.
    manager.post(f"/bank/applications/{application.id}/request-info",
                 data={"message": "Send the articles of association."})
    applicant.post(_link(mail.parsed()[-1], r"(/apply/more/\S+)"), data={"note": "Sent."},
                   content_type="multipart/form-data")
    assert manager.post(f"/bank/applications/{application.id}/approve").status_code == 302
    invite = _link(mail.parsed()[-1], r"(/password/reset/\S+)")
    db.session.execute(PasswordResetToken.__table__.update().values(
        expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert _client(app).get(invite).status_code == 404
    assert _client(app).post(invite, data={"new_password": NEW, "confirm": NEW}
                             ).status_code == 404


def test_without_mail_approval_still_admits_and_points_to_the_cli(app, tree):
    application = factories.application("EAST")
    db.session.commit()
    manager = _client(app, tree.east_manager)
    asked = manager.post(f"/bank/applications/{application.id}/request-info",
                         data={"message": "Please send more."}, follow_redirects=True)
    assert "E-mail is not configured" in page(asked)
    response = manager.post(f"/bank/applications/{application.id}/approve",
                            follow_redirects=True)
    assert "users reset-password --email" in page(response)
    db.session.expire_all()
    assert application.status == "approved" and application.org.status == "pending"


def test_approval_is_refused_whole_when_the_contact_already_has_an_account(app, tree, mail):
    application = factories.application("EAST", contact_email=tree.agent_a.email)
    db.session.commit()
    manager = _client(app, tree.east_manager)
    response = manager.post(f"/bank/applications/{application.id}/approve",
                            follow_redirects=True)
    assert "cannot be used for the new administrator" in page(response)
    db.session.expire_all()
    assert application.status == "submitted"
    assert db.session.scalar(select(Organization).where(
        Organization.code == application.uscc)) is None
    assert mail.parsed() == []


# --- branch scope -------------------------------------------------------------------------------

def _fingerprint():
    db.session.expire_all()
    return (db.session.execute(select(PartnerApplication.id, PartnerApplication.status,
                                      PartnerApplication.link_token_hash)).all(),
            db.session.scalar(select(func.count(Organization.id))),
            db.session.scalar(select(func.count(AnnualReview.id))))


def test_another_branchs_application_is_not_found(app, tree, mail):
    west = factories.application("WEST", company_name="West Side Brokers")
    db.session.commit()
    east = _client(app, tree.east_manager)
    assert "West Side Brokers" not in page(east.get("/bank/applications?status=all"))
    for suffix in ("", "/licence"):
        assert east.get(f"/bank/applications/{west.id}{suffix}").status_code == 404
    before = _fingerprint()
    for action in ("request-info", "approve", "decline"):
        response = east.post(f"/bank/applications/{west.id}/{action}",
                             data={"message": "x" * 10, "reason": "x" * 10, "confirm": "y"})
        assert response.status_code == 404, action
    assert _fingerprint() == before and mail.parsed() == []
    # Another branch's partner has no annual review page for them either.
    assert east.get(f"/bank/partners/{tree.org_b.id}/annual-review").status_code == 404
    assert east.post(f"/bank/partners/{tree.org_b.id}/annual-review",
                     data={"outcome": "passed", "note": "x" * 10}).status_code == 404
    assert _fingerprint() == before
    # WEST's own manager and the province's open it.
    for user in (tree.west_manager, tree.manager):
        client = _client(app, user)
        assert "West Side Brokers" in page(client.get("/bank/applications"))
        assert client.get(f"/bank/applications/{west.id}").status_code == 200


def test_a_service_call_out_of_scope_is_refused_too(tree):
    west = factories.application("WEST")
    with pytest.raises(Forbidden):
        admission.decline(Ctx(user=tree.east_manager), west, "Not our branch at all")
    assert admission.get_for(tree.east_manager, west.id) is None


# --- the list -----------------------------------------------------------------------------------

def test_the_list_searches_pages_and_says_when_it_is_empty(app, tree):
    manager = _client(app, tree.manager)
    assert 'data-testid="empty-state"' in page(manager.get("/bank/applications"))
    for n in range(3):
        factories.application("EAST", company_name=f"Searchable {n} Ltd")
    factories.application("WEST", company_name="Other Name Ltd")
    db.session.commit()
    found = page(manager.get("/bank/applications?q=Searchable"))
    assert found.count('data-testid="application-row"') == 3 and "Other Name" not in found
    first = page(manager.get("/bank/applications?per_page=2"))
    assert first.count('data-testid="application-row"') == 2 and "page=2" in first
    assert 'data-testid="empty-state"' in page(manager.get("/bank/applications?status=declined"))


# --- annual reviews -----------------------------------------------------------------------------

def _age(org, days: int) -> None:
    org.created_at = utcnow() - timedelta(days=days)


def test_reviews_fall_due_a_year_after_admission_or_the_last_review(tree):
    today = bank_today()
    _age(tree.org_a, 400)   # overdue: admitted 400 days ago, never reviewed
    _age(tree.org_b, 350)   # due: its day is in 15 days
    fresh = factories.OrgFactory(code="FRESH", name="Fresh Partner")
    fresh.branch_id = tree.org_a.branch_id
    db.session.flush()
    rows = {r.org.code: r for r in annual_reviews.schedule(None, today=today)}
    assert rows["PARTNERA"].state == "overdue" and rows["PARTNERB"].state == "due"
    assert "FRESH" not in rows
    assert annual_reviews.a_year_after(today.replace(month=2, day=28)).month == 2
    # A review moves the next one a year on.
    annual_reviews.record(Ctx(user=tree.east_manager), tree.org_a, outcome="passed",
                          note="Licence and staff checked")
    rows = {r.org.code for r in annual_reviews.schedule(None, today=today)}
    assert "PARTNERA" not in rows
    assert annual_reviews.due_for(tree.org_a).due_on == annual_reviews.a_year_after(today)
    # Only an active partner, only a known outcome, never in the future.
    with pytest.raises(ValidationFailed) as refused:
        annual_reviews.record(Ctx(user=tree.east_manager), tree.org_a, outcome="great",
                              note="x", reviewed_on=today + timedelta(days=1))
    assert set(refused.value.fields) == {"outcome", "note", "reviewed_on"}


def test_the_cockpits_review_panel_is_the_schedule_cut_to_its_first_rows(tree):
    """due_summary (the cockpit's panel) agrees with schedule: same order, same counts, only
    the shown partners loaded."""
    today = bank_today()
    _age(tree.org_a, 400)
    _age(tree.org_b, 350)
    for i in range(3):
        org = factories.OrgFactory(code=f"OLD{i}", name=f"Old Partner {i}")
        org.created_at = utcnow() - timedelta(days=380 + i)
    db.session.flush()
    full = annual_reviews.schedule(None, today=today)
    for limit in (2, 10):
        rows, counts = annual_reviews.due_summary(None, limit=limit, today=today)
        assert [(r.org.code, r.state, r.due_on) for r in rows] == [
            (r.org.code, r.state, r.due_on) for r in full[:limit]]
        assert counts == annual_reviews.counts(full)
    assert annual_reviews.counts(full) == {"overdue": 4, "due": 1}


@pytest.mark.parametrize("today", [date(2026, 3, 10), date(2028, 1, 30), date(2028, 2, 29),
                                   date(2027, 3, 1)])
def test_the_panel_keeps_every_review_at_the_edge_of_falling_due(tree, today):
    """The database keeps only partners whose review can be due (issue 15); at the edge of
    the window, by a day either way, on both sides of the bank's midnight and around 29
    February, it agrees with the schedule worked out partner by partner."""
    start = day_start(today)
    for days in range(330, 341):
        for hour in (3, 15, 17):  # the bank's day turns at 16:00 UTC
            org = factories.OrgFactory(code=f"E{days}H{hour}", name=f"Edge {days} {hour}")
            org.created_at = start - timedelta(days=days) + timedelta(hours=hour)
        reviewed = factories.OrgFactory(code=f"R{days}", name=f"Reviewed {days}")
        reviewed.created_at = start - timedelta(days=900)
        db.session.flush()
        db.session.add(AnnualReview(org_id=reviewed.id, reviewed_on=today - timedelta(days=days),
                                    outcome="passed", note="n", reviewed_by_id=tree.manager.id))
    db.session.flush()
    full = annual_reviews.schedule(None, today=today)
    rows, counts = annual_reviews.due_summary(None, limit=1000, today=today)
    assert [(r.org.code, r.state, r.due_on) for r in rows] == [
        (r.org.code, r.state, r.due_on) for r in full]
    assert counts == annual_reviews.counts(full) and counts["due"] > 0


def test_the_cockpit_shows_due_and_overdue_reviews_of_the_managers_branches(app, tree):
    _age(tree.org_a, 400)
    _age(tree.org_b, 380)
    db.session.commit()
    province = page(_client(app, tree.manager).get("/bank/scorecards"))
    assert 'data-testid="cockpit-reviews"' in province
    shown = set(re.findall(r'data-testid="cockpit-review" data-org-code="(\w+)" '
                           r'data-state="(\w+)"', province))
    assert shown == {("PARTNERA", "overdue"), ("PARTNERB", "overdue")}
    east = page(_client(app, tree.east_manager).get("/bank/scorecards"))
    assert set(re.findall(r'data-testid="cockpit-review" data-org-code="(\w+)"', east)) == {
        "PARTNERA"}
    # The province's manager filtering the cockpit by WEST sees WEST's only.
    west = page(_client(app, tree.manager).get("/bank/scorecards?branch=WEST"))
    assert set(re.findall(r'data-testid="cockpit-review" data-org-code="(\w+)"', west)) == {
        "PARTNERB"}


def test_a_manager_records_a_review_and_it_leaves_the_due_list(app, tree):
    _age(tree.org_a, 370)
    db.session.commit()
    manager = _client(app, tree.east_manager)
    listed = page(manager.get("/bank/annual-reviews"))
    assert 'data-org-code="PARTNERA" data-state="overdue"' in listed
    url = f"/bank/partners/{tree.org_a.id}/annual-review"
    refused = manager.post(url, data={"outcome": "", "note": "Checked everything."})
    assert refused.status_code == 422 and "Checked everything." in page(refused)
    assert manager.post(url, data={"outcome": "conditional",
                                   "note": "Licence renewed; two agents untrained."}
                        ).status_code == 302
    [review] = db.session.scalars(select(AnnualReview)).all()
    assert (review.outcome, review.reviewed_by_id) == ("conditional", tree.east_manager.id)
    assert "two agents untrained" in page(manager.get(url))
    assert 'data-testid="empty-state"' in page(manager.get("/bank/annual-reviews"))
    assert _audit("annual_review.record")
    # The partner never sees the bank's note.
    partner = _client(app, tree.partner_a)
    for path in ("/partner/", "/partner/agreements", "/partner/scorecard"):
        assert "two agents untrained" not in page(partner.get(path))


# --- both languages -----------------------------------------------------------------------------

def test_the_application_page_speaks_chinese(app, tree):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    html = page(client.get("/apply"))
    assert "成为合作伙伴" in html and "统一社会信用代码" in html
    refused = page(client.post("/apply", data=_form(uscc=_wrong_digit(VALID[1]))))
    assert "统一社会信用代码" in refused and "校验" in refused
