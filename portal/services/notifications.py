"""Notifications for partner users: in-app, and by e-mail through SMTP when MAIL_SERVER is set.
Bank staff have no notification page: what they must hear about (a partner's submissions held
for probing) is a list with a count in their menu, and an e-mail when mail is configured.

A notification keeps its kind and parameters, not finished text: the page renders it in the
reader's language, the e-mail in the recipient's (their saved locale, else the portal default),
with flask_babel.force_locale.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import current_app
from flask_babel import force_locale, format_date, get_locale
from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from models import PARTNER_ROLES, Notification, User, utcnow
from portal.i18n import lazy_gettext as _l

from .. import labels
from ..extensions import db
from . import jobqueue
from .errors import Forbidden, NotFound

KINDS = labels.NOTIFICATION_KINDS
EMAIL_MAX_ATTEMPTS = 8


def _email_state() -> tuple[str, datetime | None]:
    if current_app.config.get("MAIL_SERVER"):
        return "pending", utcnow()
    return "none", None


def notify_org(org_id: int, kind: str, params: dict, *, exclude_user_id: int | None = None,
               dedupe_key: str | None = None) -> list[Notification]:
    """One notification for every active partner user of the organisation (flush only)."""
    users = db.session.scalars(select(User).where(
        User.org_id == org_id, User.active.is_(True), User.role.in_(PARTNER_ROLES)))
    return _notify(users, kind, params, exclude_user_id=exclude_user_id, dedupe_key=dedupe_key)


def notify_staff(users, kind: str, params: dict, *,
                 dedupe_key: str | None = None) -> list[Notification]:
    """An e-mail notice to these bank staff when mail is configured (flush only). Without mail
    nothing is written: staff read such notices as their lists and menu counts, not here."""
    if not current_app.config.get("MAIL_SERVER"):
        return []
    return _notify(users, kind, params, dedupe_key=dedupe_key)


def _notify(users, kind: str, params: dict, *, exclude_user_id: int | None = None,
            dedupe_key: str | None = None) -> list[Notification]:
    if kind not in KINDS:  # a programming error; an assert would vanish under python -O
        raise ValueError(f"unknown notification kind {kind!r}")
    status, due = _email_state()
    made = []
    for user in users:
        if user.id == exclude_user_id:
            continue
        if dedupe_key and db.session.scalar(select(Notification.id).where(
                Notification.user_id == user.id, Notification.dedupe_key == dedupe_key)):
            continue
        note = Notification(user_id=user.id, kind=kind, params=params, dedupe_key=dedupe_key,
                            created_at=utcnow(), email_status=status, email_next_at=due)
        try:
            with db.session.begin_nested():
                db.session.add(note)
                db.session.flush()
        except IntegrityError:  # the same dedupe key written at the same moment elsewhere
            continue
        made.append(note)
    for note in made:
        if note.email_status == "pending":
            jobqueue.after_commit("email", note.id)
    return made


# --- reading -----------------------------------------------------------------------------------

def for_user(user_id: int, *, unread_only: bool = False):
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def unread_count(user_id: int) -> int:
    return db.session.scalar(_UNREAD, {"user_id": user_id}) or 0


# Built once: the partner menu's badge counts on every page.
_UNREAD = select(func.count(Notification.id)).where(
    Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))


def get_for_user(user_id: int, notification_id: int) -> Notification:
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != user_id:
        raise NotFound()
    return note


def mark_read(note: Notification) -> None:
    if note.read_at is None:
        note.read_at = utcnow()
        db.session.flush()


def mark_all_read(user_id: int) -> int:
    return db.session.execute(
        update(Notification).where(Notification.user_id == user_id,
                                   Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount or 0


# --- rendering ---------------------------------------------------------------------------------

def _state(code: str | None) -> str:
    return str(labels.PARTNER_STATES.get(code, code)) if code else "—"


def _ref(params: dict) -> str:
    ext = params.get("external_ref")
    return (_("Referral %(id)s (your reference %(ref)s)", id=params.get("referral_id"), ref=ext)
            if ext else _("Referral %(id)s", id=params.get("referral_id")))


def _date(value: str | None) -> str:
    if not value:
        return "—"
    try:
        return format_date(date.fromisoformat(value), "yyyy-MM-dd")
    except ValueError:
        return value


def _yuan(value) -> str:
    return f"¥{float(value):,.2f}"


def render(note: Notification) -> dict:
    """Title and text in the current locale, and its subject: what it is about, as
    `(kind, id)`, for the face to link to (see portal/links.py)."""
    p = note.params or {}
    kind = note.kind
    subject = None
    if kind in ("referral_status", "documents_requested", "item_rejected"):
        subject = ("referral", p.get("referral_id"))
    if kind == "referral_status":
        title = _("%(referral)s: %(from)s → %(to)s", referral=_ref(p),
                  **{"from": _state(p.get("from")), "to": _state(p.get("to"))})
        lines = []
        if p.get("to") == "declined" and p.get("reason_code"):
            lines.append(_("Reason: %(reason)s", reason=labels.DECLINE_REASONS.get(
                p["reason_code"], p["reason_code"])))
        terms = p.get("terms") if p.get("to") == "approved" else None
        if terms:
            figures = {"amount": _yuan(terms["amount"]), "n": terms["term_months"],
                       "rate": f"{terms['rate_percent']:g}"}
            if terms.get("counter_offer"):
                lines.append(_("Approved with changes: %(amount)s instead of %(requested)s "
                               "requested, %(n)s months at %(rate)s%% a year.",
                               requested=_yuan(terms["requested_amount"]), **figures))
            else:
                lines.append(_("Approved: %(amount)s for %(n)s months at %(rate)s%% a year.",
                               **figures))
        if p.get("note"):
            lines.append(_("Note from the bank: %(note)s", note=p["note"]))
        text = "\n".join(lines) or _("The referral is now: %(state)s.", state=_state(p.get("to")))
    elif kind == "documents_requested":
        separator = "、" if get_locale().language == "zh" else ", "
        # The items as asked (an item in the officer's words by its name); older notices
        # carry the document types only.
        asked = p.get("items") or [{"kind": k} for k in p.get("documents", [])]
        kinds = separator.join(item.get("label") or str(labels.DOCUMENT_KINDS.get(
            item.get("kind"), item.get("kind"))) for item in asked)
        title = _("%(referral)s: the bank asks for documents", referral=_ref(p))
        lines = [_("Please upload: %(documents)s.", documents=kinds or "—")]
        if p.get("note"):
            lines.append(_("Note from the bank: %(note)s", note=p["note"]))
        lines.append(_("The referral waits on your side until the documents are uploaded."))
        text = "\n".join(lines)
    elif kind == "item_rejected":
        asked = p.get("item") or {}
        name = asked.get("label") or str(labels.DOCUMENT_KINDS.get(asked.get("kind"),
                                                                    asked.get("kind")))
        title = _("%(referral)s: the bank needs %(item)s again", referral=_ref(p), item=name)
        text = "\n".join([_("Reason: %(reason)s", reason=p.get("reason") or "—"),
                          _("Please upload it again on the referral's page.")])
    elif kind == "agreement_issued":
        subject = ("agreement", p.get("agreement_id"))
        title = _("Agreement %(number)s (version %(version)s) has been issued",
                  number=p.get("number"), version=p.get("version"))
        text = _("Please read and accept it in the portal. It runs from %(start)s to %(end)s.",
                 start=_date(p.get("effective_from")), end=_date(p.get("expires_on")))
    elif kind == "agreement_expiring":
        subject = ("agreement", p.get("agreement_id"))
        title = _("Agreement %(number)s expires on %(date)s", number=p.get("number"),
                  date=_date(p.get("expires_on")))
        text = _("Contact your channel manager about renewing it, so that referrals are not "
                 "interrupted.")
    elif kind == "probe_hold":
        subject = ("held", p.get("org_id"))
        title = _("%(org)s (%(code)s): submissions held for your review", org=p.get("org_name"),
                  code=p.get("org_code"))
        text = _("On %(day)s this partner withdrew %(n)s submissions of buyers already registered "
                 "by another partner. Its further submissions that day wait for a channel "
                 "manager to release or refuse them.", day=_date(p.get("day")), n=p.get("count"))
    elif kind == "referral_message":
        # A partner's message goes to bank staff, who open the bank's page of the referral.
        from_partner = p.get("side") == "partner"
        subject = ("bank_referral" if from_partner else "referral", p.get("referral_id"))
        if from_partner:
            title = _("%(org)s (%(code)s) wrote on referral %(id)s", org=p.get("org_name"),
                      code=p.get("org_code"), id=p.get("referral_id"))
        else:
            title = _("%(referral)s: a message from the bank", referral=_ref(p))
        text = _("%(author)s wrote: %(excerpt)s", author=p.get("author") or "—",
                 excerpt=p.get("excerpt") or "")
    elif kind == "lead_received":
        subject = ("lead", p.get("lead_id"))
        title = _("The bank has referred a customer to you (%(need)s)",
                  need=labels.LEAD_NEEDS.get(p.get("need"), p.get("need")))
        text = _("The customer agreed to be contacted. Accept or decline on the customer's page; "
                 "their mobile number shows once you accept.")
    elif kind == "lead_answered":
        subject = ("bank_lead", p.get("lead_id"))
        title = _("%(org)s (%(code)s): customer referral %(id)s is now %(status)s",
                  org=p.get("org_name"), code=p.get("org_code"), id=p.get("lead_id"),
                  status=labels.LEAD_STATUSES.get(p.get("status"), p.get("status")))
        text = _("Answered by %(author)s.", author=p.get("author") or "—")
    elif kind == "site_quota":
        subject = ("site", p.get("site_id"))
        title = _("%(site)s (%(org)s) has used %(n)s%% of its quota", site=p.get("site_name"),
                  org=p.get("org_code"), n=p.get("threshold"))
        text = _("Approved and disbursed loans through this site come to %(used)s of its "
                 "quota of %(quota)s.", used=_yuan(p.get("used") or 0),
                 quota=_yuan(p.get("quota") or 0))
    else:  # an unknown kind from a newer version: show something rather than fail
        title, text = str(KINDS.get(kind, kind)), ""
    return {"kind": kind, "label": str(KINDS.get(kind, kind)), "title": title, "text": text,
            "subject": subject}


def locale_of(user: User) -> str:
    return user.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")


def compose_email(note: Notification, link_for: Callable[[tuple], str | None]) -> EmailMessage:
    """The e-mail of a notification; `link_for(subject)` gives the address of its page."""
    user = note.user
    with force_locale(locale_of(user)):
        view = render(note)
        body = [_("Hello %(name)s,", name=user.name), "", view["title"], "", view["text"]]
        link = link_for(view["subject"])
        if link:
            body += ["", _("Open it in the portal: %(url)s", url=link)]
        body += ["", "—", _("Personal Loans Partner Portal. You receive this because you are a "
                            "user of %(org)s.", org=user.org.name)]
        message = EmailMessage()
        message["Subject"] = view["title"]
        message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
        message["To"] = formataddr((user.name, user.email))
        message["Message-ID"] = make_msgid(domain="portal")
        message.set_content("\n".join(body))
        # After set_content, which replaces every Content-* header.
        message["Content-Language"] = "zh-CN" if locale_of(user).startswith("zh") else "en"
    return message


def deliver_email(message: EmailMessage) -> None:
    """Send one message through the configured SMTP server (raises on failure)."""
    cfg = current_app.config
    timeout = cfg.get("MAIL_TIMEOUT", 10)
    if cfg.get("MAIL_USE_SSL"):
        smtp = smtplib.SMTP_SSL(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=timeout)
    with smtp:
        if cfg.get("MAIL_USE_TLS") and not cfg.get("MAIL_USE_SSL"):
            smtp.starttls(context=ssl.create_default_context())
        if cfg.get("MAIL_USERNAME"):
            smtp.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)


def send_now(name: str, address: str, subject: str, lines: list[str]) -> None:
    """One e-mail sent inside the request, not queued: for a secret link (it must not wait in
    clear in the outbox) or someone without an account. When the mail server refuses, the
    action is refused too (Forbidden), so nothing changes without the e-mail that tells of it."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = formataddr((name, address))
    message["Message-ID"] = make_msgid(domain="portal")
    message.set_content("\n".join(lines))
    try:
        deliver_email(message)
    except (OSError, ValueError) as exc:
        raise Forbidden(_l("The e-mail could not be sent (%(error)s). Nothing was changed.",
                           error=type(exc).__name__)) from None


