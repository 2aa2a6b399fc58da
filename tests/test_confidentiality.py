"""Nothing internal reaches a partner (issue 10, point 1), written as the careless insider and the
curious partner.

Bank staff write a unique marker into every INTERNAL column (models declare them with
`info=INTERNAL_TEXT`) through the web pages, and into every transition note the API takes, with a
partner-meant marker beside it in the partner's fields. Then, as the partner's administrator and
as its agent, the test crawls everything the partner can reach: every page linked from the
dashboard (following hrefs within /partner, downloading every file, PDF and CSV), every API GET
the OpenAPI document lists with the partner's key, every notification in the portal and by
e-mail (through an SMTP sink), and every webhook payload queued for the partner's endpoint. No
internal marker may appear; every partner marker must (so the crawl is shown to reach them).
"""

from __future__ import annotations

import io
import re
import subprocess
import uuid
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import func, select

from models import (
    AgreementTemplate,
    Dispute,
    Document,
    FollowUp,
    Notification,
    OutboxEvent,
    Referral,
    RevealRequest,
)
from models.base import audience
from portal import links, worker
from portal.extensions import db
from portal.services import Ctx, imports, notifications, pii, referrals, webhooks
from tests import factories, test_imports
from tests.conftest import login
from tests.integration_helpers import auth, make_key, pdf_bytes
from tests.test_notifications import SmtpSink

TOKEN = uuid.uuid4().hex[:10]
INTERNAL_PREFIX = f"ZZI{TOKEN}"
PARTNER_PREFIX = f"ZZP{TOKEN}"
MAX_PAGES = 600


def internal(where: str) -> str:
    return f"{INTERNAL_PREFIX}-{where}"


def partner(where: str) -> str:
    return f"{PARTNER_PREFIX}-{where}"


def internal_columns() -> set[str]:
    return {f"{table.name}.{column.name}" for table in db.metadata.sorted_tables
            for column in table.columns if audience(column) == "internal"}


# --- writing, as bank staff ---------------------------------------------------------------------

