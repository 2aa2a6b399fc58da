"""HTTP API v1 (docs/contract.md): every endpoint for each role, other organisations' ids,
validation, idempotency (replays, reuse with another body, races), keys and rate limits."""

from __future__ import annotations

import io
import json
import threading

import pytest
from sqlalchemy import func, select

from models import (
    Agreement,
    ApiKey,
    Document,
    IdempotencyRecord,
    Notification,
    OutboxEvent,
    Product,
    Referral,
)
from portal.extensions import db
from portal.services import Ctx, api_keys, referrals, webhooks
from tests import factories
from tests.conftest import login
from tests.integration_helpers import api_body, auth, make_key, pdf_bytes, png_bytes

ROLES = ("partner_a", "agent_a", "partner_b", "officer", "manager", "admin")
PARTNERS = ("partner_a", "agent_a", "partner_b")
BANK = ("officer", "manager", "admin")


@pytest.fixture
def keys(world):
    return {role: make_key(getattr(world, role), f"{role} key") for role in ROLES}


def count(model=Referral) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


# --- authentication ----------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/api/v1/referrals"),
    ("post", "/api/v1/referrals"),
    ("post", "/api/v1/referrals/batch"),
    ("get", "/api/v1/referrals/1"),
    ("post", "/api/v1/referrals/1/documents"),
    ("post", "/api/v1/referrals/1/stipulations/1/documents"),
    ("post", "/api/v1/referrals/1/transitions"),
    ("get", "/api/v1/agreements"),
    ("get", "/api/v1/agreements/1/pdf"),
    ("get", "/api/v1/sites"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("header", [None, "Bearer ppk_wrong", "Basic dXNlcjpwYXNz", "Bearer "])
def test_every_endpoint_needs_a_valid_key(client, world, method, path, header):
    headers = {"Authorization": header} if header else {}
    response = getattr(client, method)(path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert set(response.json["error"]) == {"code", "message", "fields"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_or_deactivated_user_is_refused(client, world):
    key = make_key(world.partner_a)
    assert client.get("/api/v1/referrals", headers=auth(key)).status_code == 200
    row = db.session.scalar(select(ApiKey))
    api_keys.revoke(Ctx(user=world.partner_a), row)
    db.session.commit()
    assert client.get("/api/v1/referrals", headers=auth(key)).status_code == 401

    other = make_key(world.agent_a)
    world.agent_a.active = False
    db.session.commit()
    assert client.get("/api/v1/referrals", headers=auth(other)).status_code == 401


def test_the_key_is_stored_only_as_a_hash_and_last_use_is_recorded(client, world):
    key = make_key(world.partner_a)
    row = db.session.scalar(select(ApiKey))
    assert key not in (row.key_hash, row.prefix) and row.key_hash == api_keys.hash_key(key)
    assert key.startswith(row.prefix) and row.last_used_at is None
    client.get("/api/v1/referrals", headers=auth(key))
    db.session.expire_all()
    first = db.session.get(ApiKey, row.id).last_used_at
    assert first is not None
    # No write on every request: a second call within the minute leaves it as it was.
    client.get("/api/v1/referrals", headers=auth(key))
    db.session.expire_all()
    assert db.session.get(ApiKey, row.id).last_used_at == first


# --- submitting --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["partner_a", "agent_a"])
def test_partner_roles_submit_a_referral(client, world, keys, role):
    body = api_body(external_ref=f"CRM-{role}")
    response = client.post("/api/v1/referrals", headers=auth(keys[role]), json=body)
    assert response.status_code == 201, response.json
    out = response.json
    assert out["status"] == "submitted" and out["customer_class"] == 1
    assert out["external_ref"] == f"CRM-{role}" and out["product"] == "housing_mortgage"
    assert out["buyer"]["name"] == body["buyer"]["name"]
    nid = body["buyer"]["national_id"]
    assert out["buyer"]["national_id_masked"] == nid[:3] + "*" * 11 + nid[-4:]
    assert nid not in response.get_data(as_text=True)
    assert body["buyer"]["mobile"] not in response.get_data(as_text=True)
    assert out["amount"] == 700000 and out["term_months"] == 240 and out["clock"] == "bank"
    assert [(t["from"], t["to"]) for t in out["timeline"]] == [(None, "submitted")]
    assert response.headers["Location"].endswith(f"/api/v1/referrals/{out['id']}")
    stored = db.session.get(Referral, out["id"])
    assert stored.org_id == world.org_a.id and stored.submitted_by_id == getattr(world, role).id
    # The product's checklist, in its order, is what the answer lists as documents to send.
    checklist = [d.kind for d in db.session.get(Product, "housing_mortgage").required_documents]
    assert len(checklist) >= 2
    assert [(d["kind"], d["status"]) for d in out["documents"]] == [
        (kind, "missing") for kind in checklist]
    assert [s.kind for s in stored.stipulations] == checklist


@pytest.mark.parametrize("role", BANK)
def test_bank_roles_cannot_submit(client, world, keys, role):
    response = client.post("/api/v1/referrals", headers=auth(keys[role]), json=api_body())
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert count() == 0


@pytest.mark.parametrize("overrides,field", [
    ({"buyer.national_id": "110105198506120010"}, "buyer.national_id"),
    ({"buyer.mobile": "12345"}, "buyer.mobile"),
    ({"buyer.industry": "astrology"}, "buyer.industry"),
    ({"buyer.name": ""}, "buyer.name"),
    ({"buyer.monthly_income": "lots"}, "buyer.monthly_income"),
    ({"asset.down_payment": 2000000}, "asset.down_payment"),
    ({"asset.description": None}, "asset.description"),
    ({"consent.obtained": False}, "consent.obtained"),
    ({"consent.obtained_at": "2026-01-05T10:00:00"}, "consent.obtained_at"),
    ({"amount": 50}, "amount"),
    ({"term_months": "twenty"}, "term_months"),
    ({"term_months": 999}, "term_months"),
    ({"product": "yacht_loan"}, "product"),
    ({"buyer.name": "a\x00b"}, "buyer.name"),
])
def test_invalid_input_is_422_with_nested_field_names(client, world, keys, overrides, field):
    response = client.post("/api/v1/referrals", headers=auth(keys["partner_a"]),
                           json=api_body(**overrides))
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "invalid" and field in error["fields"], error
    assert all(isinstance(v, str) and v for v in error["fields"].values())
    assert count() == 0


@pytest.mark.parametrize("data,content_type", [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"", "application/json"),
    (b"product=x", "application/x-www-form-urlencoded"),
])
def test_a_body_that_is_not_a_json_object_is_422(client, world, keys, data, content_type):
    response = client.post("/api/v1/referrals", headers=auth(keys["partner_a"]), data=data,
                           content_type=content_type)
    assert response.status_code == 422
    assert "body" in response.json["error"]["fields"]


def test_missing_sections_are_named(client, world, keys):
    body = api_body()
    del body["buyer"]
    del body["consent"]
    response = client.post("/api/v1/referrals", headers=auth(keys["partner_a"]), json=body)
    assert response.status_code == 422
    assert {"buyer", "consent"} <= set(response.json["error"]["fields"])


def test_same_buyer_from_another_partner_is_201_conflict_naming_no_one(client, world, keys):
    nid = factories.national_id(501)
    first = client.post("/api/v1/referrals", headers=auth(keys["partner_a"]),
                        json=api_body(**{"buyer.national_id": nid}))
    assert first.json["status"] == "submitted"
    second = client.post("/api/v1/referrals", headers=auth(keys["partner_b"]),
                         json=api_body(**{"buyer.national_id": nid}))
    assert second.status_code == 201
    assert second.json["status"] == "conflict"
    text = second.get_data(as_text=True)
    assert "PARTNERA" not in text and "Partner A" not in text
    assert second.json["org_code"] == "PARTNERB" and second.json["id"] != first.json["id"]
    assert all(t["note"] is None for t in second.json["timeline"])


def test_same_buyer_again_from_the_same_organisation_is_409(client, world, keys):
    nid = factories.national_id(502)
    client.post("/api/v1/referrals", headers=auth(keys["partner_a"]),
                json=api_body(**{"buyer.national_id": nid}))
    again = client.post("/api/v1/referrals", headers=auth(keys["agent_a"]),
                        json=api_body(**{"buyer.national_id": nid}))
    assert again.status_code == 409
    assert again.json["error"]["code"] == "already_registered"
    assert count() == 1


def test_a_product_outside_the_agreement_is_refused(client, world):
    org = factories.OrgFactory(code="AUTOONLY", kind="car_dealer", agreement=["auto_loan"])
    user = factories.UserFactory(org=org, role="partner_admin")
    key = make_key(user)
    response = client.post("/api/v1/referrals", headers=auth(key), json=api_body())
    assert response.status_code == 403
    assert count() == 0


# --- reading -----------------------------------------------------------------------------------

def test_lists_hold_only_the_callers_organisation_and_bank_roles_see_all(client, world, keys):
    mine = [factories.submit(world.partner_a, external_ref=f"A-{i}") for i in range(3)]
    theirs = factories.submit(world.partner_b, external_ref="B-1")
    referrals.transition(Ctx(user=world.officer), mine[0], "under_review")
    db.session.commit()
    for role in ("partner_a", "agent_a"):
        out = client.get("/api/v1/referrals", headers=auth(keys[role])).json
        assert set(out) == {"items", "page", "per_page", "total"}
        assert out["total"] == 3 and {i["id"] for i in out["items"]} == {r.id for r in mine}
    out = client.get("/api/v1/referrals", headers=auth(keys["partner_b"])).json
    assert [i["id"] for i in out["items"]] == [theirs.id]
    for role in BANK:
        out = client.get("/api/v1/referrals", headers=auth(keys[role])).json
        assert out["total"] == 4
    out = client.get("/api/v1/referrals?org_code=partnerb",
                     headers=auth(keys["officer"])).json
    assert [i["id"] for i in out["items"]] == [theirs.id]
    # Filters and pages.
    out = client.get("/api/v1/referrals?status=under_review",
                     headers=auth(keys["partner_a"])).json
    assert [i["id"] for i in out["items"]] == [mine[0].id]
    out = client.get("/api/v1/referrals?external_ref=A-2", headers=auth(keys["partner_a"])).json
    assert [i["id"] for i in out["items"]] == [mine[2].id]
    out = client.get("/api/v1/referrals?external_ref=B-1", headers=auth(keys["partner_a"])).json
    assert out["items"] == [] and out["total"] == 0
    page2 = client.get("/api/v1/referrals?page=2&per_page=2",
                       headers=auth(keys["partner_a"])).json
    assert page2["page"] == 2 and page2["per_page"] == 2 and len(page2["items"]) == 1
    assert page2["total"] == 3


@pytest.mark.parametrize("query,field", [
    ("status=lost", "status"), ("page=0", "page"), ("per_page=1000", "per_page"),
    ("page=x", "page"),
])
def test_bad_list_parameters_are_422(client, world, keys, query, field):
    response = client.get(f"/api/v1/referrals?{query}", headers=auth(keys["partner_a"]))
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_one_referral_with_timeline_and_partner_safe_notes(client, world, keys):
    referral = factories.submit(world.partner_a)
    officer = Ctx(user=world.officer)
    referrals.transition(officer, referral, "under_review", note="internal: call employer")
    referrals.transition(officer, referral, "documents_requested", note="internal: payslip odd",
                         partner_note="Please upload the last three payslips")
    db.session.commit()
    for role in ("partner_a", "agent_a"):
        out = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys[role])).json
        assert out["status"] == "documents_requested" and out["clock"] == "partner"
        assert out["customer_class"] in (1, 2, 3)
        assert [(t["from"], t["to"]) for t in out["timeline"]] == [
            (None, "submitted"), ("submitted", "under_review"),
            ("under_review", "documents_requested")]
        assert out["timeline"][2]["note"] == "Please upload the last three payslips"
        assert "internal" not in str(out)
    out = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys["officer"])).json
    assert out["timeline"][1]["note"] == "internal: call employer"
    # The list reads its timelines apart (disclosure.timelines): each item is the referral as
    # its own address gives it, to the partner without the internal notes.
    for role in ("partner_a", "agent_a", "officer"):
        one = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys[role])).json
        listed = client.get("/api/v1/referrals", headers=auth(keys[role])).json["items"]
        assert [item for item in listed if item["id"] == referral.id] == [one]
        assert ("internal" in str(listed)) is (role == "officer")


