"""Customers the bank refers to partners: the other direction of the exchange (互换客户资源).

Bank staff (channel managers, credit officers; admins) of the partner's branch subtree refer a
bank customer to a partner, with the customer's consent recorded — how, when, under which notice,
by whom; without it nothing is written. The partner's users are told in the portal (and by the
`lead.received` webhook, which carries no personal data); they accept or decline (with a reason),
then report the outcome (contacted, deal made, no deal). Each answer is audited and tells the
member of staff who referred the customer and the partner's channel manager.

What the partner sees is shaped by `partner_view`: the customer's name, what they need, and their
mobile — in full once the partner has accepted (to call them), masked before and after a decline.
The bank's internal note never leaves the bank.

`balance` counts both directions per partner: the partner's referrals to the bank ("referred to
us") and the bank's leads to the partner ("referred by us").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import current_app
from pydantic import BaseModel, BeforeValidator, ConfigDict
from sqlalchemy import Select, bindparam, case, func, or_, select

from models import (
    LEAD_OUTCOMES,
    LEAD_TRANSITIONS,
    CustomerLead,
    LeadStatus,
    Organization,
    Referral,
    Role,
    User,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_zone
from ..extensions import db
from . import Ctx, audit, branches, disclosure, notifications, pii, webhooks
from .errors import Forbidden, NotFound, StateConflict
from .validation import checked, refusal

NEEDS = ("home_decoration", "home_purchase", "car_purchase", "study_abroad", "other")
CONSENT_METHODS = ("signed_form", "recorded_call", "mobile_app")
# Who refers the bank's customers: its staff who work with partners.
MAKERS = (Role.channel_manager.value, Role.credit_officer.value, Role.admin.value)
MAX_NOTE = 1000
OPEN = tuple(LEAD_TRANSITIONS)


# --- the input ---------------------------------------------------------------------------------

def _name(value):
    value = (value or "").strip() if isinstance(value, str) else value
    if not value:
        raise refusal(_l("Enter the customer's name."))
    if not isinstance(value, str) or len(value) > 100:
        raise refusal(_l("At most %(n)d characters.", n=100))
    return value


def _mobile(value):
    try:
        return pii.normalise_mobile(value if isinstance(value, str) else "")
    except ValueError as exc:
        raise refusal(exc.args[0]) from None


def _choice(options: tuple, message):
    def check(value):
        if value not in options:
            raise refusal(message)
        return value
    return check


def _text(required_message=None):
    def check(value):
        value = (value or "").replace("\r\n", "\n").strip() if isinstance(value, str) else ""
        if not value:
            if required_message is not None:
                raise refusal(required_message)
            return None
        if len(value) > MAX_NOTE or "\x00" in value:
            raise refusal(_l("At most %(n)d characters.", n=MAX_NOTE))
        return value
    return check


def _consent(value):
    if value not in (True, "y", "on", "true", "1", 1):
        raise refusal(_l("Record the customer's consent: without it the bank may not pass "
                         "their name and mobile to a partner."))
    return True


def _consent_at(value):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise refusal(_l("Give the date and time the customer consented.")) from None
    if not isinstance(value, datetime):
        raise refusal(_l("Give the date and time the customer consented."))
    if value.tzinfo is None:  # typed on the page: the bank's wall clock
        value = value.replace(tzinfo=bank_zone())
    if value > utcnow():
        raise refusal(_l("The time of consent cannot be in the future."))
    return value


class LeadInput(BaseModel):
    """A bank customer referred to a partner, from the bank's page."""

    # A field left out is checked like an empty one: its message, not pydantic's.
    model_config = ConfigDict(extra="ignore", validate_default=True)
    customer_name: Annotated[str, BeforeValidator(_name)] = ""
    mobile: Annotated[str, BeforeValidator(_mobile)] = ""
    need: Annotated[str, BeforeValidator(_choice(
        NEEDS, _l("Choose what the customer needs.")))] = ""
    need_detail: Annotated[str | None, BeforeValidator(_text())] = None
    internal_note: Annotated[str | None, BeforeValidator(_text())] = None
    consent: Annotated[bool, BeforeValidator(_consent)] = False
    consent_method: Annotated[str, BeforeValidator(_choice(
        CONSENT_METHODS, _l("Choose how the customer gave their consent.")))] = ""
    consent_at: Annotated[datetime | None, BeforeValidator(_consent_at)] = None


class DeclineInput(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_default=True)
    reason: Annotated[str, BeforeValidator(_text(_l("Say why you decline this customer: the "
                                                    "bank reads it.")))] = ""