class _Forms(HTMLParser):
    """The fields of each form on a page, with the values the page gives them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._textarea = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif not self.forms:
            return
        fields = self.forms[-1]["fields"] if self.forms else {}
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    fields.setdefault(name, []).append(a.get("value", "y"))
            elif kind not in ("submit", "button", "file"):
                fields[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            fields[name] = ""
        elif tag == "select" and name:
            self._select = name
            fields.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            fields[self._select] = a.get("value", "")

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def post_form(client, page: str, action: str, **values):
    """Open `page`, take the form that posts to `action` with what the page filled in, change
    `values`, and send it: what a person at that page does."""
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    parser = _Forms()
    parser.feed(response.get_data(as_text=True))
    # A form without an action posts to its own page.
    form = next(f for f in parser.forms if urlsplit(f["action"] or page).path == action)
    data = {**form["fields"], **values}
    sent = client.post(form["action"] or page, data=data)
    assert sent.status_code in (200, 302), (action, sent.status_code,
                                            sent.get_data(as_text=True)[:800])
    return sent


def _client(app, user):
    client = app.test_client()
    login(client, user)
    return client


def _api(client, key, referral_id, **body):
    response = client.post(f"/api/v1/referrals/{referral_id}/transitions", json=body,
                           headers=auth(key))
    assert response.status_code == 200, response.json
    return response


def _version(referral_id: int) -> int:
    db.session.expire_all()
    return db.session.get(Referral, referral_id).version


def write_everything(app, world, monkeypatch) -> None:
    """Every internal field written through the web pages, and the API's transition notes."""
    officer, manager, admin = (_client(app, u) for u in (world.officer, world.manager,
                                                         world.admin))
    partner_web = _client(app, world.partner_a)
    taken = [pii.decrypt(factories.submit(world.partner_b, national_id=factories.national_id(
        800 + n)).national_id_enc) for n in range(6)]
    db.session.commit()

    # A referral worked through the web: review, a document request, a rejected upload, a reveal.
    r1 = factories.submit(world.partner_a, external_ref="CRAWL-1")
    db.session.commit()
    page = f"/bank/referrals/{r1.id}"
    post_form(officer, page, f"/bank/referrals/{r1.id}/transition", to="under_review",
              note=internal("web-start-review"), partner_note=partner("web-start-review"))
    post_form(officer, page, f"/bank/referrals/{r1.id}/request-documents",
              kinds="bank_statement", note=partner("web-request"),
              internal_note=internal("web-request"))
    upload = partner_web.post(f"/partner/referrals/{r1.id}/documents", data={
        "kind": "bank_statement", "file": (io.BytesIO(pdf_bytes()), "statement.pdf")},
        content_type="multipart/form-data")
    assert upload.status_code == 302
    document = db.session.scalar(select(Document).where(Document.referral_id == r1.id))
    post_form(officer, page,
              f"/bank/referrals/{r1.id}/conditions/{document.stipulation_id}/review",
              decision="reject", reason=partner("web-reject"), note=internal("web-reject"))
    # A message to the partner on the thread, beside the internal notes of the same page.
    post_form(officer, page, f"/bank/referrals/{r1.id}/messages", body=partner("web-message"))
    shown = officer.post(f"/bank/referrals/{r1.id}/reveal", data={
        "reason_code": "other", "reason_text": internal("web-reveal")})
    assert shown.status_code == 200

    # A decline, and the buyer followed up in the pool.
    r2 = factories.submit(world.partner_a, external_ref="CRAWL-2")
    db.session.commit()
    post_form(officer, f"/bank/referrals/{r2.id}", f"/bank/referrals/{r2.id}/transition",
              to="declined", reason_code="income_insufficient", note=internal("web-decline"),
              partner_note=partner("web-decline"))
    # An approval with terms (issue 13): its condition is written for the partner, the note not.
    approved = factories.submit(world.partner_a, external_ref="CRAWL-TERMS")
    referrals.transition(Ctx(user=world.officer), approved, "under_review")
    db.session.commit()
    post_form(officer, f"/bank/referrals/{approved.id}",
              f"/bank/referrals/{approved.id}/transition", to="approved", amount="600000",
              term_months="240", rate_percent="3.85", conditions=partner("web-condition"),
              note=internal("web-approve"))
    assert db.session.get(Referral, approved.id).status == "approved"
    manager.post("/bank/followups", data={"referral_id": r2.id,
                                          "note": internal("web-followup-add")})
    entry = db.session.scalar(select(FollowUp).where(FollowUp.referral_id == r2.id))
    post_form(manager, f"/bank/followups/{entry.id}", f"/bank/followups/{entry.id}/notes",
              kind="call", body=internal("web-followup-note"))
    post_form(manager, f"/bank/followups/{entry.id}", f"/bank/followups/{entry.id}/close",
              outcome="not_interested", note=internal("web-followup-close"))
    post_form(manager, "/bank/contacts", "/bank/contacts", org_id=str(world.org_a.id),
              kind="visit", summary=internal("web-contact"))

    # Partner A challenges buyers partner B registered: one rejected, one granted.
    for n, decision in ((0, "reject"), (1, "grant")):
        challenger = factories.submit(world.partner_a, national_id=taken[n])
        db.session.commit()
        assert challenger.status == "conflict"
        post_form(manager, f"/bank/referrals/{challenger.id}",
                  f"/bank/referrals/{challenger.id}/resolve", decision=decision,
                  reason=internal(f"web-resolve-{decision}"), confirm="y")

    # A second agreement drafted with partner-meant terms, issued, then terminated.
    drafted = post_form(manager, f"/bank/agreements/new?org_id={world.org_a.id}",
                        "/bank/agreements/new", products=["housing_mortgage"],
                        stage_guarantee=partner("web-stage-guarantee"),
                        onsite_staff=partner("web-onsite-staff"))
    agreement_page = drafted.headers["Location"]
    agreement_id = int(re.search(r"/agreements/(\d+)", agreement_page).group(1))
    post_form(manager, agreement_page, f"/bank/agreements/{agreement_id}/issue")
    post_form(manager, agreement_page, f"/bank/agreements/{agreement_id}/terminate",
              reason=internal("web-terminate"), notice=partner("web-terminate-notice"),
              confirm="y")
    template = db.session.scalar(select(AgreementTemplate).order_by(AgreementTemplate.id))
    post_form(admin, f"/bank/agreement-templates/{template.id}/edit",
              f"/bank/agreement-templates/{template.id}/edit", note=internal("web-template"))
    post_form(admin, "/admin/scoring", "/admin/scoring", note=internal("web-weights"))
    # A partner's dispute of a figure, answered with a note for the partner and one for the bank.
    partner_web.post("/partner/disputes", data={"subject": "kpi:approval_rate",
                                                "note": partner("web-dispute")})
    dispute = db.session.scalar(select(Dispute))
    post_form(manager, f"/bank/disputes/{dispute.id}", f"/bank/disputes/{dispute.id}/answer",
              answer=partner("web-dispute-answer"), internal_note=internal("web-dispute-answer"))
    # An annual review (年审) with the bank's own note.
    post_form(manager, f"/bank/partners/{world.org_a.id}/annual-review",
              f"/bank/partners/{world.org_a.id}/annual-review", outcome="passed",
              note=internal("web-annual-review"))
    # A bank customer referred to partner A, with a note for it and one for the bank; A
    # accepts and reports how it went.
    made = post_form(manager, "/bank/leads/new", "/bank/leads/new", org_id=str(world.org_a.id),
                     customer_name="Crawl Customer", mobile="13812345678", need="other",
                     need_detail=partner("web-lead"), internal_note=internal("web-lead"),
                     consent="y", consent_method="signed_form", consent_at="2026-01-05T10:00")
    lead_id = int(re.search(r"/leads/(\d+)", made.headers["Location"]).group(1))
    partner_web.post(f"/partner/leads/{lead_id}/accept")
    partner_web.post(f"/partner/leads/{lead_id}/outcome",
                     data={"outcome": "contacted", "note": partner("web-lead-outcome")})
    # A history import whose rejected row names an internal marker (its reason repeats it).
    imports.import_referrals(Ctx(user=world.admin), test_imports.csv_bytes(test_imports.row(
        ref="CRAWL-IMPORT", history=f"{internal('import')}@2026-03-02T10:00:00+08:00")))

    # An officer's saved queue filter, named with a marker.
    officer.post("/bank/queue/filters?view=mine", data={"name": internal("web-filter")})

    # Over the reveal limit: a request with its reason, refused by a manager with a note.
    monkeypatch.setitem(app.config, "REVEAL_LIMIT_PER_HOUR", 1)
    officer.post(f"/bank/referrals/{r2.id}/reveal-request", data={
        "reason_code": "other", "reason_text": internal("web-reveal-request")})
    request = db.session.scalar(select(RevealRequest))
    manager.post(f"/bank/reveal-requests/{request.id}/decide", data={
        "decision": "refuse", "note": internal("web-reveal-refusal")})

    # The API: every move an officer makes with a note, with and without a partner note.
    officer_key, manager_key = make_key(world.officer), make_key(world.manager)
    api = app.test_client()
    r5 = factories.submit(world.partner_a, external_ref="CRAWL-5")
    r6 = factories.submit(world.partner_a, external_ref="CRAWL-6")
    r7 = factories.submit(world.partner_a, external_ref="CRAWL-7")
    r8 = factories.submit(world.partner_a, external_ref="CRAWL-8")
    api_conflict = factories.submit(world.partner_a, national_id=taken[2])
    db.session.commit()
    _api(api, officer_key, r5.id, to="under_review", note=internal("api-start-review"),
         partner_note=partner("api-start-review"))
    _api(api, officer_key, r5.id, to="documents_requested", documents=["income_proof"],
         note=internal("api-request"), partner_note=partner("api-request"))
    # The reported leak: a document request with the bank's note only.
    _api(api, officer_key, r6.id, to="documents_requested", documents=["id_card"],
         note=internal("api-request-note-only"))
    for step in ("under_review", "approved", "contract_signed", "disbursed"):
        _api(api, officer_key, r7.id, to=step, note=internal(f"api-{step}"),
             partner_note=partner(f"api-{step}"))
    _api(api, officer_key, r8.id, to="declined", reason_code="credit_policy",
         note=internal("api-decline"))
    _api(api, manager_key, api_conflict.id, to="rejected_duplicate",
         note=internal("api-conflict"), partner_note=partner("api-conflict"))

    # Last, as it holds the rest of the day's submissions: partner A probes, is held, and the
    # manager releases one submission and refuses another.
    for n in (3, 4, 5):
        probe = factories.submit(world.partner_a, national_id=taken[n])
        referrals.transition(Ctx(user=world.partner_a), probe, "withdrawn")
    held = [factories.submit(world.partner_a, external_ref=f"CRAWL-HELD-{n}") for n in (1, 2)]
    db.session.commit()
    assert {h.status for h in held} == {"held"}
    for referral, decision in zip(held, ("release", "refuse"), strict=True):
        manager.post(f"/bank/referrals/{referral.id}/held", data={
            "decision": decision, "reason": internal(f"web-held-{decision}"),
            "version": _version(referral.id)})
    db.session.expire_all()
    assert [db.session.get(Referral, h.id).status for h in held] == ["submitted", "refused"]