def test_another_organisations_ids_are_404_everywhere(client, world, keys):
    theirs = factories.submit(world.partner_b)
    agreement_id = db.session.scalar(select(Agreement.id).where(
        Agreement.org_id == world.org_b.id))
    db.session.commit()
    key = auth(keys["partner_a"])
    calls = [
        client.get(f"/api/v1/referrals/{theirs.id}", headers=key),
        client.post(f"/api/v1/referrals/{theirs.id}/documents", headers=key,
                    data={"kind": "id_card", "file": (io.BytesIO(png_bytes()), "id.png")}),
        client.post(f"/api/v1/referrals/{theirs.id}/transitions", headers=key,
                    json={"to": "withdrawn"}),
        client.get(f"/api/v1/agreements/{agreement_id}/pdf", headers=key),
    ]
    for response in calls:
        assert response.status_code == 404, response.request.path
        assert response.json["error"]["code"] == "not_found"
    # Nothing happened to it.
    db.session.expire_all()
    assert db.session.get(Referral, theirs.id).status == "submitted"
    assert count(Document) == 0


@pytest.mark.parametrize("path", ["/api/v1/referrals/999999", "/api/v1/referrals/0",
                                  "/api/v1/referrals/99999999999999999999",
                                  "/api/v1/referrals/abc", "/api/v1/agreements/99999999999/pdf"])
