"""The partner face through the real app and database: pages, intake, documents, export, users."""

from __future__ import annotations

import csv
import hashlib
import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from models import Document, Referral, User
from portal.extensions import db
from portal.services import Ctx, documents, referrals
from tests import factories
from tests.conftest import login
from tests.integration_helpers import pdf_bytes

PDF = pdf_bytes()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (140, 28, 19)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def client_for(app, user, password=factories.PASSWORD):
    """A separate browser for a second user (the shared client stays logged in as the first)."""
    other = app.test_client()
    other.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(other, user, password)
    return other


def form_data(**overrides) -> dict:
    """The intake as the browser posts it (checkbox 'y'); None drops a field."""
    data = factories.intake(**overrides)
    if data.get("consent") is True:
        data["consent"] = "y"
    return {k: v for k, v in data.items() if v is not None}


def html(response) -> str:
    return response.get_data(as_text=True)


def row_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-referral-id="(\d+)"', page)]


def count_for(page: str, status: str) -> int | None:
    match = re.search(rf'data-count-for="{status}">\s*<div class="card-body">\s*'
                      r'<div class="kpi text-body">(\d+)</div>', page)
    return int(match.group(1)) if match else None


def request_docs(world, referral, kinds=("bank_statement",), note="Add six months of statements"):
    documents.request_documents(Ctx(user=world.officer, ip="127.0.0.1"), referral, list(kinds),
                                note)
    db.session.commit()