def assert_every_internal_column_was_written() -> None:
    written = set()
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if audience(column) == "internal" and db.session.scalar(
                    select(func.count()).select_from(table).where(
                        column.contains(INTERNAL_PREFIX))):
                written.add(f"{table.name}.{column.name}")
    assert written == internal_columns(), f"not written: {internal_columns() - written}"


# --- reading, as the partner --------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _text_of(response) -> str:
    kind = response.headers.get("Content-Type", "")
    data = response.get_data()
    if kind.startswith("application/pdf"):
        result = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=data,
                                capture_output=True, check=True)
        return result.stdout.decode() + data.decode("latin-1")
    return data.decode("utf-8", "replace")


def crawl_pages(client) -> dict[str, str]:
    """Every page, file and export reachable from the partner's dashboard, by following links."""
    seen: dict[str, str] = {}
    queue = deque(["/partner/"])
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        assert len(seen) < MAX_PAGES, "the crawl does not end"
        response = client.get(url)
        seen[url] = _text_of(response)
        assert response.status_code in (200, 302), (url, response.status_code)
        found = ([response.headers["Location"]] if response.status_code == 302 else [])
        if response.mimetype == "text/html":
            parser = _Links()
            parser.feed(seen[url])
            found += parser.hrefs
        for href in found:
            parts = urlsplit(urljoin(url, href))
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/partner"):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target not in seen:
                queue.append(target)
    return seen


