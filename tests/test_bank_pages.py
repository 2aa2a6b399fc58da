"""The bank's pages: work queue, referral detail and decisions, documents, conflict queue."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from models import AuditEntry, Referral, ReferralEvent, utcnow
from portal.bank_time import bank_today
from portal.extensions import db
from portal.services import Ctx, documents, referrals
from tests import factories
from tests.conftest import login


@pytest.fixture(autouse=True)
def _english(client):
    # Messages are checked in English; the portal's default language is Chinese.
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def _ids(html: str, testid: str = "queue-row") -> list[int]:
    return [int(m) for m in re.findall(rf'data-testid="{testid}" data-referral-id="(\d+)"', html)]


def _version(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buf, "PNG")
    return buf.getvalue()


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _transition(client, referral, to, **data):
    data.setdefault("version", referral.version)
    return client.post(f"/bank/referrals/{referral.id}/transition", data={"to": to, **data})


# --- queue ----------------------------------------------------------------------------------

def test_queue_is_longest_wait_first_on_the_banks_clock(world, as_user):
    now = utcnow()
    newer = factories.submit(world.partner_a, at=now - timedelta(hours=1))
    oldest = factories.submit(world.partner_b, at=now - timedelta(hours=5))
    middle = factories.submit(world.partner_a, at=now - timedelta(hours=3))
    # 10 h ago in; 2 h on the bank, 6 h on the partner's clock, 2 h on the bank again: 4 h.
    returned = factories.submit(world.partner_a, at=now - timedelta(hours=10))
    officer = Ctx(user=world.officer)
    documents.request_documents(officer, returned, ["income_proof"], "Payslips please",
                                at=now - timedelta(hours=8))
    referrals.transition(officer, returned, "under_review", at=now - timedelta(hours=2))
    waiting_on_partner = factories.submit(world.partner_a, at=now - timedelta(hours=20))
    documents.request_documents(officer, waiting_on_partner, ["income_proof"], "Payslips")
    db.session.commit()

    html = as_user(world.officer).get("/bank/queue").get_data(as_text=True)

    # `returned` has been in its status only 2 h, but has waited 4 h on the bank: before `middle`.
    assert _ids(html) == [oldest.id, returned.id, middle.id, newer.id]
    ages = dict(re.findall(r'data-referral-id="(\d+)">.*?data-testid="bank-age">([^<]+)<',
                           html, re.S))
    assert ages[str(oldest.id)] == "5.0 h"
    assert ages[str(returned.id)] == "4.0 h"
    assert ages[str(newer.id)] == "1.0 h"
    assert "Partner B" in html


def test_queue_leaves_out_conflicts_and_closed_referrals(world, as_user):
    held = factories.submit(world.partner_a)
    conflict = factories.submit(world.partner_b, national_id=factories.national_id(900))
    conflict_b = factories.submit(world.partner_a, national_id=factories.national_id(900))
    declined = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), declined, "declined", reason_code="other")
    db.session.commit()
    assert conflict_b.status == "conflict"

    html = as_user(world.officer).get("/bank/queue").get_data(as_text=True)

    assert _ids(html) == [held.id, conflict.id]


def test_queue_filters(world, as_user):
    a_mortgage = factories.submit(world.partner_a, buyer_name="王芳")
    b_mortgage = factories.submit(world.partner_b, buyer_name="李强")
    a_auto = factories.submit(world.partner_a, product="auto_loan", amount="150000",
                              term_months="36", asset_price="260000", down_payment="80000",
                              asset_description="SUV")
    referrals.transition(Ctx(user=world.officer), a_auto, "under_review")
    db.session.commit()
    client = as_user(world.officer)

    def ids(query):
        return set(_ids(client.get(f"/bank/queue?{query}").get_data(as_text=True)))

    assert ids("") == {a_mortgage.id, b_mortgage.id, a_auto.id}
    assert ids("status=under_review") == {a_auto.id}
    assert ids("product=housing_mortgage") == {a_mortgage.id, b_mortgage.id}
    assert ids(f"org={world.org_b.id}") == {b_mortgage.id}
    assert ids("partner_type=property_broker") == {b_mortgage.id}
    assert ids("q=王芳") == {a_mortgage.id}
    assert ids("q=PARTNERB") == {b_mortgage.id}
    assert ids(f"q={a_auto.id}") == {a_auto.id}
    empty = client.get("/bank/queue?q=nobody-by-this-name").get_data(as_text=True)
    assert 'data-testid="empty-state"' in empty


def test_queue_pagination_keeps_the_filters(world, as_user):
    now = utcnow()
    made = [factories.submit(world.partner_a, at=now - timedelta(hours=10 - n)) for n in range(5)]
    db.session.commit()
    client = as_user(world.officer)

    org = world.org_a.id
    first = client.get(f"/bank/queue?per_page=2&org={org}").get_data(as_text=True)
    third = client.get(f"/bank/queue?per_page=2&page=3&org={org}").get_data(as_text=True)

    assert _ids(first) == [made[0].id, made[1].id]
    assert _ids(third) == [made[4].id]
    assert "5 in all" in first
    assert f"org={world.org_a.id}" in first and "page=2" in first


def test_empty_queue_says_so(world, as_user):
    html = as_user(world.officer).get("/bank/queue").get_data(as_text=True)
    assert 'data-testid="empty-state"' in html
    assert "Nothing is waiting on the bank" in html


def test_all_referrals_lists_every_status_with_filters(world, as_user):
    open_one = factories.submit(world.partner_a)
    declined = factories.submit(world.partner_b)
    referrals.transition(Ctx(user=world.officer), declined, "declined", reason_code="other")
    db.session.commit()
    client = as_user(world.manager)

    everything = client.get("/bank/referrals").get_data(as_text=True)
    only_declined = client.get("/bank/referrals?status=declined").get_data(as_text=True)
    only_a = client.get(f"/bank/referrals?org={world.org_a.id}").get_data(as_text=True)
    page_two = client.get("/bank/referrals?per_page=1&page=2").get_data(as_text=True)

    assert set(_ids(everything, "referral-row")) == {open_one.id, declined.id}
    assert _ids(only_declined, "referral-row") == [declined.id]
    assert _ids(only_a, "referral-row") == [open_one.id]
    assert _ids(page_two, "referral-row") == [open_one.id]  # newest first


# --- detail, masking and reveal --------------------------------------------------------------

def test_detail_masks_id_and_mobile_until_an_audited_reveal(world, as_user):
    national_id, mobile = factories.national_id(), factories.mobile(12345678)
    referral = factories.submit(world.partner_a, national_id=national_id, mobile=mobile)
    db.session.commit()
    client = as_user(world.officer)

    page = client.get(f"/bank/referrals/{referral.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert national_id not in html and mobile not in html
    assert referral.national_id_masked in html and referral.mobile_masked in html
    assert _count(AuditEntry, AuditEntry.action == "referral.reveal") == 0

    revealed = client.post(f"/bank/referrals/{referral.id}/reveal",
                           data={"reason_code": "credit_bureau_check"})
    html = revealed.get_data(as_text=True)
    assert revealed.status_code == 200
    assert national_id in html and mobile in html
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "referral.reveal"))
    assert entry.actor_id == world.officer.id and entry.target_id == str(referral.id)

    again = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert national_id not in again
    with client.session_transaction() as session:
        assert national_id not in repr(dict(session))


def test_detail_shows_timeline_with_actors_notes_and_clocks(world, as_user):
    referral = factories.submit(world.partner_a, at=utcnow() - timedelta(hours=3))
    documents.request_documents(Ctx(user=world.officer), referral, ["bank_statement"],
                                "Six months of statements", at=utcnow() - timedelta(hours=2))
    db.session.commit()

    html = as_user(world.officer).get(f"/bank/referrals/{referral.id}").get_data(as_text=True)

    assert world.officer.name in html and world.partner_a.name in html
    assert "Six months of statements" in html
    assert re.search(r'data-testid="bank-clock">1\.0 h<', html)
    assert re.search(r'data-testid="partner-clock">2\.0 h<', html)
    assert 'data-kind="bank_statement"' in html


def test_unknown_referral_is_404(world, as_user):
    assert as_user(world.officer).get("/bank/referrals/999999").status_code == 404


# --- transitions -------------------------------------------------------------------------------

def test_officer_moves_a_referral_through_to_disbursement(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    html = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert 'data-action="under_review"' in html and 'data-action="documents_requested"' in html
    assert 'data-action="approved"' not in html

    today = bank_today().isoformat()
    terms = {"approved": {"amount": "700000", "term_months": "240", "rate_percent": "3.85"},
             "contract_signed": {"number": "C-1", "amount": "700000", "date": today},
             "disbursed": {"amount": "700000", "date": today}}
    for to in ("under_review", "approved", "contract_signed", "disbursed"):
        db.session.refresh(referral)
        response = _transition(client, referral, to, note=f"note for {to}",
                               version=referral.version, **terms.get(to, {}))
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        db.session.refresh(referral)
        assert referral.status == to
    assert referral.clock is None and referral.disbursed_at is not None
    assert [e.to_state for e in referral.events] == [
        "submitted", "under_review", "approved", "contract_signed", "disbursed"]
    assert referral.events[-1].actor_id == world.officer.id
    assert referral.events[-1].note == "note for disbursed"
    assert _count(AuditEntry, AuditEntry.action == "referral.transition") == 4


def test_disburse_withdraw_and_decline_ask_for_confirmation(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    html = as_user(world.officer).get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    decline_form = re.search(r'<form[^>]*data-action="declined"[^>]*>', html).group(0)
    withdraw_form = re.search(r'<form[^>]*data-action="withdrawn"[^>]*>', html).group(0)
    assert "data-confirm" in decline_form and "data-confirm" in withdraw_form


def test_decline_needs_a_reason_category_and_an_internal_note(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    refused = _transition(client, referral, "declined", note="typed before the mistake")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "Choose a reason category." in html
    assert "typed before the mistake" in html  # the input is kept
    db.session.refresh(referral)
    assert referral.status == "submitted"

    refused = _transition(client, referral, "declined", reason_code="credit_policy")
    assert refused.status_code == 422
    assert "Write an internal note for the decline." in refused.get_data(as_text=True)

    done = _transition(client, referral, "declined", reason_code="income_insufficient",
                       note="DTI too high")
    assert done.status_code == 302
    db.session.refresh(referral)
    assert referral.status == "declined" and referral.decline_reason == "income_insufficient"
    assert referral.events[-1].reason_code == "income_insufficient"


def test_withdraw_through_the_page(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    assert _transition(as_user(world.officer), referral, "withdrawn").status_code == 302
    db.session.refresh(referral)
    assert referral.status == "withdrawn"


def test_illegal_transition_is_refused_and_writes_nothing(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    events, audits = _count(ReferralEvent), _count(AuditEntry)

    response = _transition(client, referral, "disbursed", note="skip ahead")

    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "cannot move to disbursed" in html
    db.session.refresh(referral)
    assert referral.status == "submitted" and referral.version == 1
    assert _count(ReferralEvent) == events and _count(AuditEntry) == audits


def test_unknown_target_state_is_refused(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    response = _transition(client, referral, "teleported")
    assert response.status_code == 302
    assert "Unknown state." in client.get(response.headers["Location"]).get_data(as_text=True)
    db.session.refresh(referral)
    assert referral.status == "submitted"


def test_channel_manager_may_not_approve(world, as_user):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    client = as_user(world.manager)

    html = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert 'data-action="approved"' not in html
    # Posting the move anyway (the button hidden is not the rule): the page answers 403, as the
    # API does; nothing on the referral page could make it allowed.
    forbidden = _transition(client, referral, "approved")
    assert forbidden.status_code == 403
    assert "Your role may not move a referral to approved" in forbidden.get_data(as_text=True)
    db.session.refresh(referral)
    assert referral.status == "under_review"


def test_an_officer_move_the_state_forbids_now_goes_back_with_the_conflict(world, as_user):
    # The officer may approve, just not a referral still waiting to be picked up: the page goes
    # back with the lifecycle's message (the web's 409), not the 403 page.
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    response = _transition(client, referral, "approved")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "cannot move to approved" in page
    db.session.refresh(referral)
    assert referral.status == "submitted"


def test_stale_version_gets_the_conflict_message_and_changes_nothing(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    seen_version = _version(client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True))

    # Another officer acts first.
    other = factories.UserFactory.bank("credit_officer", email="other@bank.test")
    referrals.transition(Ctx(user=other), referral, "under_review")
    db.session.commit()

    response = _transition(client, referral, "declined", version=seen_version,
                           reason_code="credit_policy", note="too late")

    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Someone else changed this referral" in html
    db.session.refresh(referral)
    assert referral.status == "under_review"
    assert [e.to_state for e in referral.events] == ["submitted", "under_review"]


def test_conflict_outcomes_are_not_offered_through_the_generic_form(world, as_user):
    national_id = factories.national_id()
    factories.submit(world.partner_a, national_id=national_id)
    conflict = factories.submit(world.partner_b, national_id=national_id)
    db.session.commit()

    response = _transition(as_user(world.manager), conflict, "submitted", note="why not")

    assert response.status_code == 302
    db.session.refresh(conflict)
    assert conflict.status == "conflict"


# --- documents ---------------------------------------------------------------------------------

def test_request_documents_hands_the_clock_to_the_partner(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    response = client.post(f"/bank/referrals/{referral.id}/request-documents",
                           data={"version": referral.version,
                                 "kinds": ["bank_statement", "income_proof"],
                                 "note": "Statements for the last six months"})

    assert response.status_code == 302
    db.session.refresh(referral)
    assert referral.status == "documents_requested" and referral.clock == "partner"
    by_kind = {s.kind: s for s in referral.stipulations}
    assert by_kind["bank_statement"].status == "missing"
    assert by_kind["income_proof"].note == "Statements for the last six months"
    assert referral.events[-1].partner_note == "Statements for the last six months"


def test_request_documents_needs_kinds_and_a_note(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    no_kinds = client.post(f"/bank/referrals/{referral.id}/request-documents",
                           data={"version": referral.version, "note": "kept note"})
    no_note = client.post(f"/bank/referrals/{referral.id}/request-documents",
                          data={"version": referral.version, "kinds": ["id_card"]})

    assert no_kinds.status_code == 422 and no_note.status_code == 422
    assert "kept note" in no_kinds.get_data(as_text=True)
    db.session.refresh(referral)
    assert referral.status == "submitted"


def test_request_documents_with_a_stale_version(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()

    response = client.post(f"/bank/referrals/{referral.id}/request-documents",
                           data={"version": 1, "kinds": ["id_card"], "note": "ID please"})

    assert response.status_code == 302
    db.session.refresh(referral)
    assert referral.status == "under_review"
    assert all(s.note is None for s in referral.stipulations)


@pytest.fixture
def uploaded(world):
    referral = factories.submit(world.partner_a)
    doc = documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "payslip.png",
                           _png())
    db.session.commit()
    return referral, doc


def test_document_accept(world, as_user, uploaded):
    referral, doc = uploaded
    client = as_user(world.officer)
    html = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert f"/bank/referrals/{referral.id}/documents/{doc.id}" in html

    response = client.post(f"/bank/documents/{doc.id}/review", data={"decision": "accept"})

    assert response.status_code == 302
    db.session.refresh(doc)
    assert doc.status == "accepted" and doc.reviewed_by_id == world.officer.id
    stipulation = next(s for s in referral.stipulations if s.kind == "income_proof")
    assert stipulation.status == "accepted"


def test_document_reject_needs_a_reason(world, as_user, uploaded):
    referral, doc = uploaded
    client = as_user(world.officer)

    refused = client.post(f"/bank/documents/{doc.id}/review", data={"decision": "reject"})
    assert refused.status_code == 422
    assert "Say why the document is rejected." in refused.get_data(as_text=True)
    db.session.refresh(doc)
    assert doc.status == "pending"

    done = client.post(f"/bank/documents/{doc.id}/review",
                       data={"decision": "reject", "reason": "Blurred, upload a clear scan"})
    assert done.status_code == 302
    db.session.refresh(doc)
    assert doc.status == "rejected" and doc.review_reason == "Blurred, upload a clear scan"

    twice = client.post(f"/bank/documents/{doc.id}/review", data={"decision": "accept"})
    assert twice.status_code == 302
    db.session.refresh(doc)
    assert doc.status == "rejected"


def test_document_download_is_an_attachment_of_that_referral_only(world, as_user, uploaded):
    referral, doc = uploaded
    other = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.officer)

    # The officer sees each document's SHA-256 where the documents are listed ...
    page = client.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert f'data-testid="sha256">{doc.sha256}</code>' in page
    response = client.get(f"/bank/referrals/{referral.id}/documents/{doc.id}")
    assert response.status_code == 200
    # ... and it is the hash of the bytes downloaded (an image is stored drawn again).
    assert hashlib.sha256(response.data).hexdigest() == doc.sha256
    with Image.open(io.BytesIO(response.data)) as stored, Image.open(io.BytesIO(_png())) as sent:
        assert stored.tobytes() == sent.tobytes()
    assert response.mimetype == "image/png"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "payslip.png" in response.headers["Content-Disposition"]
    assert _count(AuditEntry, AuditEntry.action == "document.download",
                  AuditEntry.target_id == str(doc.id)) == 1

    assert client.get(f"/bank/referrals/{other.id}/documents/{doc.id}").status_code == 404
    assert client.get(f"/bank/referrals/{referral.id}/documents/99999").status_code == 404


# --- conflicts -----------------------------------------------------------------------------------

@pytest.fixture
def conflict(world):
    """Partner B refers a buyer partner A registered first (A is the manager's partner)."""
    national_id = factories.national_id()
    holder = factories.submit(world.partner_a, national_id=national_id)
    challenger = factories.submit(world.partner_b, national_id=national_id)
    db.session.commit()
    assert challenger.status == "conflict"
    return holder, challenger


def test_conflict_appears_in_the_managers_queue_with_its_holder(world, as_user, conflict):
    holder, challenger = conflict
    client = as_user(world.manager)

    html = client.get("/bank/conflicts").get_data(as_text=True)

    assert _ids(html, "conflict-row") == [challenger.id]
    holder_cell = re.search(r'data-testid="holder">(.*?)</td>', html, re.S).group(1)
    assert "Partner A" in holder_cell and f"#{holder.id}" in holder_cell
    detail = client.get(f"/bank/referrals/{challenger.id}").get_data(as_text=True)
    assert 'data-testid="conflict-holder"' in detail and "PARTNERA" in detail
    assert challenger.id not in _ids(client.get("/bank/queue").get_data(as_text=True))


def test_conflict_queue_defaults_to_the_managers_partners(world, as_user):
    org_c = factories.OrgFactory(code="PARTNERC", name="Partner C")
    user_c = factories.UserFactory(org=org_c, role="partner_admin")
    national_id = factories.national_id()
    factories.submit(user_c, national_id=national_id)
    elsewhere = factories.submit(world.partner_b, national_id=national_id)
    db.session.commit()
    client = as_user(world.manager)

    assert _ids(client.get("/bank/conflicts").get_data(as_text=True), "conflict-row") == []
    everyone = client.get("/bank/conflicts?scope=all").get_data(as_text=True)
    assert _ids(everyone, "conflict-row") == [elsewhere.id]


def test_grant_a_conflict_with_a_written_reason(world, as_user, conflict):
    _holder, challenger = conflict
    client = as_user(world.manager)

    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": "grant", "version": challenger.version,
                                 "reason": "Buyer chose broker B in writing", "confirm": "y"})

    assert response.status_code == 302
    db.session.refresh(challenger)
    assert challenger.status == "submitted" and challenger.clock == "bank"
    event = challenger.events[-1]
    assert event.note == "Buyer chose broker B in writing"
    assert event.partner_note and "Partner A" not in event.partner_note
    assert "PARTNERA" not in event.partner_note
    assert event.actor_id == world.manager.id


