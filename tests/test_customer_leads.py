"""Customers exchanged both ways (issue 14, point 4): the bank refers its customers to partners.

The whole path through the pages: a channel manager refers a bank customer to partner A with the
customer's consent; A's users are told (portal, webhook) and find the customer, masked until they
accept; they accept, report a deal; the bank is told and each step is audited. Refused: a
referral without consent (nothing written), another partner's lead (404), another branch's
staff (404, nothing changed). The balance (referred to us / by us) with known data, on the
partner's page and in the cockpit. The internal note never reaches the partner.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import func, select

from models import AuditEntry, CustomerLead, Notification, OutboxEvent, utcnow
from portal.extensions import db
from portal.services import Ctx, customer_leads, pii, webhooks
from portal.services.errors import NotFound, ValidationFailed
from tests import factories
from tests.conftest import login
from tests.test_branch_scope import _client, tree  # noqa: F401  (the EAST/WEST tree)

MOBILE = "13812345678"
SECRET = "ZZ-INTERNAL-lead-note"


def _form(org_id, **overrides) -> dict:
    data = {"org_id": str(org_id), "customer_name": "周建国", "mobile": MOBILE,
            "need": "home_decoration", "need_detail": "Needs the flat decorated before May.",
            "internal_note": SECRET, "consent": "y", "consent_method": "signed_form",
            "consent_at": (utcnow() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _data(**overrides) -> dict:
    data = _form(0, **overrides)
    data.pop("org_id")
    return data


def _web(app, user):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, user)
    return client


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_whole_exchange_from_the_bank_to_the_partner_and_back(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")  # staff are told by e-mail
    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "http://127.0.0.1:9/hook")
    db.session.commit()
    manager, partner = _web(app, world.manager), _web(app, world.agent_a)

    made = manager.post("/bank/leads/new", data=_form(world.org_a.id))
    assert made.status_code == 302, made.get_data(as_text=True)[:400]
    lead = db.session.scalar(select(CustomerLead))
    assert made.headers["Location"].endswith(f"/bank/leads/{lead.id}")
    # Kept as a buyer's mobile is: encrypted, hashed, masked.
    assert MOBILE not in lead.mobile_enc and pii.decrypt(lead.mobile_enc) == MOBILE
    assert lead.mobile_hash == pii.mobile_hash(MOBILE) and lead.mobile_masked == "138****5678"
    assert (lead.consent_method, lead.consent_recorded_by_id) == ("signed_form", world.manager.id)
    assert lead.consent_notice_version == app.config["CONSENT_NOTICE_VERSION"]
    # The partner's users are told; its systems get an event without personal data.
    told = db.session.scalars(select(Notification).where(Notification.kind == "lead_received"))
    assert {n.user_id for n in told} == {world.partner_a.id, world.agent_a.id}
    event = db.session.scalar(select(OutboxEvent).where(OutboxEvent.type == "lead.received"))
    assert event.org_id == world.org_a.id and event.payload["lead"]["id"] == lead.id
    assert "周建国" not in json.dumps(event.payload, ensure_ascii=False)
    assert MOBILE not in json.dumps(event.payload)

    listed = partner.get("/partner/leads").get_data(as_text=True)
    assert "周建国" in listed and "138****5678" in listed and MOBILE not in listed
    assert 'data-testid="leads-waiting">1<' in listed
    page = partner.get(f"/partner/leads/{lead.id}").get_data(as_text=True)
    assert "Needs the flat decorated" in page and MOBILE not in page

    assert partner.post(f"/partner/leads/{lead.id}/accept").status_code == 302
    page = partner.get(f"/partner/leads/{lead.id}").get_data(as_text=True)
    assert MOBILE in page  # to call the customer
    done = partner.post(f"/partner/leads/{lead.id}/outcome",
                        data={"outcome": "won", "note": "Contract signed."})
    assert done.status_code == 302
    db.session.expire_all()
    lead = db.session.get(CustomerLead, lead.id)
    assert lead.status == "won" and lead.closed_at is not None
    assert lead.outcome_note == "Contract signed." and lead.answered_by_id == world.agent_a.id
    # Closed: no more answers.
    again = partner.post(f"/partner/leads/{lead.id}/outcome", data={"outcome": "lost"})
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.get(CustomerLead, lead.id).status == "won"

    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "customerlead").order_by(AuditEntry.id)))
    assert actions == ["lead.create", "lead.accept", "lead.outcome"]
    # The bank is told of each answer: the member of staff who referred the customer (here
    # also partner A's channel manager, told once).
    answers = list(db.session.scalars(select(Notification).where(
        Notification.kind == "lead_answered")))
    assert [n.user_id for n in answers] == [world.manager.id, world.manager.id]
    bank_page = manager.get(f"/bank/leads/{lead.id}").get_data(as_text=True)
    assert "Deal made" in bank_page and "Contract signed." in bank_page
    assert SECRET in bank_page


def test_a_partner_declines_with_a_reason_and_the_bank_reads_it(app, world):
    lead = customer_leads.create(Ctx(user=world.officer), world.org_a, _data())
    db.session.commit()
    partner = _web(app, world.partner_a)
    refused = partner.post(f"/partner/leads/{lead.id}/decline", data={"reason": "  "})
    assert refused.status_code == 422
    assert "Say why you decline" in refused.get_data(as_text=True)
    assert partner.post(f"/partner/leads/{lead.id}/decline",
                        data={"reason": "Outside our area."}).status_code == 302
    db.session.expire_all()
    lead = db.session.get(CustomerLead, lead.id)
    assert (lead.status, lead.decline_reason) == ("declined", "Outside our area.")
    # Declined: the partner never gets the whole mobile.
    assert MOBILE not in partner.get(f"/partner/leads/{lead.id}").get_data(as_text=True)
    page = _web(app, world.officer).get(f"/bank/leads/{lead.id}").get_data(as_text=True)
    assert "Outside our area." in page


@pytest.mark.parametrize("missing", [{"consent": None}, {"consent_method": ""},
                                     {"consent_at": ""}, {"consent_at": "2999-01-01T10:00"}])
def test_no_referral_of_a_customer_without_their_recorded_consent(app, world, missing):
    manager = _web(app, world.manager)
    response = manager.post("/bank/leads/new", data=_form(world.org_a.id, **missing))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    # Nothing typed is lost.
    assert "周建国" in page and MOBILE in page
    assert _count(CustomerLead) == 0 and _count(Notification) == 0
    with pytest.raises(ValidationFailed) as refused:
        customer_leads.create(Ctx(user=world.manager), world.org_a, _data(**missing))
    assert set(refused.value.fields) & {"consent", "consent_method", "consent_at"}


def test_a_partner_cannot_see_or_answer_another_partners_customer(app, world):
    lead = customer_leads.create(Ctx(user=world.manager), world.org_a, _data())
    db.session.commit()
    other = _web(app, world.partner_b)
    assert other.get(f"/partner/leads/{lead.id}").status_code == 404
    for action in ("accept", "decline", "outcome"):
        assert other.post(f"/partner/leads/{lead.id}/{action}",
                          data={"reason": "x", "outcome": "won"}).status_code == 404
    assert "周建国" not in other.get("/partner/leads").get_data(as_text=True)
    # Nor can bank staff answer for the partner.
    with pytest.raises(Exception) as refused:
        customer_leads.accept(Ctx(user=world.manager), lead)
    assert type(refused.value).__name__ == "Forbidden"
    db.session.expire_all()
    assert db.session.get(CustomerLead, lead.id).status == "sent"


def test_another_branchs_staff_neither_see_nor_refer(app, tree):  # noqa: F811
    """WEST's partner B: EAST's staff find neither its leads nor it to refer customers to."""
    lead = customer_leads.create(Ctx(user=tree.manager), tree.org_b, _data())
    db.session.commit()
    east = _client(app, tree.east_manager)
    assert east.get(f"/bank/leads/{lead.id}").status_code == 404
    assert "周建国" not in east.get("/bank/leads").get_data(as_text=True)
    assert east.post("/bank/leads/new", data=_form(tree.org_b.id)).status_code == 404
    assert _count(CustomerLead) == 1
    with pytest.raises(NotFound):
        customer_leads.create(Ctx(user=tree.east_officer), tree.org_b, _data())
    with pytest.raises(NotFound):
        customer_leads.get_for(tree.east_officer, lead.id)
    # The province sees it; WEST's own manager too.
    assert _client(app, tree.west_manager).get(f"/bank/leads/{lead.id}").status_code == 200
    assert _client(app, tree.admin).get(f"/bank/leads/{lead.id}").status_code == 200


def test_the_balance_both_ways_with_known_numbers(app, tree):  # noqa: F811
    for _n in range(3):
        factories.submit(tree.partner_a)
    factories.submit(tree.partner_b)
    won = customer_leads.create(Ctx(user=tree.manager), tree.org_a, _data())
    customer_leads.create(Ctx(user=tree.east_manager), tree.org_a, _data(mobile="13912345678"))
    customer_leads.accept(Ctx(user=tree.partner_a), won)
    customer_leads.report(Ctx(user=tree.partner_a), won, {"outcome": "won"})
    db.session.commit()
    a, b = tree.org_a.id, tree.org_b.id
    assert customer_leads.balance(tree.manager) == {
        a: {"to_us": 3, "by_us": 2, "won": 1}, b: {"to_us": 1, "by_us": 0, "won": 0}}
    # Branch-scoped: EAST's staff count only EAST's partners.
    assert customer_leads.balance(tree.east_manager) == {a: {"to_us": 3, "by_us": 2, "won": 1}}
    assert customer_leads.balance(tree.east_manager, [b]) == {b: {"to_us": 0, "by_us": 0,
                                                                  "won": 0}}

    page = _client(app, tree.manager).get(f"/bank/scorecards/{a}").get_data(as_text=True)
    assert 'data-testid="exchange-to-us">3<' in page and 'data-testid="exchange-by-us">2<' in page
    assert 'data-testid="exchange-won">1<' in page
    from portal.services import scoring

    scoring.recompute_all()
    db.session.commit()
    cockpit = _client(app, tree.east_manager).get("/bank/scorecards").get_data(as_text=True)
    row = cockpit[cockpit.index('data-org-code="PARTNERA"'):]
    row = row[:row.index("</tr>")]
    assert '/bank/leads?org=' in row and ">3 / 2</a>" in row
    assert 'data-org-code="PARTNERB"' not in cockpit


def test_the_internal_note_never_reaches_the_partner(app, world):
    lead = customer_leads.create(Ctx(user=world.manager), world.org_a, _data())
    db.session.commit()
    partner = _web(app, world.partner_a)
    pages = [partner.get(url).get_data(as_text=True) for url in (
        "/partner/leads", f"/partner/leads/{lead.id}", "/partner/notifications")]
    customer_leads.accept(Ctx(user=world.partner_a), lead)
    db.session.commit()
    pages.append(partner.get(f"/partner/leads/{lead.id}").get_data(as_text=True))
    assert all(SECRET not in page for page in pages)
    assert "Needs the flat decorated" in pages[1]
    view = customer_leads.partner_view(lead)
    assert SECRET not in json.dumps(view, default=str)
    payloads = db.session.scalars(select(OutboxEvent.payload))
    assert all(SECRET not in json.dumps(p) for p in payloads)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_pages_in_both_languages(app, world, language):
    lead = customer_leads.create(Ctx(user=world.manager), world.org_a, _data())
    db.session.commit()
    words = {"en": ("Refer a customer to a partner", "Customers from the bank"),
             "zh": ("向合作机构转介客户", "银行转介客户")}[language]
    bank, partner = _web(app, world.manager), _web(app, world.partner_a)
    for client in (bank, partner):
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    new = bank.get(f"/bank/leads/new?org={world.org_a.id}").get_data(as_text=True)
    assert words[0] in new
    assert f'<option value="{world.org_a.id}" selected>' in new
    for url in ("/bank/leads", f"/bank/leads/{lead.id}", f"/bank/scorecards/{world.org_a.id}"):
        assert bank.get(url).status_code == 200, url
    empty = bank.get("/bank/leads?q=nobody").get_data(as_text=True)
    assert 'data-testid="empty-state"' in empty
    listed = partner.get("/partner/leads").get_data(as_text=True)
    assert words[1] in listed
    assert partner.get(f"/partner/leads/{lead.id}").status_code == 200


def test_retention_removes_an_old_leads_personal_data(app, world):
    old = customer_leads.create(Ctx(user=world.manager), world.org_a, _data())
    recent = customer_leads.create(Ctx(user=world.manager), world.org_a,
                                   _data(mobile="13912345678"))
    customer_leads.decline(Ctx(user=world.partner_a), old, {"reason": "Not ours."})
    old.status_changed_at = utcnow() - timedelta(days=366 * app.config["RETENTION_YEARS"] + 2)
    db.session.commit()
    from portal.services import retention

    assert retention.anonymise_leads(Ctx(user=None)) == 1
    db.session.commit()
    db.session.expire_all()
    gone, kept = db.session.get(CustomerLead, old.id), db.session.get(CustomerLead, recent.id)
    assert (gone.customer_name, gone.mobile_enc, gone.mobile_hash) == ("—", "", None)
    assert gone.internal_note is None and gone.decline_reason is None
    assert (gone.status, gone.need, gone.consent_method) == ("declined", "home_decoration",
                                                             "signed_form")
    assert kept.customer_name == "周建国" and pii.decrypt(kept.mobile_enc) == "13912345678"
    # The balance still counts it.
    assert customer_leads.balance(world.manager, [world.org_a.id])[world.org_a.id]["by_us"] == 2
    assert retention.anonymise_leads(Ctx(user=None)) == 0
    # An accepted lead that aged out still opens for the partner, with nothing personal left.
    customer_leads.accept(Ctx(user=world.partner_a), recent)
    recent.status_changed_at = old.status_changed_at
    db.session.commit()
    retention.anonymise_leads(Ctx(user=None))
    db.session.commit()
    page = _web(app, world.partner_a).get(f"/partner/leads/{recent.id}")
    assert page.status_code == 200 and "13912345678" not in page.get_data(as_text=True)


def test_a_key_rotation_moves_the_leads_mobiles(app, world, monkeypatch):
    from tests.test_pii_rotation import NEXT_HASH, NEXT_PII

    lead = customer_leads.create(Ctx(user=world.manager), world.org_a, _data())
    db.session.commit()
    old_pii = app.config["PII_KEY"]
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", NEXT_PII)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", NEXT_HASH)
    result = app.test_cli_runner().invoke(args=["pii", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "Moved 1 mobiles of customers" in result.output
    # The old keys dropped: the lead reads and is found under the new ones only.
    for name, value in (("PII_KEY", NEXT_PII), ("ID_HASH_KEY", NEXT_HASH),
                        ("PII_KEY_NEXT", None), ("ID_HASH_KEY_NEXT", None)):
        monkeypatch.setitem(app.config, name, value)
    db.session.expire_all()
    moved = db.session.get(CustomerLead, lead.id)
    assert pii.decrypt(moved.mobile_enc) == MOBILE and moved.mobile_hash == pii.mobile_hash(MOBILE)
    found = db.session.scalars(customer_leads.search(world.manager, q=MOBILE)).all()
    assert [f.id for f in found] == [lead.id]
    monkeypatch.setitem(app.config, "PII_KEY", old_pii)
    with pytest.raises(InvalidToken):
        pii.decrypt(moved.mobile_enc)