def crawl_api(client, key) -> dict[str, str]:
    """Every GET the OpenAPI document lists, with every id the lists give."""
    document = client.get("/api/v1/openapi.json").json
    paths = [p for p, ops in document["paths"].items() if "get" in ops]
    seen: dict[str, str] = {}
    ids: dict[str, list[int]] = {}

    def fetch(url):
        response = client.get(url, headers=auth(key))
        seen[url] = _text_of(response)
        return response

    for path in sorted(p for p in paths if "{" not in p):
        url = "/api/v1" + path if not path.startswith("/api/") else path
        response = fetch(url + "?per_page=100")
        if response.status_code == 200 and isinstance(response.json, dict) \
                and "items" in response.json:
            ids[path] = [item["id"] for item in response.json["items"] if "id" in item]
            assert response.json["total"] <= 100
    for path in sorted(p for p in paths if "{" in p):
        collection = path.split("/{")[0]
        assert collection in ids, f"no list gives the ids of {path}"
        for item_id in ids[collection]:
            fetch(("/api/v1" if not path.startswith("/api/") else "") +
                  re.sub(r"\{[^}]+\}", str(item_id), path))
    return seen


def notices(world, mail) -> dict[str, str]:
    """Every notification of the partner's users, as the portal and the e-mail say it."""
    out = {}
    users = [world.partner_a, world.agent_a]
    for note in db.session.scalars(select(Notification).where(
            Notification.user_id.in_([u.id for u in users]))):
        view = notifications.render(note)
        out[f"notification {note.id}"] = f"{view['title']}\n{view['text']}"
        out[f"composed e-mail {note.id}"] = str(notifications.compose_email(
            note, links.partner_url))
    while worker.run_due()["emails"]:
        pass
    addresses = {u.email for u in users}
    sent = [(m, p) for m, p in zip(mail.messages, mail.parsed(), strict=True)
            if set(m["to"]) & addresses]
    assert sent, "no e-mail reached the partner's users"
    for n, (_raw, message) in enumerate(sent):
        out[f"e-mail {n} to {message['To']}"] = f"{message['Subject']}\n{message.get_content()}"
    return out