def test_reject_a_conflict_as_duplicate(world, as_user, conflict):
    _holder, challenger = conflict
    client = as_user(world.admin)

    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": "reject", "version": challenger.version,
                                 "reason": "First registration stands", "confirm": "y",
                                 "next": f"/bank/referrals/{challenger.id}"})

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/bank/referrals/{challenger.id}")
    db.session.refresh(challenger)
    assert challenger.status == "rejected_duplicate" and challenger.clock is None
    assert "Partner A" not in (challenger.events[-1].partner_note or "")


def test_resolving_needs_a_written_reason(world, as_user, conflict):
    _holder, challenger = conflict
    client = as_user(world.manager)

    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": "grant", "version": challenger.version,
                                 "reason": "  ", "confirm": "y"})

    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Write the reason for this decision." in html
    db.session.refresh(challenger)
    assert challenger.status == "conflict"


@pytest.mark.parametrize("decision", ["grant", "reject"])
def test_resolving_needs_the_confirmation_ticked(world, as_user, conflict, decision):
    """A click on Grant or Reject with JavaScript off (no confirm() dialog) settles nothing
    unless the confirmation box was ticked."""
    _holder, challenger = conflict
    client = as_user(world.manager)
    page = client.get("/bank/conflicts").get_data(as_text=True)
    assert f'id="confirm-{challenger.id}" required' in page and "data-confirm=" in page

    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": decision, "version": challenger.version,
                                 "reason": "Looks right"})

    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Tick the box to confirm the decision." in html
    db.session.refresh(challenger)
    assert challenger.status == "conflict"


