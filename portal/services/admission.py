"""Partner admission (准入): a company applies on a public page; a channel manager of the branch
it applied to (or above) asks for more, approves or declines.

The applicant has no account. What the bank asks reaches them by e-mail with a link that opens
one answer: its token is stored as a SHA-256 only, expires after LINK_DAYS and is spent by the
answer. Approval makes the organisation (pending until its first agreement is accepted, see
agreements/lifecycle.accept), its administrator (invited by a single-use password link) and the
first agreement's draft from the partner type's template.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Select, func, or_, select, true, update

from models import (
    OPEN_APPLICATION,
    ApplicationStatus,
    Branch,
    Organization,
    OrgStatus,
    PartnerApplication,
    Product,
    User,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_today
from ..extensions import db
from . import Ctx, accounts, agreements, audit, branches, notifications, passwords
from .admission_input import ApplicationInput
from .admission_input import clean_uscc as clean_uscc  # the code check, for faces and tests
from .errors import Forbidden, StateConflict, ValidationFailed
from .upload_checks import ALLOWED_TYPES, Refused, check
from .validation import checked

AS = ApplicationStatus
LINK_DAYS = 14  # how long a request for more information can be answered
FIRST_AGREEMENT_DAYS = 365
NOTE_MAX = 2000


def offered_products() -> list[Product]:
    return list(db.session.scalars(select(Product).where(Product.active.is_(True))
                                   .order_by(Product.code)))


def branch_choices() -> list[Branch]:
    """The branches an applicant may apply to: every branch below the province (or the province
    alone, in a bank that has no branches yet)."""
    tree = branches.tree()
    below = [b for b in tree if not b.is_root]
    return below or tree


# --- the licence file --------------------------------------------------------------------------

def _checked_licence(data: bytes | None):
    """What to store of the licence, or raise ValidationFailed({"licence": why}): the same
    checks as every document (upload_checks), and the same size limit."""
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if not data:
        raise ValidationFailed({"licence": _l("Choose the business licence file (PDF, JPEG or "
                                              "PNG).")})
    if len(data) > limit:
        raise ValidationFailed({"licence": _l("The file is larger than %(mb)d MB.",
                                              mb=limit // (1024 * 1024))})
    try:
        return check(data, max_pixels=current_app.config["UPLOAD_MAX_PIXELS"])
    except Refused as refused:
        raise ValidationFailed({"licence": refused.message}) from None


def _safe_filename(name: str | None) -> str:
    name = Path((name or "").replace("\\", "/")).name.strip()
    return "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?')[:200] or "licence"


def _store_licence(application: PartnerApplication, filename: str | None, stored) -> None:
    now = utcnow()
    key = f"applications/{now:%Y/%m}/{uuid.uuid4().hex}{ALLOWED_TYPES[stored.content_type]}"
    target = Path(current_app.config["UPLOAD_DIR"]) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(stored.data)
    application.licence_filename = _safe_filename(filename)
    application.licence_content_type = stored.content_type
    application.licence_size = len(stored.data)
    application.licence_sha256 = hashlib.sha256(stored.data).hexdigest()
    application.licence_key = key


def licence_path(application: PartnerApplication) -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / application.licence_key


# --- applying ----------------------------------------------------------------------------------

def submit(ctx: Ctx, data: dict, *, filename: str | None, licence: bytes | None,
           locale: str | None = None) -> PartnerApplication:
    """A company's application; every field's error at once (ValidationFailed)."""
    errors: dict = {}
    fields = None
    try:
        fields = checked(ApplicationInput, data,
                         {"offered": {p.code for p in offered_products()}})
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        stored = _checked_licence(licence)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if fields is not None and "uscc" not in errors:
        if db.session.scalar(select(Organization.id).where(Organization.code == fields.uscc)):
            errors["uscc"] = _l("A partner with this credit code already works with the bank. "
                                "Contact your channel manager.")
        elif db.session.scalar(select(PartnerApplication.id).where(
                PartnerApplication.uscc == fields.uscc,
                PartnerApplication.status.in_(OPEN_APPLICATION))):
            errors["uscc"] = _l("An application with this credit code is already being "
                                "reviewed. The bank will write to its contact.")
    if errors:
        raise ValidationFailed(errors)
    now = utcnow()
    application = PartnerApplication(
        company_name=fields.company_name, uscc=fields.uscc, kind=fields.kind,
        branch_id=branches.by_code(fields.branch).id, contact_name=fields.contact_name,
        contact_mobile=fields.contact_mobile, contact_email=fields.contact_email,
        products=fields.products, locale=(locale or None), status=AS.submitted.value,
        submitted_at=now, updated_at=now)
    _store_licence(application, filename, stored)
    db.session.add(application)
    db.session.flush()
    audit.record(ctx, "application.submit", application, uscc=application.uscc,
                 kind=application.kind, branch=fields.branch, products=application.products,
                 licence_sha256=application.licence_sha256)
    return application


# --- what a bank user sees ---------------------------------------------------------------------

def in_scope(user: User | None) -> ColumnElement[bool]:
    """Applications to the user's branch subtree (all for the province's staff)."""
    branch = branches.scope_branch(user)
    if branch is None:
        return true()
    return PartnerApplication.branch_id.in_(
        select(Branch.id).where(Branch.path.startswith(branch.path)))


def get_for(user: User | None, application_id: int) -> PartnerApplication | None:
    """One application, or None when it does not exist or is another branch's."""
    application = db.session.get(PartnerApplication, application_id)
    if application is None:
        return None
    limit = branches.scope_branch(user)
    if limit is not None and not limit.contains(application.branch):
        return None
    return application