def webhook_payloads(org_id: int) -> dict[str, str]:
    events = list(db.session.scalars(select(OutboxEvent).where(OutboxEvent.org_id == org_id)))
    assert events, "no webhook event was queued for the partner"
    return {f"webhook {e.type} {e.id}": webhooks.event_body(e).decode() for e in events}


@pytest.fixture
def mail(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", sink.port)
        yield sink


def test_nothing_internal_reaches_the_partner_on_any_face(app, world, mail, monkeypatch):
    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "http://127.0.0.1:9/hook")
    db.session.commit()
    write_everything(app, world, monkeypatch)
    assert_every_internal_column_was_written()

    reached: dict[str, str] = {}
    for user in (world.partner_a, world.agent_a):
        pages = crawl_pages(_client(app, user))
        reached |= {f"{user.role} page {url}": text for url, text in pages.items()}
        api = crawl_api(app.test_client(), make_key(user))
        reached |= {f"{user.role} API {url}": text for url, text in api.items()}
        # The crawl reached the places where partner text lives, by links alone.
        assert any(url.endswith(".csv") or "referrals.csv" in url for url in pages)
        assert any("/documents/" in url for url in pages)
        assert any(url.endswith("/pdf") for url in pages)
        assert any("/notifications" in url for url in pages)
    reached |= notices(world, mail)
    reached |= webhook_payloads(world.org_a.id)

    leaks = sorted({(where, m) for where, text in reached.items()
                    for m in re.findall(INTERNAL_PREFIX + r"-[\w-]+", text)})
    assert leaks == [], "internal text reached the partner:\n" + "\n".join(
        f"  {m} in {where}" for where, m in leaks)

    expected = {"web-start-review", "web-request", "web-reject", "web-decline", "web-message",
                "web-condition",
                "web-stage-guarantee", "web-onsite-staff", "web-terminate-notice",
                "api-start-review", "api-request", "api-disbursed", "api-conflict"}
    seen = {m.removeprefix(PARTNER_PREFIX + "-") for text in reached.values()
            for m in re.findall(PARTNER_PREFIX + r"-[\w-]+", text)}
    assert expected <= seen, f"partner text the crawl never met: {expected - seen}"
    # The partner-meant text arrives by every road, not only on the pages.
    by_road = {road: any(PARTNER_PREFIX in text for where, text in reached.items()
                         if where.startswith(road) or f" {road} " in f" {where} ")
               for road in ("partner_admin page", "partner_agent page", "partner_admin API",
                            "partner_agent API", "notification", "e-mail", "webhook")}
    assert all(by_road.values()), by_road


def test_an_internal_column_cannot_be_read_on_the_way_to_a_partner(world):
    from portal.services import disclosure

    referral = factories.submit(world.partner_a)
    event = referral.events[0]
    event.note, event.partner_note = "bank only", "for the partner"
    assert disclosure.partner_text(event, "partner_note") == "for the partner"
    with pytest.raises(disclosure.InternalField):
        disclosure.partner_text(event, "note")


def test_every_free_text_column_says_who_may_read_it():
    """A new notes column cannot slip past the rule: each free-text column (Text, or a long
    string named like a note) is declared internal or for partners, or is one of these: what the
    partner typed itself, ciphertext, or machine records."""
    partner_input_or_machine = {
        "referral.national_id_enc", "referral.mobile_enc", "referral.asset_description",
        "customer_lead.mobile_enc", "webhook_endpoint.description", "webhook_endpoint.secret_enc",
        "idempotency_record.response_body",
    }
    wordy = re.compile(r"note|reason|summary|body|comment|message|notice|text|description")

    def free_text(column) -> bool:
        kind = column.type
        if type(kind).__name__ == "Text":
            return True
        return bool(wordy.search(column.name)) and (getattr(kind, "length", None) or 0) > 60

    undeclared = sorted(
        f"{t.name}.{c.name}" for t in db.metadata.sorted_tables for c in t.columns
        if free_text(c) and audience(c) is None
        and f"{t.name}.{c.name}" not in partner_input_or_machine)
    assert undeclared == []