def test_resolving_with_a_stale_version(world, as_user, conflict):
    _holder, challenger = conflict
    client = as_user(world.manager)
    referrals.transition(Ctx(user=world.admin), challenger, "rejected_duplicate", note="admin")
    db.session.commit()

    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": "grant", "version": 1, "reason": "late",
                                 "confirm": "y"})

    assert response.status_code == 302
    assert "Someone else changed" in client.get("/bank/conflicts").get_data(as_text=True)
    db.session.refresh(challenger)
    assert challenger.status == "rejected_duplicate"


def test_officer_may_not_open_or_resolve_conflicts(world, as_user, conflict):
    _holder, challenger = conflict
    client = as_user(world.officer)

    assert client.get("/bank/conflicts").status_code == 403
    response = client.post(f"/bank/referrals/{challenger.id}/resolve",
                           data={"decision": "grant", "version": 1, "reason": "x"})
    assert response.status_code == 403
    db.session.refresh(challenger)
    assert challenger.status == "conflict"
    html = client.get(f"/bank/referrals/{challenger.id}").get_data(as_text=True)
    assert 'data-action="resolve"' not in html


# --- access -------------------------------------------------------------------------------------

BANK_ROUTES = [
    ("get", "/bank/queue"),
    ("get", "/bank/referrals"),
    ("get", "/bank/referrals/{r}"),
    ("post", "/bank/referrals/{r}/reveal"),
    ("post", "/bank/referrals/{r}/transition"),
    ("post", "/bank/referrals/{r}/request-documents"),
    ("post", "/bank/documents/{d}/review"),
    ("get", "/bank/referrals/{r}/documents/{d}"),
    ("get", "/bank/conflicts"),
    ("post", "/bank/referrals/{r}/resolve"),
]