def search(user: User | None, *, q: str | None = None, status: str | None = None) -> Select:
    """Newest first. `status`: one status, "all", or none (the open ones)."""
    query = select(PartnerApplication).where(in_scope(user))
    if status == "all":
        pass
    elif status in {s.value for s in AS}:
        query = query.where(PartnerApplication.status == status)
    else:
        query = query.where(PartnerApplication.status.in_(OPEN_APPLICATION))
    text = (q or "").strip()[:100]
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(PartnerApplication.company_name.ilike(like, escape="\\"),
                                PartnerApplication.uscc.ilike(like, escape="\\"),
                                PartnerApplication.contact_name.ilike(like, escape="\\"),
                                PartnerApplication.contact_email.ilike(like, escape="\\")))
    return query.order_by(PartnerApplication.submitted_at.desc(), PartnerApplication.id.desc())


def open_count(user: User | None) -> int:
    """Applications waiting on the bank, for the menu."""
    return db.session.scalar(select(func.count(PartnerApplication.id)).where(
        in_scope(user), PartnerApplication.status == AS.submitted.value)) or 0


def product_names(codes: list[str], locale: str) -> list[str]:
    found = {p.code: p.display_name(locale) for p in db.session.scalars(
        select(Product).where(Product.code.in_(codes or [])))}
    return [found.get(code, code) for code in codes or []]


# --- the review --------------------------------------------------------------------------------

def _require_open(application: PartnerApplication) -> None:
    if not application.is_open:
        raise StateConflict(_l("This application has been decided already."))


def _require_reviewer(ctx: Ctx, application: PartnerApplication) -> None:
    user = ctx.user
    if user is not None and (user.role not in agreements.MANAGER_ROLES
                             or not branches.covers(user, application.branch)):
        raise Forbidden(_l("Only the channel managers of the branch applied to review this "
                           "application."))


def token_hash(raw: str) -> str:
    return hashlib.sha256((raw or "").encode()).hexdigest()


def _note(value: str | None, field: str, message) -> str:
    text = (value or "").strip()
    if len(text) < 5:
        raise ValidationFailed({field: message})
    if len(text) > NOTE_MAX:
        raise ValidationFailed({field: _l("At most %(n)d characters.", n=NOTE_MAX)})
    return text