def test_unknown_or_impossible_ids_are_404(client, world, keys, path):
    response = client.get(path, headers=auth(keys["officer"]))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


# --- documents ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["partner_a", "agent_a", "officer"])
def test_documents_are_uploaded_for_a_visible_referral(client, world, keys, role):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(keys[role]),
                           data={"kind": "income_proof", "file": (io.BytesIO(pdf_bytes()),
                                                                   "payslips.pdf")})
    assert response.status_code == 201, response.json
    out = response.json
    assert out["kind"] == "income_proof" and out["content_type"] == "application/pdf"
    assert out["referral_id"] == referral.id and out["status"] == "pending"
    stip = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys[role])).json
    assert {"kind": "income_proof", "status": "uploaded"} in stip["documents"]


@pytest.mark.parametrize("data,field", [
    ({"kind": "income_proof", "file": "not a file"}, "file"),
    ({"file": "png"}, "kind"),
    ({"kind": "horoscope", "file": "png"}, "kind"),
    ({"kind": "id_card", "file": "exe"}, "file"),
])
def test_bad_uploads_are_422(client, world, keys, data, field):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    payload = dict(data)
    if payload.get("file") == "png":
        payload["file"] = (io.BytesIO(png_bytes()), "a.png")
    elif payload.get("file") == "exe":
        payload["file"] = (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 200), "a.png")
    else:
        payload.pop("file")
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(keys["partner_a"]), data=payload)
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_a_closed_referral_takes_no_documents(client, world, keys):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.partner_a), referral, "withdrawn")
    db.session.commit()
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(keys["partner_a"]),
                           data={"kind": "id_card", "file": (io.BytesIO(png_bytes()), "a.png")})
    assert response.status_code == 409


