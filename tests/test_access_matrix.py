"""Every page and action × every kind of visitor.

Partner B never reaches anything of partner A's: their ids are simply not found (404). Roles that
may not open a page get 403; anonymous visitors are sent to log in. The HTTP API has its own
matrix in test_api.py. A route added without a line here fails test_every_route_is_in_the_matrix.
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import (
    AgreementTemplate,
    CustomerLead,
    Document,
    Notification,
    PartnerSite,
    PasswordResetToken,
    Referral,
    ReferralEvent,
    ReferralMessage,
    Reveal,
    RevealRequest,
    SavedQueueFilter,
    SiteStaff,
    Stipulation,
    User,
    WebhookDelivery,
    utcnow,
)
from portal.extensions import db
from portal.services import (
    Ctx,
    admission,
    api_keys,
    customer_leads,
    disputes,
    documents,
    followups,
    imports,
    messages,
    notifications,
    passwords,
    reveals,
    scoring,
    sites,
    webhooks,
)
from tests import factories
from tests.conftest import login
from tests.integration_helpers import pdf_bytes

ROLES = ("anonymous", "partner_a", "agent_a", "partner_b", "officer", "manager", "admin")
EVERYONE = frozenset(ROLES)
PARTNERS = frozenset({"partner_a", "agent_a", "partner_b"})
PARTNER_ADMINS = frozenset({"partner_a", "partner_b"})
BANK = frozenset({"officer", "manager", "admin"})
MANAGERS = frozenset({"manager", "admin"})
ADMINS = frozenset({"admin"})
OFFICERS = frozenset({"officer", "admin"})  # who works the queue (services/assignment.py)

# endpoint -> who may use it
ACCESS = {
    "auth.index": EVERYONE,
    "auth.login": EVERYONE,
    "auth.logout": EVERYONE,
    "auth.language": EVERYONE,
    "auth.keep_alive": EVERYONE,
    "auth.verify_agreement": EVERYONE,
    # the public application to become a partner and the applicant's answer (issue 14)
    "auth.apply": EVERYONE,
    "auth.apply_sent": EVERYONE,
    "auth.apply_more": EVERYONE,
    "health.healthz": EVERYONE,
    "health.favicon": EVERYONE,
    # the second login step, re-authentication, a password link, every user's own account
    "auth.login_code": EVERYONE,
    "auth.reauthenticate": EVERYONE,
    "auth.reset_with_link": EVERYONE,
    "auth.account": EVERYONE,
    "auth.change_password": EVERYONE,
    "auth.choose_password": EVERYONE,
    "auth.two_factor": EVERYONE,
    "auth.two_factor_start": EVERYONE,
    "auth.two_factor_confirm": EVERYONE,
    "auth.recovery_codes": EVERYONE,
    "auth.two_factor_remove": EVERYONE,
    "auth.end_other_sessions": EVERYONE,
    "auth.end_session": EVERYONE,
    # partner face
    "partner.dashboard": PARTNERS,
    "partner.referrals": PARTNERS,
    "partner.export_csv": PARTNERS,
    "partner.new_referral": PARTNERS,
    # group referrals (issue 14): a CSV of buyers, its template, its refused rows back
    "partner.group_upload": PARTNERS,
    "partner.group_template": PARTNERS,
    "partner.group_refused": PARTNERS,
    # quoting tools: the partner's own covered products (the bank has its own product pages)
    "partner.products": PARTNERS,
    "partner.calculator": PARTNERS,
    "partner.referral": PARTNERS,
    "partner.upload": PARTNERS,
    "partner.upload_item": PARTNERS,
    "partner.resubmit": PARTNERS,
    "partner.withdraw": PARTNERS,
    "partner.document": PARTNERS,
    "partner.agreements": PARTNERS,
    "partner.agreement": PARTNERS,
    "partner.agreement_pdf": PARTNERS,
    "partner.accept_agreement": PARTNER_ADMINS,
    "partner.notifications_page": PARTNERS,
    "partner.open_notification": PARTNERS,
    "partner.read_notification": PARTNERS,
    "partner.read_all_notifications": PARTNERS,
    "partner.users": PARTNER_ADMINS,
    "partner.activate_user": PARTNER_ADMINS,
    "partner.deactivate_user": PARTNER_ADMINS,
    "partner.reset_password": PARTNER_ADMINS,
    "partner.api_keys_page": PARTNER_ADMINS,
    "partner.revoke_api_key": PARTNER_ADMINS,
    "partner.webhooks_page": PARTNER_ADMINS,
    "partner.deactivate_webhook": PARTNER_ADMINS,
    "partner.webhook_deliveries": PARTNER_ADMINS,
    "partner.resend_delivery": PARTNER_ADMINS,
    "partner.scorecard": PARTNER_ADMINS,
    "partner.open_dispute": PARTNER_ADMINS,
    # messages on a referral (issue 13)
    "partner.messages_page": PARTNERS,
    "partner.post_message": PARTNERS,
    "partner.read_messages": PARTNERS,
    # customers the bank refers to partners (issue 14)
    "partner.leads": PARTNERS,
    "partner.lead": PARTNERS,
    "partner.accept_lead": PARTNERS,
    "partner.decline_lead": PARTNERS,
    "partner.lead_outcome": PARTNERS,
    # the partner's own projects, showrooms and offices, read only (issue 14)
    "partner.sites_page": PARTNERS,
    "partner.site": PARTNERS,
    # bank face
    "bank.queue": BANK,
    "bank.referrals": BANK,
    "bank.partner_lookup": BANK,
    "bank.referral": BANK,
    "bank.reveal": BANK,
    "bank.transition": BANK,
    "bank.request_documents": BANK,
    "bank.review_document": BANK,
    "bank.review_item": BANK,
    "bank.document": BANK,
    # the work queue: taking referrals, handing them on, saved filters (issue 13)
    "bank.take_referral": OFFICERS,
    "bank.release_referral": OFFICERS,
    "bank.assign_referral": ADMINS,
    "bank.save_queue_filter": BANK,
    "bank.delete_queue_filter": BANK,
    "bank.conflicts": MANAGERS,
    "bank.resolve_conflict": MANAGERS,
    # held submissions and reveals with a purpose (issue 10)
    "bank.held": MANAGERS,
    "bank.review_held": MANAGERS,
    "bank.ask_reveal": BANK,
    "bank.reveal_requests": MANAGERS,
    "bank.decide_reveal": MANAGERS,
    "bank.reveal_log": MANAGERS,
    "bank.agreements": MANAGERS,
    "bank.new_agreement": MANAGERS,
    "bank.agreement": MANAGERS,
    "bank.agreement_pdf": MANAGERS,
    "bank.edit_agreement": MANAGERS,
    "bank.issue_agreement": MANAGERS,
    "bank.renew_agreement": MANAGERS,
    "bank.terminate_agreement": MANAGERS,
    "bank.agreement_templates": ADMINS,
    "bank.agreement_template": ADMINS,
    "bank.edit_agreement_template": ADMINS,
    "bank.new_agreement_template": ADMINS,
    # portfolio by customer class and more
    "bank.portfolio_page": BANK,
    "bank.portfolio_csv": BANK,
    "bank.portfolio_loans": BANK,
    # scorecards, follow-up pool, contact log
    "bank.scorecards": MANAGERS,
    "bank.recompute_scorecards": MANAGERS,
    "bank.scorecard": MANAGERS,
    "bank.scorecard_kpi": MANAGERS,
    "bank.disputes_page": MANAGERS,
    "bank.dispute": MANAGERS,
    "bank.answer_dispute": MANAGERS,
    "bank.correct_loan": MANAGERS,
    "bank.followup_pool": MANAGERS,
    "bank.followup_add": MANAGERS,
    "bank.followup": MANAGERS,
    "bank.followup_assign": MANAGERS,
    "bank.followup_note": MANAGERS,
    "bank.followup_close": MANAGERS,
    "bank.contacts": MANAGERS,
    "bank.contact_log": MANAGERS,
    # messages on a referral (issue 13)
    "bank.messages_page": BANK,
    "bank.post_message": BANK,
    "bank.read_messages": BANK,
    # partner admission and annual reviews (issue 14)
    "bank.applications": MANAGERS,
    "bank.application": MANAGERS,
    "bank.application_licence": MANAGERS,
    "bank.application_request_info": MANAGERS,
    "bank.application_approve": MANAGERS,
    "bank.application_decline": MANAGERS,
    "bank.annual_reviews": MANAGERS,
    "bank.annual_review": MANAGERS,
    # customers the bank refers to partners (issue 14)
    "bank.leads": BANK,
    "bank.new_lead": BANK,
    "bank.lead": BANK,
    # partners' sites, their quota and on-site staff (issue 14)
    "bank.partner_sites": MANAGERS,
    "bank.site": MANAGERS,
    "bank.edit_site": MANAGERS,
    "bank.assign_site_staff": MANAGERS,
    "bank.remove_site_staff": MANAGERS,
    # admin face
    "admin.dashboard": ADMINS,
    "admin.orgs": ADMINS,
    "admin.new_org": ADMINS,
    "admin.edit_org": ADMINS,
    "admin.users": ADMINS,
    "admin.activate_user": ADMINS,
    "admin.deactivate_user": ADMINS,
    "admin.reset_password": ADMINS,
    "admin.audit": ADMINS,
    "admin.scoring_weights": ADMINS,
    "admin.products": ADMINS,
    "admin.product_rates": ADMINS,
    "admin.imports_page": ADMINS,
    "admin.import_batch": ADMINS,
    "admin.import_progress": ADMINS,
    "admin.cancel_import": ADMINS,
    "admin.import_rejects_csv": ADMINS,
    # the bank's branch tree (issue 14)
    "admin.branches": ADMINS,
    "admin.edit_branch": ADMINS,
    "admin.user_branch": ADMINS,
}
# Pages anyone logged in or not may open: what an anonymous visitor gets is the page itself.
PUBLIC = {"auth.index", "auth.login", "auth.logout", "auth.language", "auth.verify_agreement",
          "health.healthz", "health.favicon", "auth.reset_with_link", "auth.apply",
          "auth.apply_sent", "auth.apply_more"}
# Objects that belong to one user rather than to the organisation.
PER_USER = {"notification_id"}


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()
                 if rule.endpoint != "static" and not rule.endpoint.startswith("api.")}
    assert endpoints == set(ACCESS), (
        f"missing: {sorted(endpoints - set(ACCESS))}, stale: {sorted(set(ACCESS) - endpoints)}")


@pytest.fixture
def objects(world):
    """Partner A's objects, one of each kind a URL can name."""
    referral = factories.submit(world.partner_a)
    document = documents.upload(Ctx(user=world.partner_a), referral, "id_card", "id.pdf",
                                pdf_bytes())
    agreement = factories.active_agreement(world.org_a)
    key, _secret = api_keys.create(Ctx(user=world.partner_a), world.partner_a, "matrix")
    endpoint, _secret = webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a,
                                                 "http://127.0.0.1:9/hook")
    webhooks.emit(world.org_a.id, "referral.status_changed", {"id": referral.id})
    db.session.flush()
    delivery = db.session.scalar(select(WebhookDelivery))
    notifications.notify_org(world.org_a.id, "referral_status",
                             {"referral_id": referral.id, "to": "under_review"},
                             exclude_user_id=world.agent_a.id)
    db.session.flush()
    notification = db.session.scalar(select(Notification).where(
        Notification.user_id == world.partner_a.id))
    template = db.session.scalar(select(AgreementTemplate))
    follow_up = followups.add(Ctx(user=world.manager), referral)
    batch = imports.import_loans(Ctx(user=world.admin), b"not a loans file\n")
    db.session.add(PasswordResetToken(user_id=world.agent_a.id,
                                      token_hash=passwords.token_hash("matrix-token"),
                                      expires_at=utcnow() + timedelta(hours=1)))
    reveal_request = reveals.ask(Ctx(user=world.officer), referral, "other", "matrix")
    scoring.recompute_all()  # partner A's card, for the pages behind its figures
    dispute = disputes.open_dispute(Ctx(user=world.partner_a), world.org_a,
                                    {"subject": "kpi:approval_rate", "note": "Looks low"})
    # Unread both ways: a refused "mark as read" would show in the fingerprint.
    messages.post(Ctx(user=world.officer), referral, "A question from the bank")
    messages.post(Ctx(user=world.agent_a), referral, "An answer that the bank has not read")
    saved_filter = SavedQueueFilter(user_id=world.officer.id, name="matrix",
                                    params={"view": "mine"})
    db.session.add(saved_filter)
    branch = factories.branch("MATRIX")
    application = factories.application("MATRIX")
    # Waiting for the applicant's answer through a link (what request_info makes, without mail).
    application.status, application.link_token_hash = "info_requested", admission.token_hash(
        "matrix-answer")
    application.link_expires_at = utcnow() + timedelta(days=1)
    lead = customer_leads.create(Ctx(user=world.manager), world.org_a, {
        "customer_name": "Matrix", "mobile": "13812345678", "need": "other", "consent": True,
        "consent_method": "signed_form", "consent_at": utcnow() - timedelta(hours=1)})
    site = sites.create(Ctx(user=world.manager), world.org_a, {
        "kind": "project", "code": "GARDEN", "name": "Garden", "quota_amount": "1000000"})
    placed = sites.assign(Ctx(user=world.manager), site, world.officer, ["mon"])
    db.session.commit()
    return {
        "filter_id": saved_filter.id,
        "referral_id": referral.id, "document_id": document.id, "agreement_id": agreement.id,
        "user_id": world.agent_a.id, "org_id": world.org_a.id, "key_id": key.id,
        "endpoint_id": endpoint.id, "delivery_id": delivery.id,
        "notification_id": notification.id, "template_id": template.id, "lang": "en",
        "follow_up_id": follow_up.id, "batch_id": batch.batch_id, "name": "approval_rate",
        "token": "matrix-token", "session_id": "0" * 20,
        "request_id": reveal_request.id, "dispute_id": dispute.id,
        "item_id": document.stipulation_id,
        "code": "consumer_loan",
        "branch_id": branch.id,
        "application_id": application.id, "answer_token": "matrix-answer",
        "lead_id": lead.id,
        "site_id": site.id, "assignment_id": placed.id,
    }


