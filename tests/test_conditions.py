"""Conditions item by item (issue 13): the officer asks for exactly these items, the partner
sees and answers exactly those, file by file, and every status stays true after the decision.

Through the pages with the test client, the real database and the real upload checks."""

from __future__ import annotations

import io
import re

import pytest
from flask_babel import force_locale
from PIL import Image
from sqlalchemy import func, select

from models import Document, Notification, OutboxEvent, Referral, Stipulation
from portal import links
from portal.extensions import db
from portal.labels import DOCUMENT_KINDS
from portal.services import Ctx, notifications, referrals, webhooks
from tests import factories
from tests.integration_helpers import pdf_bytes

PDF = pdf_bytes()


def png_bytes(colour=(20, 120, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _english(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


def text(response) -> str:
    return response.get_data(as_text=True)


def ask(client, referral_id, kinds=(), items="", note="Please send these"):
    version = db.session.get(Referral, referral_id).version
    response = client.post(f"/bank/referrals/{referral_id}/request-documents",
                           data={"version": version, "kinds": list(kinds), "items": items,
                                 "note": note, "internal_note": "bank only"})
    assert response.status_code == 302, text(response)[:600]
    db.session.expire_all()
    return response


def item(referral_id, kind, label=None) -> Stipulation:
    db.session.expire_all()
    return db.session.scalar(select(Stipulation).where(
        Stipulation.referral_id == referral_id, Stipulation.kind == kind,
        Stipulation.label.is_(None) if label is None else Stipulation.label == label))


def send(client, referral_id, item_id, *files, replace=False):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    if replace:
        data["replace"] = "y"
    return client.post(f"/partner/referrals/{referral_id}/conditions/{item_id}/files",
                       data=data, content_type="multipart/form-data")


def kinds_on(page: str) -> list[str]:
    checklist = page.split('data-testid="checklist"')[1].split("</section>")[0]
    return re.findall(r'<li class="list-group-item" data-kind="(\w+)"', checklist)


def review(client, referral_id, item_id, decision, reason="", note=""):
    return client.post(f"/bank/referrals/{referral_id}/conditions/{item_id}/review",
                       data={"decision": decision, "reason": reason, "note": note})


@pytest.fixture
def people(world, app):
    """The officer and partner A's admin, each in their own browser."""
    officer = app.test_client()
    partner = app.test_client()
    for client in (officer, partner):
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    from tests.conftest import login
    login(officer, world.officer)
    login(partner, world.partner_a)
    return officer, partner


# --- asking for exactly these items ------------------------------------------------------------

def test_one_item_asked_is_the_one_item_the_partner_sees_and_is_told(world, people):
    officer, partner = people
    referral = factories.submit(world.agent_a)  # a mortgage: four lines on its checklist
    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "https://crm.a.test/hook")
    db.session.commit()
    assert len(db.session.get(Referral, referral.id).stipulations) == 4

    ask(officer, referral.id, kinds=["income_proof"], note="Last three payslips")

    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    assert kinds_on(page) == ["income_proof"]
    for other in ("Purchase contract", "Down-payment receipt", "ID card"):
        assert other not in page.split('data-testid="checklist"')[1].split("</section>")[0]
    outstanding = page.split('data-testid="outstanding"')[1].split("</div>")[0]
    assert "Proof of income" in outstanding and "Purchase contract" not in outstanding

    # The notice in the portal and its e-mail name that one item.
    note = db.session.scalar(select(Notification).where(
        Notification.user_id == world.agent_a.id, Notification.kind == "documents_requested"))
    view = notifications.render(note)
    assert "Proof of income" in view["text"] and "Purchase contract" not in view["text"]
    mail = notifications.compose_email(note, links.partner_url).get_body(("plain",)).get_content()
    with force_locale("zh_CN"):  # the recipient's language, the portal's default
        wanted, unwanted = (str(DOCUMENT_KINDS[k]) for k in ("income_proof", "purchase_contract"))
    assert wanted in mail and unwanted not in mail
    listed = text(partner.get("/partner/notifications"))
    assert "Proof of income" in listed and "Purchase contract" not in listed
    # ... and so does the webhook.
    event = db.session.scalar(select(OutboxEvent).where(
        OutboxEvent.type == "referral.documents_requested"))
    assert event.payload["documents"] == ["income_proof"]
    assert event.payload["items"] == [{"kind": "income_proof", "label": None,
                                       "note": "Last three payslips"}]
    # The dashboard's list of what waits on the partner, too.
    dashboard = text(partner.get("/partner/"))
    assert "Proof of income" in dashboard and "Purchase contract" not in dashboard


def test_an_item_in_the_officers_words(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, items="Employer's letter on headed paper\n\n",
        note="Confirm the employment")

    letter = item(referral.id, "other", "Employer's letter on headed paper")
    assert letter.requested and letter.status == "missing"
    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    assert kinds_on(page) == ["other"]
    assert "Employer&#39;s letter on headed paper" in page
    note = db.session.scalar(select(Notification).where(
        Notification.kind == "documents_requested"))
    assert "Employer's letter on headed paper" in notifications.render(note)["text"]


def test_a_request_needs_an_item(world, people):
    officer, _partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    response = officer.post(f"/bank/referrals/{referral.id}/request-documents",
                            data={"version": referral.version, "items": "  \n",
                                  "note": "something"})
    assert response.status_code == 422
    assert "Choose at least one document." in text(response)
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "submitted"


# --- several files, one item -------------------------------------------------------------------

def test_several_files_for_one_item_in_one_submit(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["income_proof"])
    income = item(referral.id, "income_proof")

    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    slot = page.split(f'data-item="{income.id}"')[1].split("</li>\n        \n")[0]
    assert re.search(r'<input[^>]*type="file" name="files"[^>]*multiple', slot)
    assert re.search(r'<input[^>]*type="file" name="files"[^>]*capture="environment"', slot)

    response = send(partner, referral.id, income.id, ("may.pdf", PDF),
                    ("june.png", png_bytes()), ("july.pdf", pdf_bytes("july")))
    assert response.status_code == 302
    assert "3 files uploaded for Proof of income" in text(partner.get(response.location))
    income = item(referral.id, "income_proof")
    assert [d.filename for d in income.documents] == ["may.pdf", "june.png", "july.pdf"]
    assert {d.status for d in income.documents} == {"pending"}
    assert income.status == "uploaded"


def test_a_bad_file_among_good_ones_refuses_only_itself(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["bank_statement"])
    statement = item(referral.id, "bank_statement")

    response = send(partner, referral.id, statement.id, ("march.pdf", PDF),
                    ("notes.pdf", b"plain text wearing a PDF name\n"), ("april.png", png_bytes()))
    assert response.status_code == 302
    page = text(partner.get(response.location))
    assert "2 files uploaded for Bank statement" in page
    assert "notes.pdf was not uploaded: Only PDF, JPEG and PNG files are accepted." in page
    assert [d.filename for d in item(referral.id, "bank_statement").documents] == [
        "march.pdf", "april.png"]

    # Every file refused: nothing is written and the item says why.
    response = send(partner, referral.id, statement.id, ("a.pdf", b"%PDF-1.4 not really"),
                    ("b.png", b"\x89PNG\r\n\x1a\n broken"))
    assert response.status_code == 422
    page = text(response)
    slot = page.split(f'data-error-for="files-{statement.id}"')[1].split("</div>")[0]
    assert "a.pdf: This PDF has content after its end." in slot
    assert "b.png: This image is damaged or not really a PNG file." in slot
    assert db.session.scalar(select(func.count(Document.id))) == 2

    # Nothing chosen at all.
    empty = send(partner, referral.id, statement.id)
    assert empty.status_code == 422
    assert "Choose at least one file, or take a photo." in text(empty)


# --- sending back ------------------------------------------------------------------------------

def test_send_back_waits_for_a_file_on_every_item_asked(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["income_proof", "bank_statement"])

    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    assert re.search(r'data-testid="send-back-blocked">Send back to the bank — still missing: '
                     r'Proof of income, Bank statement</button>', page)
    send(partner, referral.id, item(referral.id, "income_proof").id, ("pay.pdf", PDF))

    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    assert "still missing: Bank statement</button>" in page
    version = db.session.get(Referral, referral.id).version
    refused = partner.post(f"/partner/referrals/{referral.id}/resubmit",
                           data={"version": version})
    assert "Upload every requested document" in text(partner.get(refused.location))
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "documents_requested"

    # The product's checklist lines nobody asked for do not hold it back.
    send(partner, referral.id, item(referral.id, "bank_statement").id, ("st.pdf", PDF))
    version = db.session.get(Referral, referral.id).version
    done = partner.post(f"/partner/referrals/{referral.id}/resubmit", data={"version": version})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == "under_review"


# --- review item by item -----------------------------------------------------------------------

def test_reject_then_accept_an_item_with_the_reason_for_the_partner_only(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["income_proof", "bank_statement"])
    income = item(referral.id, "income_proof")
    send(partner, referral.id, income.id, ("p1.pdf", PDF), ("p2.png", png_bytes()))
    send(partner, referral.id, item(referral.id, "bank_statement").id, ("s.pdf", PDF))
    version = db.session.get(Referral, referral.id).version
    partner.post(f"/partner/referrals/{referral.id}/resubmit", data={"version": version})

    bank_page = text(officer.get(f"/bank/referrals/{referral.id}"))
    assert f'data-testid="accept-item-{income.id}">Accept the 2 files' in bank_page

    no_reason = review(officer, referral.id, income.id, "reject", note="kept")
    assert no_reason.status_code == 422
    assert "Say why the item is rejected" in text(no_reason)
    assert item(referral.id, "income_proof").status == "uploaded"

    done = review(officer, referral.id, income.id, "reject",
                  reason="The payslips must show the employer's stamp",
                  note="Suspect the amounts are edited")
    assert done.status_code == 302
    income = item(referral.id, "income_proof")
    assert income.status == "rejected"
    assert {d.status for d in income.documents} == {"rejected"}

    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    reason = page.split('data-testid="item-reason"')[1].split("</div>")[0]
    assert "The payslips must show the employer&#39;s stamp" in reason
    assert "Please upload it again." in reason
    assert "Suspect the amounts" not in page
    # The partner is told, with the reason meant for it and never the internal note.
    told = text(partner.get("/partner/notifications"))
    assert "the bank needs Proof of income again" in told
    assert "The payslips must show the employer&#39;s stamp" in told
    assert "Suspect the amounts" not in told

    # A new upload answers the rejection; the rejected files keep their decision.
    send(partner, referral.id, income.id, ("stamped.pdf", pdf_bytes("stamped")))
    income = item(referral.id, "income_proof")
    assert income.status == "uploaded"
    assert [d.status for d in income.documents] == ["rejected", "rejected", "pending"]

    assert review(officer, referral.id, income.id, "accept").status_code == 302
    income = item(referral.id, "income_proof")
    assert income.status == "accepted"
    assert [d.status for d in income.documents] == ["rejected", "rejected", "accepted"]
    # An accepted item takes no more files, and asks for nothing.
    assert send(partner, referral.id, income.id, ("more.pdf", PDF)).status_code == 302
    assert len(item(referral.id, "income_proof").documents) == 3
    # Nothing waits for review any more: a second decision is refused.
    again = review(officer, referral.id, income.id, "reject", reason="late")
    assert "No file of this item is waiting for review." in text(officer.get(again.location))


# --- statuses after the decision ---------------------------------------------------------------

def test_statuses_stay_true_after_disbursement(world, people):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["income_proof", "purchase_contract"])
    income = item(referral.id, "income_proof")
    send(partner, referral.id, income.id, ("first.pdf", PDF))
    # A better scan replaces the first, which is marked superseded.
    send(partner, referral.id, income.id, ("better.pdf", pdf_bytes("better")), replace=True)
    assert [d.status for d in item(referral.id, "income_proof").documents] == [
        "superseded", "pending"]
    contract = item(referral.id, "purchase_contract")
    send(partner, referral.id, contract.id, ("contract.pdf", PDF))

    ctx = Ctx(user=world.officer)
    for step in ("under_review", "approved", "contract_signed", "disbursed"):
        referrals.transition(ctx, db.session.get(Referral, referral.id), step)
    db.session.commit()

    files = {d.filename: d.status for d in db.session.scalars(select(Document))}
    assert files == {"first.pdf": "superseded", "better.pdf": "not_reviewed",
                     "contract.pdf": "not_reviewed"}
    page = text(partner.get(f"/partner/referrals/{referral.id}"))
    checklist = page.split('data-testid="checklist"')[1].split("</section>")[0]
    assert "Awaiting review" not in checklist
    assert "Not reviewed — decision made" in checklist
    assert "Replaced by a newer upload" in checklist
    assert 'data-item-status="not_reviewed"' in checklist
    assert "Upload for this item" not in page
    bank_page = text(officer.get(f"/bank/referrals/{referral.id}"))
    assert "accept-item-" not in bank_page and "Awaiting review" not in bank_page


# --- whose items -------------------------------------------------------------------------------

def test_another_partner_cannot_upload_to_an_item(world, people, app):
    officer, partner = people
    referral = factories.submit(world.partner_a)
    other = factories.submit(world.partner_a)
    db.session.commit()
    ask(officer, referral.id, kinds=["income_proof"])
    income = item(referral.id, "income_proof")

    from tests.conftest import login
    stranger = app.test_client()
    login(stranger, world.partner_b)
    assert send(stranger, referral.id, income.id, ("x.pdf", PDF)).status_code == 404
    # The item of one referral, sent to another of the same partner: not found either.
    assert send(partner, other.id, income.id, ("x.pdf", PDF)).status_code == 404
    assert review(officer, other.id, income.id, "accept").status_code == 404
    assert db.session.scalar(select(func.count(Document.id))) == 0


# --- the API -----------------------------------------------------------------------------------

def test_the_api_asks_item_by_item_and_takes_several_files(world, client):
    from tests.integration_helpers import auth, make_key
    officer, partner, stranger = (auth(make_key(u)) for u in (world.officer, world.partner_a,
                                                                world.partner_b))
    referral = factories.submit(world.partner_a)
    db.session.commit()
    moved = client.post(f"/api/v1/referrals/{referral.id}/transitions", headers=officer, json={
        "to": "documents_requested", "documents": ["income_proof"],
        "items": ["Letter from the employer"], "partner_note": "Two things, please",
        "note": "bank only"})
    assert moved.status_code == 200, moved.json
    # The bank sees every item, the product's checklist included ...
    assert len(moved.json["stipulations"]) == 5
    # ... the partner exactly the two asked of it; the old `documents` list is unchanged.
    seen = client.get(f"/api/v1/referrals/{referral.id}", headers=partner).json
    assert [(i["kind"], i["label"], i["status"], i["waiting_on_partner"])
            for i in seen["stipulations"]] == [
        ("income_proof", None, "missing", True),
        ("other", "Letter from the employer", "missing", True)]
    assert len(seen["documents"]) == 5 and {"kind", "status"} == set(seen["documents"][0])
    income = seen["stipulations"][0]["id"]

    url = f"/api/v1/referrals/{referral.id}/stipulations/{income}/documents"
    sent = client.post(url, headers=partner, data={"files": [
        (io.BytesIO(PDF), "may.pdf"), (io.BytesIO(b"<html>not a pdf</html>"), "june.pdf"),
        (io.BytesIO(png_bytes()), "july.png")]})
    assert sent.status_code == 201, sent.json
    assert [d["filename"] for d in sent.json["documents"]] == ["may.pdf", "july.png"]
    assert [r["filename"] for r in sent.json["refused"]] == ["june.pdf"]
    seen = client.get(f"/api/v1/referrals/{referral.id}", headers=partner).json
    assert seen["stipulations"][0]["status"] == "uploaded"
    assert [f["filename"] for f in seen["stipulations"][0]["files"]] == ["may.pdf", "july.png"]

    every_one_bad = client.post(url, headers=partner, data={"files": [
        (io.BytesIO(b"nope"), "a.pdf")]})
    assert every_one_bad.status_code == 422
    assert "a.pdf" in every_one_bad.json["error"]["fields"]["files"]
    assert client.post(url, headers=stranger, data={"files": [
        (io.BytesIO(PDF), "x.pdf")]}).status_code == 404
    assert db.session.scalar(select(func.count(Document.id))) == 2


# --- the migration settles what is already there -----------------------------------------------

def test_the_migration_settles_uploads_left_waiting(tmp_path_factory):
    from flask_migrate import upgrade
    from sqlalchemy import MetaData, insert, text, update

    from portal import create_app
    from tests.conftest import _database_url
    from tests.test_migrations import _fill_every_table

    url = _database_url(tmp_path_factory)
    if url.startswith("postgresql"):
        pytest.skip("run on SQLite (a database of its own); the SQL is the same on PostgreSQL")
    old = create_app({"PORTAL_ENV": "testing", "TESTING": True,
                      "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
                      "SQLALCHEMY_DATABASE_URI": url})
    with old.app_context():
        upgrade(revision="0009")
        with db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            _fill_every_table(connection)
            meta = MetaData()
            meta.reflect(connection, only=["document", "stipulation", "referral"])
            doc, stip, ref = (meta.tables[n] for n in ("document", "stipulation", "referral"))
            connection.execute(update(stip).values(kind="income_proof", note="payslips"))
            connection.execute(update(ref).values(status="disbursed"))
            row = dict(connection.execute(doc.select()).mappings().one())
            connection.execute(update(doc).values(kind="income_proof", status="pending"))
            # The officer reviewed a newer payslip; a contract was sent and never looked at.
            connection.execute(insert(doc).values(**{**row, "id": row["id"] + 1,
                                                     "kind": "income_proof",
                                                     "status": "accepted"}))
            connection.execute(insert(doc).values(**{**row, "id": row["id"] + 2,
                                                     "kind": "purchase_contract",
                                                     "status": "pending"}))
            connection.commit()
        upgrade()
        with db.engine.connect() as connection:
            files = connection.execute(text(
                "SELECT kind, status, stipulation_id FROM document ORDER BY id")).all()
            item = connection.execute(text("SELECT id, requested FROM stipulation")).one()
        db.engine.dispose()
    assert [(k, s) for k, s, _ in files] == [("income_proof", "superseded"),
                                            ("income_proof", "accepted"),
                                            ("purchase_contract", "not_reviewed")]
    assert [i for _, _, i in files] == [item.id, item.id, None]
    assert item.requested


# --- in a real browser -------------------------------------------------------------------------

def test_photos_one_after_another_and_files_go_in_one_submit(world, page):
    from tests.test_browser import log_in
    from tests.test_browser_csp import watch

    referral = factories.submit(world.partner_a)
    db.session.commit()
    from portal.services import documents
    documents.request_documents(Ctx(user=world.officer), referral, ["income_proof"], "Payslips")
    db.session.commit()
    income = item(referral.id, "income_proof")

    seen = watch(page)
    log_in(page, world.partner_a)
    page.goto(f"/partner/referrals/{referral.id}")
    slot = page.locator(f'li[data-item="{income.id}"]')
    slot.locator(f"#files-{income.id}").set_input_files([
        {"name": "may.pdf", "mimeType": "application/pdf", "buffer": PDF},
        {"name": "june.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("june")}])
    camera = slot.locator("input[data-camera]")
    assert camera.count() == 1
    camera.first.set_input_files({"name": "page1.png", "mimeType": "image/png",
                                  "buffer": png_bytes()})
    # The camera's input made room for the next photo.
    assert camera.count() == 2
    assert camera.nth(1).get_attribute("capture") == "environment"
    camera.nth(1).set_input_files({"name": "page2.png", "mimeType": "image/png",
                                   "buffer": png_bytes((200, 10, 10))})
    slot.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "4 files uploaded for Proof of income" in page.content()
    assert sorted(d.filename for d in item(referral.id, "income_proof").documents) == [
        "june.pdf", "may.pdf", "page1.png", "page2.png"]
    assert page.evaluate("window.__csp") == [] and seen == []