def upload(client, referral_id, kind, data, filename):
    return client.post(f"/partner/referrals/{referral_id}/documents",
                       data={"kind": kind, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


# --- dashboard ---------------------------------------------------------------------------------

def test_dashboard_counts_waiting_and_activity(world, as_user):
    first = factories.submit(world.partner_a, buyer_name="Li Lei")
    factories.submit(world.agent_a, buyer_name="Han Meimei")
    waiting = factories.submit(world.partner_a, buyer_name="Wang Fang")
    factories.submit(world.partner_b, buyer_name="Other Org Buyer")
    db.session.commit()
    request_docs(world, waiting, note="Statements for March please")
    referrals.transition(Ctx(user=world.officer), first, "under_review")
    db.session.commit()

    page = html(as_user(world.agent_a).get("/partner/"))
    assert count_for(page, "submitted") == 1
    assert count_for(page, "under_review") == 1
    assert count_for(page, "documents_requested") == 1
    assert count_for(page, "declined") is None
    waiting_block = page.split('data-testid="waiting"')[1].split("</table>")[0]
    assert "Wang Fang" in waiting_block and "Li Lei" not in waiting_block
    assert "Bank statement" in waiting_block and "Statements for March please" in waiting_block
    assert "Other Org Buyer" not in page
    assert 'data-testid="activity"' in page


def test_the_dashboard_lists_the_longest_waiting_and_links_to_the_rest(world, as_user,
                                                                     monkeypatch):
    from blueprints.partner import routes as partner_routes

    monkeypatch.setattr(partner_routes, "WAITING_SHOWN", 2)
    asked = [factories.submit(world.partner_a, buyer_name=f"Buyer {n}") for n in range(3)]
    db.session.commit()
    for referral in asked:
        request_docs(world, referral)
    db.session.commit()

    page = html(as_user(world.agent_a).get("/partner/"))
    waiting_block = page.split('data-testid="waiting"')[1].split("</table>")[0]
    assert "Buyer 0" in waiting_block and "Buyer 1" in waiting_block  # the oldest requests
    assert "Buyer 2" not in waiting_block
    more = page.split('data-testid="waiting-more"')[1].split("</p>")[0]
    assert "The 2 longest waiting of 3." in more
    assert "/partner/referrals?status=documents_requested" in more


def test_the_dashboard_shows_the_latest_request_for_documents(world, as_user):
    referral = factories.submit(world.partner_a, buyer_name="Zhao Lei")
    db.session.commit()
    request_docs(world, referral, note="First: the payslips")
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    request_docs(world, referral, kinds=("income_proof",), note="Second: the tax record")
    waiting_block = html(as_user(world.agent_a).get("/partner/")).split(
        'data-testid="waiting"')[1].split("</table>")[0]
    assert "Second: the tax record" in waiting_block
    assert "First: the payslips" not in waiting_block


def test_dashboard_empty_states(world, as_user):
    page = html(as_user(world.partner_a).get("/partner/"))
    assert page.count('data-testid="empty-state"') == 3
    assert "Nothing is waiting on you." in page


# --- list ----------------------------------------------------------------------------------------

def test_list_search_filter_and_pagination(world, as_user):
    made = [factories.submit(world.partner_a, buyer_name=f"Buyer {n:02d}") for n in range(28)]
    special = factories.submit(world.partner_a, buyer_name="Special Zhao", external_ref="EXT-777")
    consumer = factories.submit(world.partner_a, buyer_name="Consumer Qian",
                                product="consumer_loan", amount="100000", term_months="36")
    factories.submit(world.partner_b, buyer_name="Other Org Buyer")
    db.session.commit()
    referrals.transition(Ctx(user=world.partner_a), made[0], "withdrawn")
    db.session.commit()
    client = as_user(world.partner_a)

    first = html(client.get("/partner/referrals"))
    assert len(row_ids(first)) == 25
    assert "Other Org Buyer" not in first
    assert "page=2" in first
    second = html(client.get("/partner/referrals?page=2"))
    assert len(row_ids(second)) == 5
    assert set(row_ids(first)).isdisjoint(row_ids(second))
    assert len(set(row_ids(first)) | set(row_ids(second))) == 30

    assert row_ids(html(client.get("/partner/referrals?q=special"))) == [special.id]
    assert row_ids(html(client.get("/partner/referrals?q=EXT-777"))) == [special.id]
    assert row_ids(html(client.get(f"/partner/referrals?q={special.id}"))) == [special.id]
    assert row_ids(html(client.get("/partner/referrals?q=99999999999999999999"))) == []
    assert row_ids(html(client.get("/partner/referrals?q=%C2%B2"))) == []  # "²" is no id
    assert row_ids(html(client.get("/partner/referrals?status=withdrawn"))) == [made[0].id]
    assert row_ids(html(client.get("/partner/referrals?product=consumer_loan"))) == [consumer.id]
    both = html(client.get("/partner/referrals?status=submitted&product=consumer_loan&page=1"))
    assert row_ids(both) == [consumer.id]

    nothing = html(client.get("/partner/referrals?q=nobody-by-this-name"))
    assert "No referral matches these filters." in nothing
    # Another organisation's buyer cannot be found by name either.
    assert row_ids(html(client.get("/partner/referrals?q=Other+Org"))) == []


def test_list_empty_state(world, as_user):
    page = html(as_user(world.partner_a).get("/partner/referrals"))
    assert 'data-testid="empty-state"' in page and "No referrals yet" in page


# --- intake --------------------------------------------------------------------------------------

def _count(**where) -> int:
    query = select(func.count(Referral.id))
    for key, value in where.items():
        query = query.where(getattr(Referral, key) == value)
    return db.session.scalar(query)


def test_new_referral_form_renders_every_field(world, as_user):
    page = html(as_user(world.agent_a).get("/partner/referrals/new"))
    for name in ("product", "buyer_name", "national_id", "mobile", "employer", "industry",
                 "monthly_income", "amount", "term_months", "asset_description", "asset_price",
                 "down_payment", "consent", "external_ref"):
        assert f'name="{name}"' in page, name
    assert "Housing mortgage" in page and "Education, science, culture and health" in page
    assert "(property or vehicle products)" in page
    assert "version 2026-01" in page


def test_new_referral_success(world, as_user, app):
    national_id = factories.national_id()
    response = as_user(world.agent_a).post("/partner/referrals/new", data=form_data(
        national_id=national_id, buyer_name="Zhou Jie", external_ref="SR-1001"))
    assert response.status_code == 302
    referral = db.session.scalar(select(Referral).where(Referral.buyer_name == "Zhou Jie"))
    assert referral is not None and referral.org_id == world.org_a.id
    assert referral.status == "submitted" and referral.external_ref == "SR-1001"
    assert referral.submitted_by_id == world.agent_a.id
    assert referral.consent_notice_version == app.config["CONSENT_NOTICE_VERSION"]
    assert response.headers["Location"].endswith(f"/partner/referrals/{referral.id}")
    page = html(as_user(world.agent_a).get(response.headers["Location"]))
    assert f"Referral {referral.id} submitted." in page
    assert national_id not in page and referral.national_id_masked in page


def test_new_referral_field_errors_keep_input(world, as_user):
    response = as_user(world.partner_a).post("/partner/referrals/new", data=form_data(
        buyer_name="王小明", employer="Acme Trading Ltd", mobile="12345", amount="lots",
        term_months="999", external_ref="KEEP-ME-42"))
    assert response.status_code == 422
    page = html(response)
    for name in ("mobile", "amount", "term_months"):
        assert f'data-error-for="{name}"' in page, name
    assert 'data-error-for="buyer_name"' not in page
    assert 'value="王小明"' in page and 'value="Acme Trading Ltd"' in page
    assert 'value="12345"' in page and 'value="lots"' in page and 'value="KEEP-ME-42"' in page
    assert re.search(r'<option selected value="housing_mortgage">|'
                     r'<option value="housing_mortgage" selected>', page)
    assert "Nothing you typed has been lost." in page
    assert _count() == 0


def test_new_referral_without_consent_is_refused(world, as_user):
    response = as_user(world.partner_a).post("/partner/referrals/new",
                                             data=form_data(consent=None, buyer_name="Sun Li"))
    assert response.status_code == 422
    assert "consent to pass their data to the bank is required" in html(response)
    assert 'value="Sun Li"' in html(response)
    assert _count() == 0


def test_new_referral_with_bad_check_digit_is_refused(world, as_user):
    good = factories.national_id()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    response = as_user(world.partner_a).post("/partner/referrals/new",
                                             data=form_data(national_id=bad))
    assert response.status_code == 422
    page = html(response)
    assert 'data-error-for="national_id"' in page and "check digit" in page
    assert _count() == 0


def test_conflict_tells_partner_b_nothing_about_partner_a(world, as_user, app):
    national_id = factories.national_id()
    held = factories.submit(world.partner_a, national_id=national_id, external_ref="A-SECRET-REF")
    db.session.commit()
    b = client_for(app, world.partner_b)
    response = b.post("/partner/referrals/new",
                      data=form_data(national_id=national_id, buyer_name="Same Buyer"))
    assert response.status_code == 302
    mine = db.session.scalar(select(Referral).where(Referral.org_id == world.org_b.id))
    assert mine.status == "conflict"
    pages = [html(b.get(response.headers["Location"])), html(b.get("/partner/")),
             html(b.get("/partner/referrals")), html(b.get("/partner/referrals.csv"))]
    assert ("This buyer is already registered with the bank; a channel manager will review it"
            in pages[0])
    for page in pages:
        for leak in ("Partner A", "PARTNERA", "admin@a.test", "A-SECRET-REF",
                     f"/partner/referrals/{held.id}\"", "another partner"):
            assert leak not in page, leak
    assert "Buyer already registered" in pages[0]


def test_same_org_duplicate_says_already_registered(world, as_user):
    national_id = factories.national_id()
    factories.submit(world.partner_a, national_id=national_id)
    db.session.commit()
    response = as_user(world.agent_a).post("/partner/referrals/new",
                                           data=form_data(national_id=national_id,
                                                          buyer_name="Again Buyer"))
    assert response.status_code == 409
    page = html(response)
    assert "already registered for this product by your organisation" in page
    assert 'value="Again Buyer"' in page
    assert _count(org_id=world.org_a.id) == 1


def test_suspended_org_cannot_submit(world, as_user):
    world.org_a.status = "suspended"
    db.session.commit()
    response = as_user(world.partner_a).post("/partner/referrals/new", data=form_data())
    assert response.status_code == 403
    assert "Only an active partner organisation can submit referrals." in html(response)
    assert _count() == 0


# --- masking -------------------------------------------------------------------------------------

def test_full_id_and_mobile_never_shown(world, as_user):
    national_id, mobile = factories.national_id(), factories.mobile(12345678)
    referral = factories.submit(world.partner_a, national_id=national_id, mobile=mobile)
    db.session.commit()
    client = as_user(world.partner_a)
    urls = ["/partner/", "/partner/referrals", f"/partner/referrals/{referral.id}",
            "/partner/referrals.csv", f"/partner/referrals?q={referral.id}"]
    for url in urls:
        body = client.get(url).get_data(as_text=True)
        assert national_id not in body and mobile not in body, url
    assert referral.national_id_masked in html(client.get(f"/partner/referrals/{referral.id}"))


# --- documents -----------------------------------------------------------------------------------

def test_upload_png_and_pdf_then_download(world, as_user):
    referral = factories.submit(world.agent_a)
    db.session.commit()
    client = as_user(world.agent_a)
    png = png_bytes()
    assert upload(client, referral.id, "id_card", png, "id-front.png").status_code == 302
    assert upload(client, referral.id, "income_proof", PDF, "salary.pdf").status_code == 302
    docs = db.session.scalars(select(Document).order_by(Document.id)).all()
    assert [(d.kind, d.content_type, d.filename) for d in docs] == [
        ("id_card", "image/png", "id-front.png"), ("income_proof", "application/pdf", "salary.pdf")]
    kinds = {s.kind: s.status for s in db.session.get(Referral, referral.id).stipulations}
    assert kinds["id_card"] == "uploaded" and kinds["income_proof"] == "uploaded"

    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert "id-front.png" in page and "salary.pdf" in page

    response = client.get(f"/partner/referrals/{referral.id}/documents/{docs[0].id}")
    assert response.status_code == 200
    # An image is stored drawn again (nothing riding along): the same pixels, its own hash.
    assert hashlib.sha256(response.data).hexdigest() == docs[0].sha256
    with Image.open(io.BytesIO(response.data)) as stored, Image.open(io.BytesIO(png)) as sent:
        assert stored.tobytes() == sent.tobytes()
    assert response.mimetype == "image/png"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "id-front.png" in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]
    # The partner admin of the same organisation may download it too.
    other = client_for(client.application, world.partner_a)
    assert other.get(f"/partner/referrals/{referral.id}/documents/{docs[1].id}").data == PDF


def test_upload_refuses_text_named_pdf(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    response = upload(as_user(world.partner_a), referral.id, "id_card",
                      b"just some text, honestly a PDF\n", "scan.pdf")
    assert response.status_code == 422
    page = html(response)
    assert "Only PDF, JPEG and PNG files are accepted." in page
    assert 'data-error-for="file"' in page
    assert db.session.scalar(select(func.count(Document.id))) == 0


def test_upload_refuses_oversize_file(world, as_user, app):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    saved = app.config["UPLOAD_MAX_BYTES"]
    app.config["UPLOAD_MAX_BYTES"] = 64
    try:
        response = upload(as_user(world.partner_a), referral.id, "id_card", PDF, "big.pdf")
    finally:
        app.config["UPLOAD_MAX_BYTES"] = saved
    assert response.status_code == 422
    assert "The file is larger than" in html(response)
    assert db.session.scalar(select(func.count(Document.id))) == 0


def test_upload_needs_a_kind_and_a_file(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.partner_a)
    response = client.post(f"/partner/referrals/{referral.id}/documents", data={"kind": ""},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    page = html(response)
    assert 'data-error-for="kind"' in page and 'data-error-for="file"' in page


def test_upload_to_closed_referral_is_refused(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    referrals.transition(Ctx(user=world.partner_a), referral, "withdrawn")
    db.session.commit()
    client = as_user(world.partner_a)
    assert "Upload a document" not in html(client.get(f"/partner/referrals/{referral.id}"))
    response = upload(client, referral.id, "id_card", PDF, "late.pdf")
    assert response.status_code == 302
    assert "This referral is closed" in html(client.get(response.headers["Location"]))
    assert db.session.scalar(select(func.count(Document.id))) == 0


def test_document_of_another_referral_is_not_found(world, as_user):
    one = factories.submit(world.partner_a)
    two = factories.submit(world.partner_a)
    db.session.commit()
    client = as_user(world.partner_a)
    assert upload(client, two.id, "id_card", PDF, "two.pdf").status_code == 302
    doc = db.session.scalar(select(Document))
    assert client.get(f"/partner/referrals/{one.id}/documents/{doc.id}").status_code == 404
    assert client.get(f"/partner/referrals/{two.id}/documents/{doc.id + 99}").status_code == 404


# --- resubmit and withdraw -----------------------------------------------------------------------

def test_resubmit_after_documents_requested(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    request_docs(world, referral, note="Please add six months of bank statements")
    client = as_user(world.partner_a)
    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert "Please add six months of bank statements" in page
    assert "Waiting on you since" in page
    # The button is there, but disabled while the requested item has no file, and says what is
    # missing: the one item asked for, not the product's checklist.
    assert re.search(r'<button type="button" class="btn btn-success" disabled[^>]*>'
                     r'Send back to the bank — still missing: Bank statement</button>', page)
    outstanding = page.split('data-testid="outstanding"')[1].split("</div>")[0]
    assert "Bank statement" in outstanding and "ID card" not in outstanding
    assert f"/partner/referrals/{referral.id}/resubmit" not in page

    # Not yet: the checklist is still open; nothing changes and the page says why.
    version = db.session.get(Referral, referral.id).version
    response = client.post(f"/partner/referrals/{referral.id}/resubmit",
                           data={"version": version})
    assert response.status_code == 302
    assert "Upload every requested document" in html(client.get(response.headers["Location"]))
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "documents_requested"

    assert upload(client, referral.id, "bank_statement", PDF, "bank_statement.pdf"
                  ).status_code == 302

    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert f'action="/partner/referrals/{referral.id}/resubmit"' in page
    assert 'data-testid="outstanding"' not in page

    # A stale page (an old version) is refused without changing anything.
    stale = client.post(f"/partner/referrals/{referral.id}/resubmit",
                        data={"version": version - 1})
    assert "Someone else changed this referral" in html(client.get(stale.headers["Location"]))
    db.session.expire_all()
    current = db.session.get(Referral, referral.id)
    assert current.status == "documents_requested"

    response = client.post(f"/partner/referrals/{referral.id}/resubmit",
                           data={"version": current.version})
    assert response.status_code == 302
    db.session.expire_all()
    current = db.session.get(Referral, referral.id)
    assert current.status == "under_review" and current.clock == "bank"
    assert current.events[-1].actor_id == world.partner_a.id
    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert "Sent back to the bank." in page
    assert "Documents provided" not in page


def test_withdraw(world, as_user):
    referral = factories.submit(world.agent_a)
    db.session.commit()
    client = as_user(world.agent_a)
    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert 'data-confirm="Withdraw this referral? This cannot be undone."' in page
    response = client.post(f"/partner/referrals/{referral.id}/withdraw",
                           data={"version": referral.version})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "withdrawn"
    page = html(client.get(f"/partner/referrals/{referral.id}"))
    assert "The referral has been withdrawn." in page
    assert "/withdraw" not in page
    again = client.post(f"/partner/referrals/{referral.id}/withdraw")
    assert again.status_code == 302
    assert "cannot move to" in html(client.get(again.headers["Location"]))


def test_timeline_shows_partner_safe_facts_only(world, as_user):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    officer = Ctx(user=world.officer)
    referrals.transition(officer, referral, "under_review", note="internal: call the employer")
    referrals.transition(officer, referral, "declined", note="internal: employer says fired",
                         partner_note="You may refer the buyer again next year.",
                         reason_code="income_insufficient")
    db.session.commit()
    page = html(as_user(world.agent_a).get(f"/partner/referrals/{referral.id}"))
    timeline = page.split('data-testid="timeline"')[1].split("</ul>")[0]
    assert "Income insufficient" in timeline
    assert "You may refer the buyer again next year." in timeline
    assert "Under review" in timeline and "Declined" in timeline
    assert "internal:" not in page
    # Who made each move is not said; the officer is named once, as the partner's contact at
    # the bank beside the messages (issue 13), and nowhere else.
    contacts = page.split('data-testid="bank-contacts"')[1].split("</dl>")[0]
    assert world.officer.name in contacts
    rest = page.replace(contacts, "")
    assert world.officer.email not in rest and world.officer.name not in rest
    assert "Your organisation" in timeline and "Bank" in timeline


# --- CSV -----------------------------------------------------------------------------------------

def test_csv_export(world, as_user):
    national_id = factories.national_id()
    formula = factories.submit(world.partner_a, national_id=national_id,
                               buyer_name='=HYPERLINK("http://evil.example","x")',
                               external_ref="+SUM(A1)")
    plain = factories.submit(world.partner_a, buyer_name="Plain Buyer", external_ref="-3",
                             product="consumer_loan", amount="100000", term_months="36")
    factories.submit(world.partner_b, buyer_name="Other Org Buyer")
    db.session.commit()
    response = as_user(world.partner_a).get("/partner/referrals.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.data
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert national_id not in text and "Other Org Buyer" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0].keys()) == [
        "id", "external_ref", "product", "buyer_name", "national_id_masked", "mobile_masked",
        "amount", "term_months", "status", "submitted_at", "status_changed_at"]
    by_id = {int(r["id"]): r for r in rows}
    assert set(by_id) == {formula.id, plain.id}
    row = by_id[formula.id]
    assert row["buyer_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["external_ref"] == "'+SUM(A1)"
    assert row["national_id_masked"] == formula.national_id_masked
    assert row["mobile_masked"] == formula.mobile_masked
    assert row["product"] == "housing_mortgage" and row["status"] == "submitted"
    assert row["amount"] == "700000.00" and row["term_months"] == "240"
    assert row["submitted_at"].startswith(formula.submitted_at.date().isoformat())
    assert "T" in row["status_changed_at"]
    assert by_id[plain.id]["external_ref"] == "'-3"

    filtered = as_user(world.partner_a).get("/partner/referrals.csv?product=consumer_loan")
    rows = list(csv.DictReader(io.StringIO(filtered.data.decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [plain.id]
    search = as_user(world.partner_a).get("/partner/referrals.csv?q=Plain")
    assert len(list(csv.DictReader(io.StringIO(search.data.decode("utf-8-sig"))))) == 1


# --- another organisation ------------------------------------------------------------------------

def _a_objects(world, client_a):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    assert upload(client_a, referral.id, "id_card", PDF, "a.pdf").status_code == 302
    doc = db.session.scalar(select(Document))
    return referral, doc


A_URLS = [
    ("get", "/partner/referrals/{r}"),
    ("post", "/partner/referrals/{r}/documents"),
    ("post", "/partner/referrals/{r}/resubmit"),
    ("post", "/partner/referrals/{r}/withdraw"),
    ("get", "/partner/referrals/{r}/documents/{d}"),
    ("post", "/partner/users/{u}/deactivate"),
    ("post", "/partner/users/{u}/activate"),
    ("post", "/partner/users/{u}/reset-password"),
]


@pytest.mark.parametrize(("method", "url"), A_URLS)
def test_partner_b_gets_404_on_partner_a_objects(world, as_user, app, method, url):
    client_a = as_user(world.partner_a)
    referral, doc = _a_objects(world, client_a)
    b = client_for(app, world.partner_b)
    target = url.format(r=referral.id, d=doc.id, u=world.agent_a.id)
    if "documents" in url and method == "post":
        response = b.post(target, data={"kind": "id_card", "file": (io.BytesIO(PDF), "b.pdf")},
                          content_type="multipart/form-data")
    else:
        response = getattr(b, method)(target, data={"version": referral.version}
                                      if method == "post" else None)
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "submitted"
    assert db.session.scalar(select(func.count(Document.id))) == 1
    assert db.session.get(User, world.agent_a.id).active is True
    assert "Partner A" not in html(response)


def test_partner_b_sees_none_of_partner_a_in_lists(world, app):
    factories.submit(world.partner_a, buyer_name="Alpha Only")
    db.session.commit()
    b = client_for(app, world.partner_b)
    for url in ("/partner/", "/partner/referrals", "/partner/referrals.csv", "/partner/users"):
        body = b.get(url).get_data(as_text=True)
        assert "Alpha Only" not in body and "agent@a.test" not in body, url


# --- users ---------------------------------------------------------------------------------------

def test_partner_admin_manages_users(world, as_user, app):
    client = as_user(world.partner_a)
    page = html(client.get("/partner/users"))
    assert "agent@a.test" in page and "admin@a.test" in page and "admin@b.test" not in page

    response = client.post("/partner/users", data={"email": "New.Agent@A.test",
                                                   "name": "New Agent", "role": "partner_agent"})
    assert response.status_code == 302
    page = html(client.get("/partner/users"))
    assert "User new.agent@a.test created" in page and "one-time password" in page
    assert 'data-testid="one-time-password"' not in page  # no password is shown to anyone
    created = db.session.scalar(select(User).where(User.email == "new.agent@a.test"))
    assert created.org_id == world.org_a.id and created.role == "partner_agent"

    response = client.post(f"/partner/users/{created.id}/deactivate")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, created.id).active is False
    assert "is deactivated" in html(client.get("/partner/users"))
    response = client.post(f"/partner/users/{created.id}/activate")
    db.session.expire_all()
    assert db.session.get(User, created.id).active is True

    response = client.post(f"/partner/users/{world.agent_a.id}/reset-password")
    assert response.status_code == 302  # without mail: refused, with the way to get one
    assert "users reset-password --email agent@a.test" in html(client.get("/partner/users"))
    assert client_for(app, world.agent_a).get("/partner/").status_code == 200


def test_partner_admin_user_form_errors(world, as_user):
    client = as_user(world.partner_a)
    agent = {"role": "partner_agent"}
    response = client.post("/partner/users", data={"email": "not-an-email", **agent})
    assert response.status_code == 422
    assert 'data-error-for="email"' in html(response)
    response = client.post("/partner/users", data={"email": "agent@a.test", **agent})
    assert response.status_code == 422 and "already exists" in html(response)
    response = client.post("/partner/users", data={"email": "boss@a.test", "role": "admin"})
    assert response.status_code == 422
    assert db.session.scalar(select(User).where(User.email == "boss@a.test")) is None
    response = client.post(f"/partner/users/{world.partner_a.id}/deactivate")
    assert response.status_code == 302
    assert "cannot deactivate your own account" in html(client.get("/partner/users"))
    db.session.expire_all()
    assert db.session.get(User, world.partner_a.id).active is True


def test_agent_cannot_manage_users(world, as_user):
    client = as_user(world.agent_a)
    assert client.get("/partner/users").status_code == 403
    assert client.post("/partner/users", data={"email": "x@a.test",
                                               "role": "partner_agent"}).status_code == 403
    assert client.post(f"/partner/users/{world.partner_a.id}/deactivate").status_code == 403
    assert client.post(f"/partner/users/{world.partner_a.id}/reset-password").status_code == 403
    assert db.session.scalar(select(User).where(User.email == "x@a.test")) is None


def test_pages_render_in_chinese(world, app):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    zh = client_for(app, world.partner_a)
    zh.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN,zh;q=0.9"
    assert upload(zh, referral.id, "id_card", png_bytes(), "身份证 正面.png").status_code == 302
    doc = db.session.scalar(select(Document))
    for url in ("/partner/", "/partner/referrals", "/partner/referrals/new",
                f"/partner/referrals/{referral.id}", "/partner/users"):
        response = zh.get(url)
        assert response.status_code == 200, url
        assert '<html lang="zh-CN">' in html(response), url
    assert "个人住房贷款" in html(zh.get(f"/partner/referrals/{referral.id}"))
    download = zh.get(f"/partner/referrals/{referral.id}/documents/{doc.id}")
    assert download.status_code == 200
    assert "filename*=UTF-8''" in download.headers["Content-Disposition"]


# --- who may open the partner face at all --------------------------------------------------------

@pytest.mark.parametrize("url", ["/partner/", "/partner/referrals", "/partner/referrals/new",
                                 "/partner/referrals.csv", "/partner/users"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["officer", "manager", "admin"])
def test_bank_staff_get_403_on_partner_pages(world, app, role):
    staff = client_for(app, getattr(world, role))
    for url in ("/partner/", "/partner/referrals", "/partner/referrals/new", "/partner/users"):
        assert staff.get(url).status_code == 403, url
