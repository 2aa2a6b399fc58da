"""Notifications: in-app for the partner's users on status changes, document requests and
agreements; e-mail through SMTP (a local sink on 127.0.0.1) in the recipient's language."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import Agreement, Notification, utcnow
from portal import links, worker
from portal.extensions import db
from portal.services import Ctx, agreements, documents, notifications, referrals
from tests import factories


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that keeps every message it is given."""

    def __init__(self, fail_first: int = 0):
        self.messages: list[dict] = []
        self.fail_first = fail_first
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 sink ESMTP")
                sender, recipients = None, []
                while True:
                    line = self.rfile.readline().decode("utf-8", "replace").rstrip("\r\n")
                    if not line:
                        return
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == "MAIL":
                        sender, recipients = line[10:].strip("<> "), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        recipients.append(line[8:].strip("<> "))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        if outer.fail_first > 0:
                            outer.fail_first -= 1
                            self.reply("451 try again later")
                            continue
                        self.reply("354 go ahead")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = self.rfile.readline()
                            if not chunk:
                                return
                            data += chunk
                        outer.messages.append({"from": sender, "to": recipients,
                                               "data": data[:-5]})
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def parsed(self):
        return [email.message_from_bytes(m["data"], policy=email.policy.default)
                for m in self.messages]


def notes_for(user) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                                   .order_by(Notification.id)))


@pytest.fixture
def mail(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
        monkeypatch.setitem(app.config, "MAIL_PORT", sink.port)
        monkeypatch.setitem(app.config, "MAIL_DEFAULT_SENDER", "portal@bank.test")
        yield sink


# --- in-app ------------------------------------------------------------------------------------

def test_a_status_change_notifies_the_partners_users_only(world):
    referral = factories.submit(world.partner_a, external_ref="CRM-1")
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    for user in (world.partner_a, world.agent_a):
        [note] = notes_for(user)
        assert note.kind == "referral_status" and note.read_at is None
        assert note.params["referral_id"] == referral.id
        assert (note.params["from"], note.params["to"]) == ("submitted", "under_review")
        assert note.email_status == "none"  # no mail server configured
    for user in (world.partner_b, world.officer, world.manager, world.admin):
        assert notes_for(user) == []


def test_the_partner_who_made_the_move_is_not_told_about_it(world):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.agent_a), referral, "withdrawn")
    db.session.commit()
    assert notes_for(world.agent_a) == []
    assert [n.params["to"] for n in notes_for(world.partner_a)] == ["withdrawn"]


def test_a_document_request_is_its_own_notification(world):
    referral = factories.submit(world.partner_a)
    documents.request_documents(Ctx(user=world.officer), referral, ["bank_statement"],
                                "Last six months")
    db.session.commit()
    [note] = notes_for(world.agent_a)
    assert note.kind == "documents_requested"
    assert "bank_statement" in note.params["documents"]
    assert note.params["note"] == "Last six months"
    view = notifications.render(note)
    assert links.partner_path(view["subject"]) == f"/partner/referrals/{referral.id}"
    assert "Last six months" in view["text"]


def test_agreement_issued_and_expiring_notify_once(world, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "PDF_CACHE_DIR", str(tmp_path / "pdf"))
    manager = Ctx(user=world.manager)
    today = agreements.local_today()
    agreement = agreements.draft(manager, world.org_b, {
        "products": ["housing_mortgage"], "effective_from": today.isoformat(),
        "expires_on": (today + timedelta(days=364)).isoformat()})
    agreements.issue(manager, agreement)
    db.session.commit()
    [note] = notes_for(world.partner_b)
    assert note.kind == "agreement_issued" and note.params["number"] == agreement.number
    assert (links.partner_path(notifications.render(note)["subject"])
            == f"/partner/agreements/{agreement.id}")
    assert notes_for(world.partner_a) == []

    # The factory's agreements for A and B run 335 more days; make A's end in 20.
    soon = db.session.scalar(select(Agreement).where(
        Agreement.org_id == world.org_a.id, Agreement.status == "active"))
    soon.expires_on = today + timedelta(days=20)
    db.session.commit()
    assert worker.housekeeping()["expiring_notices"] == 2   # partner_a and agent_a
    assert worker.housekeeping()["expiring_notices"] == 0   # once only
    kinds = [n.kind for n in notes_for(world.agent_a)]
    assert kinds == ["agreement_expiring"]