# --- transitions -------------------------------------------------------------------------------

def test_bank_moves_a_referral_and_illegal_moves_are_409(client, world, keys):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    url = f"/api/v1/referrals/{referral.id}/transitions"
    officer = auth(keys["officer"])
    response = client.post(url, headers=officer, json={"to": "under_review", "note": "start"})
    assert response.status_code == 200 and response.json["status"] == "under_review"
    illegal = client.post(url, headers=officer, json={"to": "disbursed"})
    assert illegal.status_code == 409 and illegal.json["error"]["code"] == "state_conflict"
    no_reason = client.post(url, headers=officer, json={"to": "declined"})
    assert no_reason.status_code == 422 and "reason_code" in no_reason.json["error"]["fields"]
    unknown = client.post(url, headers=officer, json={"to": "teleported"})
    assert unknown.status_code == 422 and "to" in unknown.json["error"]["fields"]
    stale = client.post(url, headers=officer, json={"to": "approved", "expected_version": 1})
    assert stale.status_code == 409
    # A channel manager may never make an officer's move: forbidden, not a state conflict.
    manager = client.post(url, headers=auth(keys["manager"]), json={"to": "approved"})
    assert manager.status_code == 403 and manager.json["error"]["code"] == "forbidden"
    done = client.post(url, headers=officer, json={"to": "declined",
                                                   "reason_code": "income_insufficient"})
    assert done.status_code == 200 and done.json["decline_reason"] == "income_insufficient"