def request_info(ctx: Ctx, application: PartnerApplication, message: str, *,
                 at: datetime | None = None) -> str:
    """Ask the applicant for more; returns the raw token of the link that answers it, for the
    e-mail only (a new request replaces the link of an earlier one)."""
    _require_reviewer(ctx, application)
    _require_open(application)
    if not passwords.mail_configured():
        raise Forbidden(_l("E-mail is not configured, so the applicant cannot be asked through "
                           "the portal. Call them on %(mobile)s.",
                           mobile=application.contact_mobile))
    text = _note(message, "message", _l("Write what the applicant should add."))
    now = at or utcnow()
    raw = secrets.token_urlsafe(32)
    application.status = AS.info_requested.value
    application.info_request = text
    application.link_token_hash = token_hash(raw)
    application.link_expires_at = now + timedelta(days=LINK_DAYS)
    application.updated_at = now
    db.session.flush()
    audit.record(ctx, "application.request_info", application, uscc=application.uscc)
    return raw


def for_token(raw: str, *, at: datetime | None = None) -> PartnerApplication | None:
    """The application a link answers, while it can (the page reads; nothing is spent)."""
    if not raw:
        return None
    application = db.session.scalar(select(PartnerApplication).where(
        PartnerApplication.link_token_hash == token_hash(raw)))
    if (application is None or application.status != AS.info_requested.value
            or application.link_expires_at is None
            or application.link_expires_at <= (at or utcnow())):
        return None
    return application


def add_info(ctx: Ctx, raw: str, *, note: str | None, filename: str | None = None,
             licence: bytes | None = None, at: datetime | None = None) -> PartnerApplication:
    """The applicant's answer through the link: a note, a new licence, or both. The link is
    spent by it; the application waits on the bank again."""
    text = (note or "").strip()
    errors: dict = {}
    stored = None
    if licence:
        try:
            stored = _checked_licence(licence)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if not text and not licence:
        errors["note"] = _l("Write your answer, or add the licence again.")
    elif len(text) > NOTE_MAX:
        errors["note"] = _l("At most %(n)d characters.", n=NOTE_MAX)
    if errors:
        raise ValidationFailed(errors)
    now = at or utcnow()
    # Spent in one statement: two submissions of one link cannot both be taken.
    spent = db.session.execute(
        update(PartnerApplication).where(
            PartnerApplication.link_token_hash == token_hash(raw),
            PartnerApplication.status == AS.info_requested.value,
            PartnerApplication.link_expires_at > now)
        .values(link_token_hash=None, link_expires_at=None, status=AS.submitted.value,
                updated_at=now)
        .returning(PartnerApplication.id)
        .execution_options(synchronize_session=False)).scalar()
    if spent is None:
        raise Forbidden(_l("This link has expired or was already used. The bank will write "
                           "again if it needs more."))
    application = db.session.get(PartnerApplication, spent, populate_existing=True)
    if text:
        application.applicant_note = text
    detail = {}
    if stored is not None:
        before = application.licence_sha256
        _store_licence(application, filename, stored)
        detail = {"licence_sha256": application.licence_sha256, "replaced_sha256": before}
    db.session.flush()
    audit.record(ctx, "application.add_info", application, uscc=application.uscc,
                 note=bool(text), **detail)
    return application


def decline(ctx: Ctx, application: PartnerApplication, reason: str, *,
            at: datetime | None = None) -> PartnerApplication:
    """`reason` is written to the applicant."""
    _require_reviewer(ctx, application)
    _require_open(application)
    text = _note(reason, "reason", _l("Write the reason for the applicant."))
    application.status = AS.declined.value
    application.decline_reason = text
    application.decided_at = at or utcnow()
    application.decided_by_id = ctx.user.id if ctx.user else None
    application.link_token_hash = application.link_expires_at = None
    application.updated_at = application.decided_at
    db.session.flush()
    audit.record(ctx, "application.decline", application, uscc=application.uscc)
    return application


