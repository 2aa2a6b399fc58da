"""Messages on a referral between the partner and the bank (issue 13, point 4): the thread on both
referral pages, who hears of a message, the unread counts, the named bank contact, the API, and
the attacks — another partner reading or writing a thread, internal notes leaking into it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Notification, OutboxEvent, ReferralMessage
from portal.extensions import db
from portal.services import Ctx, messages, referrals
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key


@pytest.fixture
def mail(app, monkeypatch):
    # Staff hear of a partner's message by e-mail only when mail is configured; the sink is not
    # needed, nothing is sent inside the request.
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")


def _client(app, user):
    client = app.test_client()
    login(client, user)
    return client


def _reviewed(world):
    """Partner A's referral, taken up by the officer (who becomes the partner's contact)."""
    referral = factories.submit(world.partner_a, external_ref="MSG-1")
    referrals.transition(Ctx(user=world.officer), referral, "under_review",
                         note="internal: income looks thin")
    db.session.commit()
    return referral


def _notes_of(user) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == user.id, Notification.kind == "referral_message")))


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_partner_message_reaches_the_officer_who_acted_and_the_channel_manager(
        app, world, mail):
    referral = _reviewed(world)
    other_officer = factories.UserFactory.bank("credit_officer", email="other@bank.test")
    db.session.commit()
    partner = _client(app, world.agent_a)
    sent = partner.post(f"/partner/referrals/{referral.id}/messages",
                        data={"body": "  Is the payslip from March enough?\r\nThanks  "})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("#messages")

    message = db.session.scalar(select(ReferralMessage))
    assert (message.side, message.author_id, message.body) == (
        "partner", world.agent_a.id, "Is the payslip from March enough?\nThanks")
    assert len(_notes_of(world.officer)) == 1
    assert len(_notes_of(world.manager)) == 1  # the partner's channel manager
    assert _notes_of(other_officer) == []  # not the whole pool: this referral has an officer
    assert _notes_of(world.partner_a) == []  # the partner's own side is not told
    note = _notes_of(world.officer)[0]
    assert note.params["referral_id"] == referral.id and note.email_status == "pending"

    officer = _client(app, world.officer)
    page = officer.get(f"/bank/referrals/{referral.id}").get_data(as_text=True)
    assert "Is the payslip from March enough?" in page
    assert 'data-testid="unread-messages"' in page  # the menu badge
    inbox = officer.get("/bank/messages?unread=1").get_data(as_text=True)
    assert f'data-referral-id="{referral.id}"' in inbox


def test_with_no_officer_yet_every_credit_officer_hears_of_it(app, world, mail):
    referral = factories.submit(world.partner_a)
    second = factories.UserFactory.bank("credit_officer", email="second@bank.test")
    retired = factories.UserFactory.bank("credit_officer", email="retired@bank.test",
                                         active=False)
    db.session.commit()
    assert messages.bank_contact(referral) is None
    messages.post(Ctx(user=world.partner_a), referral, "Any news?")
    db.session.commit()
    assert len(_notes_of(world.officer)) == len(_notes_of(second)) == 1
    assert _notes_of(retired) == []
    assert len(_notes_of(world.manager)) == 1


def test_staff_get_no_in_app_notice_without_mail_but_the_menu_counts_it(app, world):
    referral = _reviewed(world)
    messages.post(Ctx(user=world.partner_a), referral, "Question")
    db.session.commit()
    assert _notes_of(world.officer) == []
    assert messages.unread_count(world.officer) == messages.unread_count(world.admin) == 1


def test_a_bank_message_reaches_the_partners_users_and_its_webhook(app, world):
    from portal.services import webhooks

    webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a, "http://127.0.0.1:9/hook")
    referral = _reviewed(world)
    officer = _client(app, world.officer)
    sent = officer.post(f"/bank/referrals/{referral.id}/messages",
                        data={"body": "Please bring the original contract."})
    assert sent.status_code == 302

    for user in (world.partner_a, world.agent_a):
        (note,) = _notes_of(user)
        assert note.params["excerpt"] == "Please bring the original contract."
    assert _notes_of(world.partner_b) == []
    event = db.session.scalar(select(OutboxEvent).where(OutboxEvent.type == "referral.message"))
    assert event.org_id == world.org_a.id
    assert event.payload["message"]["body"] == "Please bring the original contract."
    assert event.payload["message"]["by"] == "bank"

    partner = _client(app, world.agent_a)
    page = partner.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    assert "Please bring the original contract." in page
    assert 'data-testid="unread-messages"' in page and 'data-testid="thread-unread"' in page
    notices = partner.get("/partner/notifications").get_data(as_text=True)
    assert "Please bring the original contract." in notices


def test_notices_say_who_wrote_and_link_to_each_sides_page(app, world, mail):
    from flask_babel import force_locale

    from portal import links
    from portal.services import notifications

    referral = _reviewed(world)
    messages.post(Ctx(user=world.agent_a), referral, "When is the signing?")
    messages.post(Ctx(user=world.officer), referral, "Friday at two.")
    db.session.commit()
    (to_officer,) = _notes_of(world.officer)
    (to_partner,) = _notes_of(world.partner_a)
    with app.test_request_context(), force_locale("en"):
        bank_view, partner_view = notifications.render(to_officer), notifications.render(
            to_partner)
        assert bank_view["title"] == f"Partner A (PARTNERA) wrote on referral {referral.id}"
        assert bank_view["text"] == f"{world.agent_a.name} wrote: When is the signing?"
        assert links.partner_path(bank_view["subject"]) == f"/bank/referrals/{referral.id}"
        assert partner_view["title"] == (f"Referral {referral.id} (your reference MSG-1): a "
                                         "message from the bank")
        assert partner_view["text"] == f"{world.officer.name} wrote: Friday at two."
        assert links.partner_path(partner_view["subject"]) == f"/partner/referrals/{referral.id}"
        email = notifications.compose_email(to_officer, links.partner_url)
        assert f"/bank/referrals/{referral.id}" in email.get_content()


def test_the_partner_is_told_who_its_officer_and_channel_manager_are(app, world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    partner = _client(app, world.partner_a)
    page = partner.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    assert world.officer.email not in page  # nobody has acted yet: the credit team
    assert world.manager.name in page and world.manager.email in page

    referrals.transition(Ctx(user=world.officer), referral, "under_review")
    db.session.commit()
    page = partner.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    assert world.officer.name in page and f"mailto:{world.officer.email}" in page
    assert messages.bank_contact(referral).id == world.officer.id

    # A later officer who writes becomes the contact.
    other = factories.UserFactory.bank("credit_officer", email="later@bank.test")
    db.session.commit()
    messages.post(Ctx(user=other), referral, "I am taking this one over.")
    db.session.commit()
    assert messages.bank_contact(referral).id == other.id


def test_another_partner_can_neither_read_nor_write_the_thread(app, world):
    referral = _reviewed(world)
    messages.post(Ctx(user=world.officer), referral, "For partner A only")
    db.session.commit()
    before = _count(ReferralMessage)
    intruder = _client(app, world.partner_b)
    assert intruder.get(f"/partner/referrals/{referral.id}").status_code == 404
    assert intruder.post(f"/partner/referrals/{referral.id}/messages",
                         data={"body": "hello"}).status_code == 404
    assert intruder.post(f"/partner/referrals/{referral.id}/messages/read").status_code == 404
    inbox = intruder.get("/partner/messages").get_data(as_text=True)
    assert "For partner A only" not in inbox

    key = make_key(world.partner_b)
    api = app.test_client()
    assert api.get(f"/api/v1/referrals/{referral.id}/messages",
                   headers=auth(key)).status_code == 404
    assert api.post(f"/api/v1/referrals/{referral.id}/messages", json={"body": "hi"},
                    headers=auth(key, **{"Idempotency-Key": "x1"})).status_code == 404
    assert _count(ReferralMessage) == before
    db.session.expire_all()
    assert db.session.scalar(select(ReferralMessage)).read_at is None
    assert messages.unread_count(world.partner_b) == 0


def test_internal_notes_never_enter_the_thread(app, world):
    referral = _reviewed(world)  # its event carries an internal note
    officer = _client(app, world.officer)
    officer.post(f"/bank/referrals/{referral.id}/transition", data={
        "to": "documents_requested", "note": "internal: check the employer",
        "version": referral.version})
    officer.post(f"/bank/referrals/{referral.id}/messages", data={"body": "One question"})
    partner = _client(app, world.partner_a)
    page = partner.get(f"/partner/referrals/{referral.id}").get_data(as_text=True)
    api = app.test_client().get(f"/api/v1/referrals/{referral.id}/messages",
                                headers=auth(make_key(world.partner_a))).get_data(as_text=True)
    inbox = partner.get("/partner/messages").get_data(as_text=True)
    for text in (page, api, inbox):
        assert "internal:" not in text
    assert "One question" in page and "One question" in api


@pytest.mark.parametrize("body, error", [
    ("   \r\n  ", "Write a message before sending it."),
    ("长" * 2001, "at most 2000 characters; this one has 2001"),
])
def test_a_refused_message_keeps_what_was_typed(app, world, body, error):
    referral = _reviewed(world)
    for user, url in ((world.agent_a, f"/partner/referrals/{referral.id}/messages"),
                      (world.officer, f"/bank/referrals/{referral.id}/messages")):
        client = _client(app, user)
        client.get("/", headers={"Accept-Language": "en"})
        response = client.post(url, data={"body": body}, headers={"Accept-Language": "en"})
        page = response.get_data(as_text=True)
        assert response.status_code == 422
        assert 'data-testid="message-refused"' in page and error in page
        if body.strip():
            assert body in page  # shown again in the textarea, nothing lost
    assert _count(ReferralMessage) == 0
    assert _notes_of(world.partner_a) == []


def test_api_lists_and_posts_with_replay(app, world):
    referral = _reviewed(world)
    key = make_key(world.partner_a)
    api = app.test_client()
    url = f"/api/v1/referrals/{referral.id}/messages"
    headers = auth(key, **{"Idempotency-Key": "msg-1"})
    first = api.post(url, json={"body": "From our CRM"}, headers=headers)
    assert first.status_code == 201, first.json
    again = api.post(url, json={"body": "From our CRM"}, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert _count(ReferralMessage) == 1
    assert api.post(url, json={"body": "Something else"}, headers=headers).status_code == 422
    assert api.post(url, json={"body": ""}, headers=auth(key)).json["error"]["fields"]["body"]

    bank = api.post(url, json={"body": "Answer from the bank"},
                    headers=auth(make_key(world.officer)))
    assert bank.status_code == 201 and bank.json["by"] == "bank"
    listing = api.get(url + "?per_page=1&page=2", headers=auth(key))
    assert listing.status_code == 200 and listing.json["total"] == 2
    (item,) = listing.json["items"]
    assert (item["body"], item["by"], item["author"]) == (
        "Answer from the bank", "bank", world.officer.name)
    # The bank answering read the partner's message.
    first_item = api.get(url, headers=auth(key)).json["items"][0]
    assert first_item["read_at"] is not None


def test_unread_counts_fall_when_read_or_answered(app, world):
    referral = _reviewed(world)
    second = factories.submit(world.partner_a)
    db.session.commit()
    for r in (referral, referral, second):
        messages.post(Ctx(user=world.officer), r, "News")
    db.session.commit()
    partner = _client(app, world.partner_a)
    assert messages.unread_count(world.partner_a) == 3
    assert messages.unread_count(world.officer) == 0  # the bank's own messages
    inbox = partner.get("/partner/messages?unread=1").get_data(as_text=True)
    assert inbox.count('data-testid="row-unread"') == 2

    assert partner.post(f"/partner/referrals/{referral.id}/messages/read").status_code == 302
    assert messages.unread_count(world.partner_a) == 1
    assert messages.unread_count(world.agent_a) == 1  # read for the partner's side as a whole
    partner.post(f"/partner/referrals/{second.id}/messages", data={"body": "Thanks"})
    assert messages.unread_count(world.partner_a) == 0
    assert messages.unread_count(world.officer) == 1
    page = partner.get("/partner/").get_data(as_text=True)
    assert 'data-testid="unread-messages"' not in page


def test_retention_removes_the_text_of_old_threads(app, world):
    from datetime import timedelta

    from models import utcnow
    from portal.services import retention

    referral = _reviewed(world)
    messages.post(Ctx(user=world.partner_a), referral, "The buyer 张伟 asked about 139…")
    referrals.transition(Ctx(user=world.officer), referral, "declined",
                         reason_code="income_insufficient", note="x")
    db.session.commit()
    later = utcnow() + timedelta(days=6 * 365)
    assert retention.anonymise_batch(Ctx(user=None), later) == 1
    db.session.expire_all()
    (kept,) = db.session.scalars(select(ReferralMessage)).all()
    assert (kept.body, kept.side, kept.author_id) == ("", "partner", world.partner_a.id)
    response = _client(app, world.officer).post(f"/bank/referrals/{referral.id}/messages",
                                                data={"body": "Anything new on 张伟?"})
    assert response.status_code == 302  # back to the page with the reason
    assert _count(ReferralMessage) == 1
    page = _client(app, world.partner_a).get(f"/partner/referrals/{referral.id}")
    assert 'data-testid="messages-closed"' in page.get_data(as_text=True)
    assert 'data-testid="message-form"' not in page.get_data(as_text=True)


def test_a_channel_manager_counts_and_lists_their_own_partners_threads(app, world):
    other_manager = factories.UserFactory.bank("channel_manager", email="other-cm@bank.test")
    world.org_b.channel_manager_id = other_manager.id
    ours = factories.submit(world.partner_a)
    theirs = factories.submit(world.partner_b)
    db.session.commit()
    messages.post(Ctx(user=world.partner_a), ours, "For our manager")
    messages.post(Ctx(user=world.partner_b), theirs, "For the other manager")
    db.session.commit()
    assert messages.unread_count(world.manager) == 1
    assert messages.unread_count(other_manager) == 1
    assert messages.unread_count(world.officer) == messages.unread_count(world.admin) == 2

    manager = _client(app, world.manager)
    mine = manager.get("/bank/messages").get_data(as_text=True)
    assert f'data-referral-id="{ours.id}"' in mine
    assert f'data-referral-id="{theirs.id}"' not in mine
    everyone = manager.get("/bank/messages?scope=all").get_data(as_text=True)
    assert f'data-referral-id="{theirs.id}"' in everyone
    officer = _client(app, world.officer).get("/bank/messages").get_data(as_text=True)
    assert all(f'data-referral-id="{r.id}"' in officer for r in (ours, theirs))