def test_bank_asks_for_documents_through_the_api(client, world, keys):
    referral = factories.submit(world.partner_a, product="consumer_loan", amount="50000",
                                term_months="24", asset_description=None, asset_price=None,
                                down_payment=None)
    db.session.commit()
    response = client.post(f"/api/v1/referrals/{referral.id}/transitions",
                           headers=auth(keys["officer"]),
                           json={"to": "documents_requested", "note": "Payslip looks edited",
                                 "partner_note": "Bank statement please",
                                 "documents": ["bank_statement"]})
    assert response.status_code == 200, response.json
    assert {"kind": "bank_statement", "status": "missing"} in response.json["documents"]
    partner_view = client.get(f"/api/v1/referrals/{referral.id}",
                              headers=auth(keys["partner_a"])).json
    assert partner_view["timeline"][-1]["note"] == "Bank statement please"


def test_an_internal_note_with_a_document_request_never_reaches_the_partner(client, world, keys):
    # The attack (issue 10): an officer's internal credit note sent with a document request
    # through the API arrived on the partner's portal, in the notification and in the webhook.
    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "https://partner.example/h")
    referral = factories.submit(world.partner_a)
    db.session.commit()
    secret = "internal only: suspect payslip"
    response = client.post(f"/api/v1/referrals/{referral.id}/transitions",
                           headers=auth(keys["officer"]),
                           json={"to": "documents_requested", "note": secret,
                                 "documents": ["income_proof"]})
    assert response.status_code == 200, response.json
    seen_by_partner = [
        client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys["partner_a"])).text]
    login(client, world.partner_a)
    seen_by_partner.append(client.get(f"/partner/referrals/{referral.id}").text)
    seen_by_partner.append(client.get("/partner/notifications").text)
    seen_by_partner += [str(n.params) for n in db.session.scalars(select(Notification))]
    seen_by_partner += [json.dumps(e.payload) for e in db.session.scalars(select(OutboxEvent))]
    assert len(seen_by_partner) >= 5 and not any("suspect" in text for text in seen_by_partner)
    # The bank keeps it on its own timeline.
    bank_view = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(keys["officer"])).json
    assert bank_view["timeline"][-1]["note"] == secret


def test_partners_may_withdraw_but_not_decide(client, world, keys):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    url = f"/api/v1/referrals/{referral.id}/transitions"
    assert client.post(url, headers=auth(keys["agent_a"]),
                       json={"to": "approved"}).status_code == 403  # never a partner's move
    response = client.post(url, headers=auth(keys["agent_a"]), json={"to": "withdrawn"})
    assert response.status_code == 200 and response.json["status"] == "withdrawn"


# --- agreements --------------------------------------------------------------------------------

def test_agreements_list_is_scoped_and_the_pdf_downloads(client, world, keys):
    mine = client.get("/api/v1/agreements", headers=auth(keys["agent_a"])).json
    assert mine["total"] == 1 and set(mine) == {"items", "page", "per_page", "total"}
    item = mine["items"][0]
    assert {"id", "number", "version", "status", "products", "effective_from",
            "expires_on"} <= set(item)
    assert item["status"] == "active" and "housing_mortgage" in item["products"]
    assert client.get("/api/v1/agreements", headers=auth(keys["partner_b"])).json["total"] == 1
    assert client.get("/api/v1/agreements", headers=auth(keys["admin"])).json["total"] == 2
    assert client.get("/api/v1/agreements", headers=auth(keys["officer"])).json["total"] == 0
    pdf = client.get(f"/api/v1/agreements/{item['id']}/pdf", headers=auth(keys["agent_a"]))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")