def _rules(app, method):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in ACCESS and method in rule.methods:
            yield rule


def _url(rule, objects):
    return rule.build({name: objects[name] for name in rule.arguments}, append_unknown=False)[1]


def _client_for(app, world, role):
    client = app.test_client()
    if role != "anonymous":
        login(client, {"partner_a": world.partner_a, "agent_a": world.agent_a,
                       "partner_b": world.partner_b, "officer": world.officer,
                       "manager": world.manager, "admin": world.admin}[role])
    return client


def _expected(rule, role) -> str:
    allowed = ACCESS[rule.endpoint]
    if rule.endpoint == "auth.index" and role == "anonymous":
        return "login"  # the start page sends a visitor to log in
    if rule.endpoint in PUBLIC:
        return "open"
    if role == "anonymous":
        return "login"
    if role not in allowed:
        return "forbidden"
    if "session_id" in rule.arguments:
        return "not_found"  # the matrix's session id is none of the visitor's own sessions
    # A reveal request is the bank's own: not an object of partner A's.
    names_a = set(rule.arguments) - {"lang", "template_id", "token", "request_id", "code",
                                     "branch_id", "application_id", "answer_token"}
    if role == "partner_b" and names_a:
        return "not_found"
    if role == "agent_a" and names_a & PER_USER:
        return "not_found"
    return "open"