@pytest.mark.parametrize("role", ["partner_a", "agent_a", "partner_b"])
def test_partner_users_get_403_on_every_bank_route(world, app, uploaded, role):
    referral, doc = uploaded
    client = app.test_client()
    login(client, getattr(world, role))
    for method, url in BANK_ROUTES:
        path = url.format(r=referral.id, d=doc.id)
        response = getattr(client, method)(path, data={"to": "under_review", "version": 1,
                                                       "decision": "accept"})
        assert response.status_code == 403, (method, path)
    db.session.refresh(referral)
    assert referral.status == "submitted"
    assert _count(AuditEntry, AuditEntry.action == "referral.reveal") == 0


@pytest.mark.parametrize("url", [u for m, u in BANK_ROUTES if m == "get"])
def test_anonymous_visitors_are_sent_to_log_in(client, world, uploaded, url):
    referral, doc = uploaded
    response = client.get(url.format(r=referral.id, d=doc.id))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_every_bank_role_can_open_the_queue_and_a_referral(world, app, uploaded):
    referral, _doc = uploaded
    for user in (world.officer, world.manager, world.admin):
        client = app.test_client()
        login(client, user)
        assert client.get("/bank/queue").status_code == 200
        assert client.get(f"/bank/referrals/{referral.id}").status_code == 200


def test_referral_models_untouched_by_get_requests(world, as_user, uploaded):
    referral, _doc = uploaded
    version = referral.version
    client = as_user(world.officer)
    client.get("/bank/queue")
    client.get(f"/bank/referrals/{referral.id}")
    db.session.refresh(referral)
    assert referral.version == version
    assert db.session.get(Referral, referral.id).status == "submitted"