# --- e-mail delivery (driven by the worker) -----------------------------------------------------

def due_email_ids(now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or utcnow()
    return list(db.session.scalars(
        select(Notification.id)
        .where(Notification.email_status == "pending", Notification.email_next_at <= now)
        .order_by(Notification.email_next_at, Notification.id).limit(limit)))


def claim_email(note_id: int, now: datetime | None = None) -> bool:
    now = now or utcnow()
    lease = timedelta(seconds=current_app.config.get("MAIL_TIMEOUT", 10) + 60)
    return bool(db.session.execute(
        update(Notification)
        .where(Notification.id == note_id, Notification.email_status == "pending",
               Notification.email_next_at <= now)
        .values(email_next_at=now + lease)
        .execution_options(synchronize_session=False)).rowcount)


def email_for(note_id: int, link_for: Callable[[tuple], str | None]) -> EmailMessage | None:
    note = db.session.get(Notification, note_id, populate_existing=True)
    if note is None or note.email_status != "pending":
        return None
    if not note.user.active:
        note.email_status = "none"
        db.session.flush()
        return None
    return compose_email(note, link_for)


def record_email(note_id: int, error: str | None, now: datetime | None = None) -> None:
    now = now or utcnow()
    note = db.session.get(Notification, note_id, populate_existing=True)
    note.email_attempts += 1
    if error is None:
        note.email_status = "sent"
        note.emailed_at = now
        note.email_next_at = None
        note.email_error = None
    else:
        note.email_error = error[:500]
        if note.email_attempts >= EMAIL_MAX_ATTEMPTS:
            note.email_status = "failed"
            note.email_next_at = None
        else:
            note.email_next_at = now + timedelta(minutes=2 ** note.email_attempts)
    db.session.flush()