def _check(response, expectation, what):
    status = response.status_code
    location = response.headers.get("Location", "")
    if expectation == "login":
        assert status == 302 and "/login" in location, what
    elif expectation == "forbidden":
        assert status == 403, what
    elif expectation == "not_found":
        assert status == 404, what
    else:
        assert status < 500 and status not in (401, 403, 404), what
        assert not (status == 302 and "/login" in location), what


def _fingerprint():
    db.session.expire_all()
    tables = (Referral, ReferralEvent, Document, Stipulation, User, Notification, WebhookDelivery,
              Reveal, RevealRequest, ReferralMessage, SavedQueueFilter, CustomerLead,
              PartnerSite, SiteStaff)
    rows = [db.session.scalar(select(func.count()).select_from(t)) for t in tables]
    states = db.session.execute(select(Referral.id, Referral.status, Referral.version,
                                       Referral.assigned_to_id)).all()
    users = db.session.execute(select(User.id, User.active, User.password_hash)).all()
    requests = db.session.execute(select(RevealRequest.id, RevealRequest.status)).all()
    # A thread read by someone who may not is as much a change as a message written.
    read = db.session.execute(select(ReferralMessage.id, ReferralMessage.read_at)).all()
    leads = db.session.execute(select(CustomerLead.id, CustomerLead.status)).all()
    placed = db.session.execute(select(PartnerSite.id, PartnerSite.name, PartnerSite.code,
                                       PartnerSite.quota_amount, SiteStaff.days)
                                .outerjoin(SiteStaff)).all()
    return rows, states, users, requests, read, leads, placed


@pytest.mark.parametrize("role", ROLES)
def test_pages(app, world, objects, role):
    client = _client_for(app, world, role)
    for rule in _rules(app, "GET"):
        if rule.endpoint == "auth.logout" or "POST" in rule.methods and "GET" not in rule.methods:
            continue
        url = _url(rule, objects)
        _check(client.get(url), _expected(rule, role), f"{role} GET {url}")


@pytest.mark.parametrize("role", ROLES)
def test_actions_refused_change_nothing(app, world, objects, role):
    """A POST the visitor may not make is refused and leaves every row as it was."""
    client = _client_for(app, world, role)
    before = _fingerprint()
    for rule in _rules(app, "POST"):
        expectation = _expected(rule, role)
        if expectation == "open":
            continue  # what allowed users may do is tested page by page
        url = _url(rule, objects)
        response = client.post(url, data={"to": "approved", "decision": "accept",
                                          "version": "1", "note": "x", "reason": "x"})
        _check(response, expectation, f"{role} POST {url}")
    assert _fingerprint() == before