class OutcomeInput(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_default=True)
    outcome: Annotated[str, BeforeValidator(_choice(LEAD_OUTCOMES,
                                                    _l("Choose how it went.")))] = ""
    note: Annotated[str | None, BeforeValidator(_text())] = None


# --- reading -----------------------------------------------------------------------------------

def visible_leads(user: User | None) -> Select:
    """The leads a user may see: a partner's users their organisation's, bank staff their
    branch subtree's partners'."""
    return select(CustomerLead).where(branches.in_scope(user, CustomerLead.org_id))


def search(user: User, *, q: str | None = None, status: str | None = None,
           org_id: int | None = None) -> Select:
    """A list of leads, newest first: `q` finds a customer by the start of their name or by
    their whole mobile number."""
    query = visible_leads(user)
    q = (q or "").strip()
    if q:
        conditions = [CustomerLead.customer_name.startswith(q, autoescape=True)]
        try:
            conditions.append(CustomerLead.mobile_hash.in_(pii.mobile_hashes(
                pii.normalise_mobile(q))))
        except ValueError:
            pass
        query = query.where(or_(*conditions))
    if status in LeadStatus.__members__:
        query = query.where(CustomerLead.status == status)
    if org_id:
        query = query.where(CustomerLead.org_id == org_id)
    return query.order_by(CustomerLead.created_at.desc(), CustomerLead.id.desc())


def get_for(user: User | None, lead_id: int) -> CustomerLead:
    """Load-then-authorize: another partner's, or another branch's, lead is not found."""
    lead = db.session.get(CustomerLead, lead_id)
    if lead is None or not branches.may_see_org(user, lead.org_id):
        raise NotFound()
    return lead


def partner_view(lead: CustomerLead) -> dict:
    """The lead as its partner reads it: nothing of the bank's own."""
    # Gone under retention: nothing left to show but the mask's dash.
    contactable = (lead.status not in (LeadStatus.sent.value, LeadStatus.declined.value)
                   and bool(lead.mobile_enc))
    return {
        "id": lead.id, "status": lead.status, "created_at": lead.created_at,
        "customer_name": lead.customer_name,
        "mobile": pii.decrypt(lead.mobile_enc) if contactable else lead.mobile_masked,
        "mobile_shown": contactable,
        "need": lead.need,
        "need_detail": disclosure.partner_text(lead, "need_detail"),
        "consent_method": lead.consent_method, "consent_at": lead.consent_at,
        "decline_reason": disclosure.partner_text(lead, "decline_reason"),
        "outcome_note": disclosure.partner_text(lead, "outcome_note"),
        "answered_at": lead.answered_at,
        "referred_by": disclosure.staff_contact(lead.created_by),
        "is_open": lead.is_open,
        "next": LEAD_TRANSITIONS.get(lead.status, ()),
    }


def waiting_count(user: User) -> int:
    """Leads waiting for the partner's answer (its menu's badge)."""
    if not user.is_partner:
        return 0
    return db.session.scalar(_WAITING, {"org_id": user.org_id}) or 0


# Built once: the partner menu's badge counts on every page.
_WAITING = select(func.count(CustomerLead.id)).where(
    CustomerLead.org_id == bindparam("org_id"), CustomerLead.status == LeadStatus.sent.value)


# --- the bank refers a customer ----------------------------------------------------------------

def create(ctx: Ctx, org: Organization | int, data: dict) -> CustomerLead:
    """Refer a bank customer to a partner (flush only). Refused without the customer's consent;
    a partner outside the member of staff's branch subtree is not found."""
    user = ctx.user
    if user is None or user.role not in MAKERS:
        raise Forbidden(_l("Only the bank's staff refer the bank's customers to partners."))
    org = db.session.get(Organization, org) if isinstance(org, int) else org
    if org is None or org.is_bank or not branches.may_see_org(user, org):
        raise NotFound()
    if not org.can_submit:
        raise StateConflict(_l("%(name)s is not an active partner: it cannot take customers "
                               "now.", name=org.name))
    clean = checked(LeadInput, data)
    now = utcnow()
    lead = CustomerLead(
        org_id=org.id, created_by_id=user.id, created_at=now,
        customer_name=clean.customer_name, mobile_enc=pii.encrypt(clean.mobile),
        mobile_hash=pii.mobile_hash(clean.mobile), mobile_masked=pii.mask_mobile(clean.mobile),
        need=clean.need, need_detail=clean.need_detail, internal_note=clean.internal_note,
        consent_method=clean.consent_method, consent_at=clean.consent_at,
        consent_notice_version=current_app.config["CONSENT_NOTICE_VERSION"],
        consent_recorded_by_id=user.id, status=LeadStatus.sent.value, status_changed_at=now)
    db.session.add(lead)
    db.session.flush()
    # The audit keeps the consent's evidence, not the customer's data.
    audit.record(ctx, "lead.create", lead, org=org.code, need=clean.need,
                 consent={"method": clean.consent_method,
                          "at": clean.consent_at.isoformat(),
                          "notice_version": lead.consent_notice_version})
    params = {"lead_id": lead.id, "need": lead.need}
    notifications.notify_org(org.id, "lead_received", params)
    webhooks.emit(org.id, "lead.received", {"lead": webhook_lead(lead)}, at=now)
    return lead


