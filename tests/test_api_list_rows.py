"""The API's referral list reads its page as plain rows (services/referral_rows.py); each item is
still the referral exactly as its own address gives it, to each caller, with everything a
referral can carry: items asked for with files accepted and rejected, a decision with terms,
a contract and a disbursement, a site, an officer. The partner's answer never holds what the
bank wrote for itself."""

from __future__ import annotations

import io

import pytest

from models import Document
from portal.bank_time import bank_today
from portal.extensions import db
from portal.services import Ctx, assignment, documents, referrals, sites
from tests import factories
from tests.integration_helpers import auth, make_key, pdf_bytes

INTERNAL = "internal-marker"


@pytest.fixture
def everything(world, client):
    officer = Ctx(user=world.officer)
    site = sites.create(Ctx(user=world.manager), world.org_a, {
        "kind": "project", "code": "GARDEN", "name": "Garden <Court>", "quota_amount": "9000000",
        "active": True})
    asked = factories.submit(world.partner_a, site=str(site.id), amount="800000",
                             asset_price="1600000", down_payment="800000")
    referrals.transition(officer, asked, "under_review", note=f"{INTERNAL} call employer")
    documents.request_documents(officer, asked, ["income_proof"], "Three payslips please",
                                internal_note=f"{INTERNAL} payslip odd",
                                items=["Co-borrower's ID"])
    db.session.commit()
    keys = {role: make_key(getattr(world, role), role)
            for role in ("partner_a", "agent_a", "officer")}
    for name in ("first.pdf", "second.pdf"):
        answer = client.post(f"/api/v1/referrals/{asked.id}/documents",
                             headers=auth(keys["partner_a"]),
                             data={"kind": "income_proof",
                                   "file": (io.BytesIO(pdf_bytes(name)), name)})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        first = db.session.get(Document, answer.json["id"])
        if name == "first.pdf":
            documents.review(officer, first, accept=False, reason="Blurry, send again",
                             note=f"{INTERNAL} looks edited")
            db.session.commit()
    decided = factories.submit(world.partner_a, amount="600000")
    referrals.transition(officer, decided, "under_review")
    referrals.transition(officer, decided, "approved", note=f"{INTERNAL} strong file", terms={
        "amount": "500000", "term_months": 120, "rate_percent": "3.45",
        "conditions": "Co-borrower signs\nIncome proof before signing"})
    referrals.transition(officer, decided, "contract_signed", terms={
        "number": "GD-1", "amount": "500000", "date": bank_today()})
    referrals.transition(officer, decided, "disbursed", terms={
        "amount": "480000", "date": bank_today(), "number": "JJ-7"})
    taken = factories.submit(world.partner_a)
    db.session.commit()
    assignment.take(officer, taken)
    factories.submit(world.partner_b)  # another partner's: in the bank's list only
    db.session.commit()
    return keys, (asked, decided, taken)


@pytest.mark.parametrize("role", ["partner_a", "agent_a", "officer"])
@pytest.mark.parametrize("query", ["", "?per_page=2&page=2", "?status=disbursed",
                                   "?org_code=PARTNERA"])
def test_each_listed_referral_is_the_referral_its_address_gives(client, everything, role,
                                                                query):
    keys, made = everything
    listed = client.get(f"/api/v1/referrals{query}", headers=auth(keys[role])).json["items"]
    assert listed, query
    for item in listed:
        one = client.get(f"/api/v1/referrals/{item['id']}", headers=auth(keys[role])).json
        assert item == one
    if query == "":
        shown = {item["id"]: item for item in listed}
        asked, decided, taken = (shown[r.id] for r in made)
        files = [f["status"] for s in asked["stipulations"] for f in s["files"]]
        assert sorted(files) == ["pending", "rejected"]
        assert asked["site"]["name"] == "Garden <Court>"
        assert decided["decision"]["conditions"] == ["Co-borrower signs",
                                                    "Income proof before signing"]
        assert decided["contract"]["number"] == "GD-1"
        assert decided["disbursement"]["number"] == "JJ-7"
        assert ("assigned_to" in taken) is (role == "officer")
        assert len(listed) == (4 if role == "officer" else 3)
    assert (INTERNAL in str(listed)) is (role == "officer")