# --- idempotency -------------------------------------------------------------------------------

def test_a_replay_returns_the_first_response_and_makes_nothing_new(client, world, keys):
    body = api_body()
    headers = auth(keys["partner_a"], **{"Idempotency-Key": "order-1"})
    first = client.post("/api/v1/referrals", headers=headers, json=body)
    again = client.post("/api/v1/referrals", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert count() == 1
    # The same body with keys in another order is the same request.
    reordered = dict(reversed(list(body.items())))
    assert client.post("/api/v1/referrals", headers=headers,
                       json=reordered).json["id"] == first.json["id"]
    # Keys are per API key: another key with the same Idempotency-Key is another request.
    other = client.post("/api/v1/referrals",
                        headers=auth(keys["partner_b"], **{"Idempotency-Key": "order-1"}),
                        json=body)
    assert other.status_code == 201 and other.json["status"] == "conflict"


def test_a_retry_is_replayed_even_where_the_checks_would_now_refuse_it(client, world, keys):
    # The key is claimed only after the intake is checked; a retry of a finished request must
    # still get its stored answer, not what checking it again would say now (its reference is
    # taken by itself, and the partner's agreement has since ended).
    body = api_body(external_ref="CRM-RETRY")
    headers = auth(keys["partner_a"], **{"Idempotency-Key": "order-retry"})
    first = client.post("/api/v1/referrals", headers=headers, json=body)
    assert first.status_code == 201
    for agreement in db.session.scalars(select(Agreement).where(
            Agreement.org_id == world.org_a.id)):
        agreement.status = "terminated"
    db.session.commit()
    again = client.post("/api/v1/referrals", headers=headers, json=body)
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    # A new request is checked as usual.
    fresh = client.post("/api/v1/referrals", json=api_body(),
                        headers=auth(keys["partner_a"], **{"Idempotency-Key": "order-new"}))
    assert fresh.status_code == 403
    assert count() == 1 and count(IdempotencyRecord) == 1


def test_the_same_key_with_another_body_is_422(client, world, keys):
    headers = auth(keys["partner_a"], **{"Idempotency-Key": "order-2"})
    assert client.post("/api/v1/referrals", headers=headers, json=api_body()).status_code == 201
    response = client.post("/api/v1/referrals", headers=headers, json=api_body())
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in response.json["error"]["fields"]
    # ... and on another endpoint.
    referral_id = db.session.scalar(select(Referral.id))
    response = client.post(f"/api/v1/referrals/{referral_id}/transitions", headers=headers,
                           json={"to": "withdrawn"})
    assert response.status_code == 422
    assert count() == 1


def test_a_failed_request_does_not_use_up_its_key(client, world, keys):
    headers = auth(keys["partner_a"], **{"Idempotency-Key": "order-3"})
    bad = client.post("/api/v1/referrals", headers=headers,
                      json=api_body(**{"buyer.mobile": "1"}))
    assert bad.status_code == 422
    assert count(IdempotencyRecord) == 0
    good = client.post("/api/v1/referrals", headers=headers, json=api_body())
    assert good.status_code == 201
    assert count(IdempotencyRecord) == 1


@pytest.mark.parametrize("value", ["", " ", "x" * 201, "naïve"])
def test_a_malformed_idempotency_key_is_422(client, world, keys, value):
    response = client.post("/api/v1/referrals",
                           headers=auth(keys["partner_a"], **{"Idempotency-Key": value}),
                           json=api_body())
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json["error"]["fields"]


def test_concurrent_duplicates_make_one_referral(app, world, keys):
    body = api_body()
    headers = auth(keys["partner_a"], **{"Idempotency-Key": "race-1"})
    barrier = threading.Barrier(5)
    results = [None] * 5

    def post(i):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            try:
                response = client.post("/api/v1/referrals", headers=headers, json=body)
                results[i] = (response.status_code, response.json)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert count() == 1
    assert all(r is not None for r in results), results
    assert {r[0] for r in results} == {201}, results
    assert len({r[1]["id"] for r in results}) == 1


def test_concurrent_requests_for_one_transition_move_it_once(app, world, keys):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    url = f"/api/v1/referrals/{referral.id}/transitions"  # read here, not in the threads
    headers = auth(keys["officer"], **{"Idempotency-Key": "move-1"})
    barrier = threading.Barrier(4)
    results = []

    def post():
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            try:
                response = client.post(url, headers=headers, json={"to": "under_review"})
                results.append(response.status_code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [200] * 4
    db.session.expire_all()
    assert [e.to_state for e in db.session.get(Referral, referral.id).events] == [
        "submitted", "under_review"]


# --- rate limits -------------------------------------------------------------------------------

def test_each_key_has_its_own_rate_limit_with_retry_after(client, world):
    tight = make_key(world.partner_a, "tight", rate_limit="3 per minute")
    other = make_key(world.partner_a, "other")
    for _ in range(3):
        assert client.get("/api/v1/referrals", headers=auth(tight)).status_code == 200
    limited = client.get("/api/v1/referrals", headers=auth(tight))
    assert limited.status_code == 429
    assert limited.json["error"]["code"] == "rate_limited"
    assert set(limited.json["error"]) == {"code", "message", "fields"}
    assert int(limited.headers["Retry-After"]) >= 1
    # The budget is per key and shared by all endpoints of that key.
    assert client.post("/api/v1/referrals", headers=auth(tight),
                       json=api_body()).status_code == 429
    assert client.get("/api/v1/referrals", headers=auth(other)).status_code == 200


# --- the OpenAPI document and its page ---------------------------------------------------------

def test_the_openapi_document_describes_every_operation(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert operations == {
        ("/referrals", "post"), ("/referrals", "get"), ("/referrals/{referral_id}", "get"),
        ("/referrals/{referral_id}/documents", "post"),
        ("/referrals/{referral_id}/stipulations/{item_id}/documents", "post"),
        ("/referrals/{referral_id}/transitions", "post"),
        ("/agreements", "get"), ("/agreements/{agreement_id}/pdf", "get"),
        ("/scorecards", "get"), ("/scorecard", "get"), ("/portfolio", "get"),
        ("/referrals/{referral_id}/messages", "get"),
        ("/referrals/{referral_id}/messages", "post"),
        ("/referrals/batch", "post"),
        ("/sites", "get"),
    }
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert {"401", "429"} <= set(operation["responses"]), (path, method)
    schemas = doc["components"]["schemas"]
    assert {"ReferralIn", "ReferralOut", "ReferralList", "Error"} <= set(schemas)
    assert set(schemas["ReferralOut"]["properties"]) >= {
        "id", "external_ref", "product", "status", "customer_class", "buyer", "amount",
        "term_months", "submitted_at", "status_changed_at", "clock", "timeline"}


def test_the_documentation_page_uses_only_the_portals_own_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger-ui-bundle.js" in html and "openapi.json" in html
    assert "http://" not in html and "https://" not in html
    asset = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


# --- the partner administrator's key pages and the CLI -----------------------------------------

def test_a_partner_admin_creates_a_key_sees_it_once_and_revokes_it(world, as_user, client):
    as_user(world.partner_a)
    response = client.post("/partner/api-keys", data={"name": "CRM production",
                                                      "user_id": world.agent_a.id})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    row = db.session.scalar(select(ApiKey))
    assert row.name == "CRM production" and row.user_id == world.agent_a.id
    assert row.org_id == world.org_a.id and row.created_by_id == world.partner_a.id
    key = html.split('data-testid="api-key-value">')[1].split("<")[0]
    assert api_keys.hash_key(key) == row.key_hash
    # The key works, as the agent, and its use shows on the page; the key itself never again.
    assert client.get("/api/v1/referrals", headers=auth(key)).status_code == 200
    listing = client.get("/partner/api-keys").get_data(as_text=True)
    assert key not in listing and row.prefix in listing
    db.session.expire_all()
    assert db.session.get(ApiKey, row.id).last_used_at is not None
    # Revoking asks first, then refuses the key at once.
    confirm = client.get(f"/partner/api-keys/{row.id}/revoke")
    assert confirm.status_code == 200 and 'data-testid="confirm-revoke"' in confirm.get_data(
        as_text=True)
    assert client.post(f"/partner/api-keys/{row.id}/revoke").status_code == 302
    assert client.get("/api/v1/referrals", headers=auth(key)).status_code == 401


def test_key_pages_refuse_other_organisations_and_agents(world, as_user, client):
    theirs = make_key(world.partner_b)
    row = db.session.scalar(select(ApiKey))
    as_user(world.partner_a)
    assert row.prefix not in client.get("/partner/api-keys").get_data(as_text=True)
    assert client.get(f"/partner/api-keys/{row.id}/revoke").status_code == 404
    assert client.post(f"/partner/api-keys/{row.id}/revoke").status_code == 404
    # A user of another organisation cannot be chosen.
    response = client.post("/partner/api-keys", data={"name": "x", "user_id": world.partner_b.id})
    assert response.status_code == 422
    assert client.get("/api/v1/referrals", headers=auth(theirs)).status_code == 200
    client.post("/logout")
    as_user(world.agent_a)
    assert client.get("/partner/api-keys").status_code == 403
    assert client.post("/partner/api-keys", data={"name": "x"}).status_code == 403


def test_cli_creates_a_key_for_bank_and_partner_users(app, world):
    runner = app.test_cli_runner()
    for user in (world.officer, world.agent_a):
        result = runner.invoke(args=["api-key", "create", "--user", user.email.upper(),
                                     "--name", "batch"])
        assert result.exit_code == 0, result.output
        key = result.stdout.strip().splitlines()[-1]
        assert key.startswith("ppk_")
        db.session.expire_all()
        row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == api_keys.hash_key(key)))
        assert row.user_id == user.id and row.org_id == user.org_id
    listing = runner.invoke(args=["api-key", "list"])
    assert listing.exit_code == 0 and "ppk_" in listing.output and "batch" in listing.output
    assert runner.invoke(args=["api-key", "create", "--user", "nobody@x.test"]).exit_code != 0
    bad = runner.invoke(args=["api-key", "create", "--user", world.officer.email,
                              "--rate-limit", "lots"])
    assert bad.exit_code != 0
    row_id = db.session.scalar(select(ApiKey.id))
    assert runner.invoke(args=["api-key", "revoke", str(row_id)]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(ApiKey, row_id).revoked_at is not None


def test_cli_worker_once_delivers_what_is_due(app, world):
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output


def test_odd_multipart_field_names_with_an_idempotency_key_are_422_not_500(client, world, keys):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nnull\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"%0A\"\r\n\r\nnull\r\n"
            f"--{boundary}--\r\n").encode()
    response = client.post(f"/api/v1/referrals/{referral.id}/documents", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}",
                           headers=auth(keys["partner_a"], **{"Idempotency-Key": "odd"}))
    assert response.status_code == 422