def approve(ctx: Ctx, application: PartnerApplication, *,
            at: datetime | None = None) -> tuple[Organization, User, str | None]:
    """Admit the applicant: the organisation (pending), its administrator and the first
    agreement's draft. Returns the organisation, the administrator and the raw token of their
    invitation link (None without mail: the CLI gives a one-time password instead)."""
    _require_reviewer(ctx, application)
    _require_open(application)
    manager = ctx.user if ctx.user is not None and ctx.user.role == "channel_manager" else None
    org = accounts.create_org(
        ctx, code=application.uscc, name=application.company_name, kind=application.kind,
        status=OrgStatus.pending.value, branch=application.branch.code,
        manager_email=manager.email if manager else None,
        contact_name=application.contact_name, contact_phone=application.contact_mobile,
        contact_email=application.contact_email)
    # The partner's administrator is made, and invited, by the system on the manager's
    # decision: a channel manager does not manage users (accounts.can_manage_users_of). The
    # approval's own audit entry names the manager.
    system = Ctx(user=None, ip=ctx.ip)
    try:
        admin, _none = accounts.create_user(system, email=application.contact_email,
                                            role="partner_admin", org=org,
                                            name=application.contact_name, one_time=False)
    except ValidationFailed as exc:
        why = next(iter(exc.fields.values()), "")
        message = _l("The applicant's e-mail cannot be used for the new administrator: "
                     "%(why)s", why=why)
        raise ValidationFailed({"approve": message}, message=message) from None
    today = bank_today()
    offered = {p.code for p in offered_products()}
    try:
        draft = agreements.draft(ctx, org, {
            "products": [c for c in application.products if c in offered],
            "effective_from": today,
            "expires_on": today + timedelta(days=FIRST_AGREEMENT_DAYS - 1)})
    except ValidationFailed as exc:
        message = _l("The first agreement cannot be drafted: %(why)s",
                     why="; ".join(str(v) for v in exc.fields.values()))
        raise ValidationFailed({"approve": message}, message=message) from None
    raw = (passwords.start_reset(system, admin, invitation=True)
           if passwords.mail_configured() else None)
    application.status = AS.approved.value
    application.org_id = org.id
    application.decided_at = at or utcnow()
    application.decided_by_id = ctx.user.id if ctx.user else None
    application.link_token_hash = application.link_expires_at = None
    application.updated_at = application.decided_at
    db.session.flush()
    audit.record(ctx, "application.approve", application, uscc=application.uscc, org=org.code,
                 admin=admin.id, agreement=draft.number, invited=raw is not None)
    return org, admin, raw


# --- e-mail to the applicant -------------------------------------------------------------------

def _locale(application: PartnerApplication) -> str:
    return application.locale or current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")


def send_email(application: PartnerApplication, *, link: str | None = None) -> None:
    """Tell the applicant what the bank asked or decided, now: a request carries its link, a
    secret that must not wait in clear in a queue (as password links, services/passwords.py).
    When the mail server refuses, the decision is undone and the manager told (Forbidden)."""
    with force_locale(_locale(application)):
        hello = _("Hello %(name)s,", name=application.contact_name)
        if application.status == AS.info_requested.value:
            subject = _("Your application to become a partner: the bank asks for more")
            body = [hello, "", _("The bank has read the application of %(company)s and asks "
                                 "for more:", company=application.company_name), "",
                    application.info_request or "", "",
                    _("Answer here (the link works once, for %(days)d days):", days=LINK_DAYS),
                    "", link or ""]
        elif application.status == AS.declined.value:
            subject = _("Your application to become a partner")
            body = [hello, "", _("The bank has decided not to admit %(company)s as a partner "
                                 "now.", company=application.company_name), "",
                    _("Reason: %(reason)s", reason=application.decline_reason or "—")]
        else:
            return
        body += ["", "—", _("Personal Loans Partner Portal")]
    notifications.send_now(application.contact_name, application.contact_email, subject, body)