def test_pages_count_list_open_and_mark_read(world, as_user, client):
    first = factories.submit(world.partner_a)
    second = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), first, "under_review")
    referrals.transition(Ctx(user=world.officer), second, "under_review")
    referrals.transition(Ctx(user=world.officer), second, "declined",
                         reason_code="income_insufficient", note="internal only")
    db.session.commit()
    as_user(world.agent_a)
    dashboard = client.get("/partner/").get_data(as_text=True)
    assert 'data-testid="unread-count"' in dashboard and ">3</span>" in dashboard
    page = client.get("/partner/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("data-notification-id") == 3
    assert "internal only" not in html
    notes = notes_for(world.agent_a)
    opened = client.get(f"/partner/notifications/{notes[0].id}/open")
    assert opened.status_code == 302
    assert opened.headers["Location"].endswith(f"/partner/referrals/{first.id}")
    assert client.post(f"/partner/notifications/{notes[1].id}/read").status_code == 302
    assert [n.read_at is not None for n in notes_for(world.agent_a)] == [True, True, False]
    unread = client.get("/partner/notifications?unread=1").get_data(as_text=True)
    assert unread.count("data-notification-id") == 1
    client.post("/partner/notifications/read-all")
    assert all(n.read_at for n in notes_for(world.agent_a))
    assert 'data-testid="unread-count"' not in client.get("/partner/").get_data(as_text=True)
    # Someone else's notification is not found.
    theirs = notes_for(world.partner_a)[0]
    assert client.get(f"/partner/notifications/{theirs.id}/open").status_code == 404
    assert client.post(f"/partner/notifications/{theirs.id}/read").status_code == 404
    assert notes_for(world.partner_a)[0].read_at is None


def test_bank_staff_have_no_notification_pages(world, as_user, client):
    as_user(world.officer)
    assert client.get("/partner/notifications").status_code == 403


# --- e-mail ------------------------------------------------------------------------------------

def test_emails_go_through_smtp_in_each_recipients_language(world, mail):
    world.partner_a.locale = "en"
    world.agent_a.locale = "zh_CN"
    referral = factories.submit(world.partner_a, external_ref="CRM-42")
    documents.request_documents(Ctx(user=world.officer), referral, ["bank_statement"],
                                "Six months of statements")
    db.session.commit()
    assert {n.email_status for n in notes_for(world.agent_a)} == {"pending"}
    assert mail.messages == []                      # nothing is sent inside the request
    assert worker.run_due()["emails"] == 2
    assert worker.run_due()["emails"] == 0
    by_recipient = {m["to"][0]: msg for m, msg in zip(mail.messages, mail.parsed(), strict=True)}
    english = by_recipient[world.partner_a.email]
    chinese = by_recipient[world.agent_a.email]
    assert english["From"] == "portal@bank.test"
    assert "asks for documents" in english["Subject"] and "CRM-42" in english["Subject"]
    body = english.get_content()
    assert body.startswith(f"Hello {world.partner_a.name},")
    assert "Six months of statements" in body
    assert f"/partner/referrals/{referral.id}" in body
    assert chinese["Content-Language"] == "zh-CN"
    zh_body = chinese.get_content()
    assert "您好" in zh_body and "CRM-42" in chinese["Subject"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese["Subject"])  # Chinese text
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in english["Subject"])
    assert "Six months of statements" in zh_body
    assert referral.national_id_masked not in body  # no ID numbers by e-mail
    for note in notes_for(world.agent_a) + notes_for(world.partner_a):
        assert note.email_status == "sent" and note.emailed_at is not None


def test_a_refused_email_is_retried_later(world, mail, app):
    mail.fail_first = 1
    world.agent_a.active = False  # one recipient only: partner_a
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    now = utcnow()
    worker.run_due(now)
    [note] = notes_for(world.partner_a)
    assert note.email_status == "pending" and note.email_attempts == 1
    assert "451" in note.email_error
    assert worker.run_due(now)["emails"] == 0        # not due yet
    worker.run_due(now + timedelta(minutes=5))
    [note] = notes_for(world.partner_a)
    assert note.email_status == "sent" and len(mail.messages) == 1


def test_without_a_mail_server_nothing_waits_to_be_sent(world):
    referral = factories.submit(world.partner_a)
    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    assert db.session.scalar(select(func.count(Notification.id)).where(
        Notification.email_status == "pending")) == 0
    assert worker.run_due()["emails"] == 0