def webhook_lead(lead: CustomerLead) -> dict:
    """What a webhook says of a lead: no personal data (the partner reads it in the portal)."""
    return {"id": lead.id, "status": lead.status, "need": lead.need,
            "created_at": lead.created_at.isoformat().replace("+00:00", "Z")}


# --- the partner answers -----------------------------------------------------------------------

def _partner(ctx: Ctx, lead: CustomerLead) -> User:
    user = ctx.user
    if user is None or not user.is_partner:
        raise Forbidden(_l("Only the partner's users answer a customer the bank referred."))
    if user.org_id != lead.org_id:
        raise NotFound()
    return user


def _move(ctx: Ctx, lead: CustomerLead, to: str, **detail) -> CustomerLead:
    user = _partner(ctx, lead)
    if to not in LEAD_TRANSITIONS.get(lead.status, ()):
        raise StateConflict(_l("This customer's referral has moved on; the page shows where "
                               "it stands now."))
    before, now = lead.status, utcnow()
    lead.status, lead.status_changed_at = to, now
    lead.answered_by_id, lead.answered_at = user.id, now
    if to not in LEAD_TRANSITIONS:
        lead.closed_at = now
    db.session.flush()
    action = {"accepted": "lead.accept", "declined": "lead.decline"}.get(to, "lead.outcome")
    audit.record(ctx, action, lead, changes={"status": [before, to]}, **detail)
    _tell_bank(lead, user)
    return lead


def _tell_bank(lead: CustomerLead, user: User) -> None:
    staff = [u for u in (lead.created_by, lead.org.channel_manager)
             if u is not None and u.active and u.is_bank]
    staff = list({u.id: u for u in staff}.values())
    notifications.notify_staff(staff, "lead_answered", {
        "lead_id": lead.id, "status": lead.status, "org_name": lead.org.name,
        "org_code": lead.org.code, "author": user.name})


def accept(ctx: Ctx, lead: CustomerLead) -> CustomerLead:
    return _move(ctx, lead, LeadStatus.accepted.value)


def decline(ctx: Ctx, lead: CustomerLead, data: dict) -> CustomerLead:
    _partner(ctx, lead)
    clean = checked(DeclineInput, data)
    lead.decline_reason = clean.reason
    return _move(ctx, lead, LeadStatus.declined.value)


def report(ctx: Ctx, lead: CustomerLead, data: dict) -> CustomerLead:
    _partner(ctx, lead)
    clean = checked(OutcomeInput, data)
    if clean.note:
        lead.outcome_note = clean.note
    return _move(ctx, lead, clean.outcome)


# --- both directions ---------------------------------------------------------------------------

def balance(viewer: User | None, org_ids: list[int] | None = None,
            to_us: dict[int, int] | None = None) -> dict[int, dict]:
    """{partner id: {"to_us": its referrals to the bank, "by_us": the bank's leads to it,
    "won": those of them that made a deal}} for the partners the viewer may see (`org_ids`:
    only these). `to_us`: the referral counts when the caller has them (the scorecards keep
    them: counting a busy partner's referrals on each view grew with them, issue 15)."""
    def counted(column, *counts):
        query = select(column, func.count(), *counts).where(branches.in_scope(viewer, column))
        if org_ids is not None:
            query = query.where(column.in_(org_ids))
        return {org: tuple(rest) for org, *rest in db.session.execute(query.group_by(column))}

    if to_us is None:
        to_us = {org: n for org, (n,) in counted(Referral.org_id).items()}
    # The leads and those won, in one statement.
    leads = counted(CustomerLead.org_id, func.count(
        case((CustomerLead.status == LeadStatus.won.value, 1))))
    by_us = {org: n for org, (n, _won) in leads.items()}
    won = {org: n for org, (_all, n) in leads.items()}
    ids = set(org_ids) if org_ids is not None else {*to_us, *by_us}
    return {i: {"to_us": to_us.get(i, 0), "by_us": by_us.get(i, 0), "won": won.get(i, 0)}
            for i in ids}

