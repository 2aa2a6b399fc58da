"""Drafting agreements: a new number, a draft's changes, and the renewal (the next version of
the same number, which supersedes the old one when it becomes active)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from models import Agreement, AgreementStatus, AgreementTemplate, Organization, utcnow
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_date, bank_today
from ...extensions import db
from .. import Ctx, audit
from ..errors import StateConflict, ValidationFailed
from .access import require_manager
from .templates import default_template_for, family_of, latest_template
from .terms import clean_terms

AS = AgreementStatus


def next_number(org: Organization, year: int) -> str:
    prefix = f"AGR-{org.code}-{year}-"
    numbers = db.session.scalars(select(Agreement.number)
                                 .where(Agreement.number.like(prefix + "%")))
    seqs = [int(n[len(prefix):]) for n in numbers if n[len(prefix):].isdigit()]
    return f"{prefix}{max(seqs, default=0) + 1:03d}"


def _resolve_template(org: Organization, template, products) -> AgreementTemplate:
    if template is None:
        template = default_template_for(org, products)
    elif isinstance(template, int | str):
        template = db.session.get(AgreementTemplate, int(template))
    if template is None:
        raise ValidationFailed({"template_id": _l("Choose an agreement template.")})
    if template.family != family_of(org):
        raise ValidationFailed({"template_id": _l("This template is for another partner type.")})
    return template


def draft(ctx: Ctx, org: Organization, data: dict, *, template=None,
          supersedes: Agreement | None = None, at: datetime | None = None) -> Agreement:
    """A new draft agreement for `org` (`supersedes`: the agreement it renews)."""
    require_manager(ctx)
    if org.is_bank or org.status == "terminated":
        raise ValidationFailed({"org": _l("Agreements are made with active partner "
                                          "organisations.")})
    terms = clean_terms(org, data)
    template = _resolve_template(org, template or data.get("template_id") or None,
                                 terms["products"])
    now = at or utcnow()
    if supersedes is not None:
        number = supersedes.number
        version = db.session.scalar(select(func.max(Agreement.version))
                                    .where(Agreement.number == number)) + 1
    else:
        number, version = next_number(org, (bank_date(at) if at else bank_today()).year), 1
    agreement = Agreement(org=org, number=number, version=version,
                          supersedes_id=supersedes.id if supersedes else None,
                          template=template, template_version=template.version,
                          status=AS.draft.value, created_at=now,
                          created_by_id=ctx.user.id if ctx.user else None, **terms)
    db.session.add(agreement)
    db.session.flush()
    audit.record(ctx, "agreement.draft", agreement, number=number, version=version,
                 org=org.code, products=terms["products"])
    return agreement


def update_draft(ctx: Ctx, agreement: Agreement, data: dict, *, template=None) -> Agreement:
    require_manager(ctx)
    if agreement.status != AS.draft.value:
        raise StateConflict(_l("Only a draft can be changed; renew or terminate it instead."))
    terms = clean_terms(agreement.org, data)
    chosen = _resolve_template(agreement.org, template or data.get("template_id") or None,
                               terms["products"])
    for field, value in terms.items():
        setattr(agreement, field, value)
    agreement.template, agreement.template_version = chosen, chosen.version
    db.session.flush()
    audit.record(ctx, "agreement.update_draft", agreement, number=agreement.number,
                 version=agreement.version)
    return agreement


def successor(agreement: Agreement) -> Agreement | None:
    """The renewal of this agreement that is still open or in force, if any."""
    return db.session.scalar(
        select(Agreement).where(Agreement.supersedes_id == agreement.id,
                                Agreement.status.in_([AS.draft.value, AS.issued.value,
                                                      AS.accepted.value, AS.active.value]))
        .order_by(Agreement.version.desc()).limit(1))


def renewal_defaults(agreement: Agreement, today: date | None = None) -> dict:
    today = today or bank_today()
    start = (agreement.expires_on + timedelta(days=1)
             if agreement.status == AS.active.value else today)
    length = agreement.expires_on - agreement.effective_from
    return {"products": list(agreement.products), "projects": list(agreement.projects or []),
            "stage_guarantee": agreement.stage_guarantee, "brands": list(agreement.brands or []),
            "onsite_staff": agreement.onsite_staff, "bank_sla_hours": agreement.bank_sla_hours,
            "partner_doc_days": agreement.partner_doc_days, "effective_from": start,
            "expires_on": start + length}


def renew(ctx: Ctx, agreement: Agreement, data: dict | None = None, *, template=None,
          at: datetime | None = None) -> Agreement:
    """Draft the next version of an active (or expired) agreement; it supersedes this one when
    it becomes active."""
    require_manager(ctx)
    if agreement.status not in (AS.active.value, AS.expired.value):
        raise StateConflict(_l("Only an active or expired agreement can be renewed."))
    newest = db.session.scalar(select(func.max(Agreement.version))
                               .where(Agreement.number == agreement.number))
    if newest != agreement.version or successor(agreement) is not None:
        raise StateConflict(_l("This agreement already has a newer version."))
    terms = {**renewal_defaults(agreement), **(data or {})}
    if template is None and not terms.get("template_id"):
        template = latest_template(agreement.template.key)
    renewal = draft(ctx, agreement.org, terms, template=template, supersedes=agreement, at=at)
    audit.record(ctx, "agreement.renew", agreement, number=agreement.number,
                 new_version=renewal.version)
    return renewal