def test_an_oversize_upload_is_413_naming_the_file(client, world, keys, app, monkeypatch):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 16)
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(keys["partner_a"]),
                           data={"kind": "id_card", "file": (io.BytesIO(pdf_bytes()), "a.pdf")})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large"
    assert "file" in response.json["error"]["fields"]
    assert count(Document) == 0


# --- messages on a referral (issue 13) ---------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_messages_are_read_and_written_by_the_referrals_partner_and_the_bank(client, world,
                                                                             keys, role):
    from models import ReferralMessage

    referral = factories.submit(world.partner_a)
    db.session.commit()
    url = f"/api/v1/referrals/{referral.id}/messages"
    posted = client.post(url, json={"body": f"from {role}"}, headers=auth(keys[role]))
    listed = client.get(url, headers=auth(keys[role]))
    if role == "partner_b":  # another organisation's referral: not found, and nothing written
        assert (posted.status_code, listed.status_code) == (404, 404)
        assert count(ReferralMessage) == 0
        return
    assert posted.status_code == 201, posted.json
    assert posted.json["by"] == ("partner" if role in PARTNERS else "bank")
    assert listed.status_code == 200
    assert [m["body"] for m in listed.json["items"]] == [f"from {role}"]
    assert client.get(url, headers=auth("wrong")).status_code == 401
    missing = client.get("/api/v1/referrals/999999/messages", headers=auth(keys[role]))
    assert missing.status_code == 404
