"""Cooperation agreements (合作协议): templates, drafting, issue, acceptance with proof, renewal,
termination, verification of PDFs, and the referral gating that rests on them.

Lifecycle: draft -> issued -> accepted -> active -> expired | superseded; draft, issued,
accepted and active may be terminated. A renewal is a new version of the same number that
supersedes the old one when it becomes active. Nothing is deleted or rewritten: an issued
agreement keeps the content and PDF it was issued with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.exc import StaleDataError

from models import (
    AGREEMENT_TRANSITIONS,
    BRAND_KINDS,
    FAMILY_OF,
    PROJECT_KINDS,
    Agreement,
    AgreementAcceptance,
    AgreementStatus,
    AgreementTemplate,
    Organization,
    PartnerFamily,
    Product,
    Role,
    User,
    utcnow,
)

from ..extensions import db
from . import Ctx, audit, events, pdf
from .agreement_defaults import DEFAULT_BODY, DEFAULT_TEMPLATES
from .errors import Forbidden, NotFound, StateConflict, ValidationFailed

AS = AgreementStatus
MANAGER_ROLES = frozenset({Role.channel_manager.value, Role.admin.value})
SYSTEM = Ctx(user=None, ip=None)
CONTENT_FORMAT = 1
MAX_TERM_DAYS = 5 * 366
DEFAULT_BANK_NAME = "示范银行股份有限公司"
DEFAULT_BANK_UNIT = "个人贷款业务部 · 合作渠道管理"

KIND_ZH = {
    "real_estate_developer": "房地产开发企业",
    "property_broker": "房地产经纪机构",
    "car_dealer": "汽车经销商",
    "car_manufacturer": "汽车生产厂商",
    "study_abroad_agency": "留学服务机构",
    "retail_mall": "零售商场",
    "law_firm": "律师事务所",
    "appraiser": "资产评估机构",
    "guarantee_company": "融资担保公司",
    "credit_rating_agency": "信用评级机构",
    "insurer": "保险公司",
}
CN_DIGITS = "零一二三四五六七八九"


# --------------------------------------------------------------------------- helpers


def local_today() -> date:
    """Today at the bank (agreement dates are the bank's calendar days)."""
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")
    return datetime.now(zone).date()


def _bank_date(moment: datetime) -> date:
    """The bank's calendar day of a moment (backdated demo data and imports)."""
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")
    return moment.astimezone(zone).date()


def _day_start(day: date) -> datetime:
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 20 -> 二十, 35 -> 三十五 (clause numbers up to 99)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    text = ("" if tens == 1 else CN_DIGITS[tens]) + "十" if tens else ""
    return text + (CN_DIGITS[ones] if ones else "")


def chinese_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def family_of(org: Organization) -> str:
    return FAMILY_OF.get(org.kind, PartnerFamily.service.value)


def _require_manager(ctx: Ctx) -> None:
    # ctx.user None is the system (demo data, CLI); anyone else must be a channel manager or admin.
    if ctx.user is not None and ctx.user.role not in MANAGER_ROLES:
        raise Forbidden(_l("Only channel managers and administrators manage agreements."))


def _require_admin(ctx: Ctx) -> None:
    if ctx.user is not None and ctx.user.role != Role.admin.value:
        raise Forbidden(_l("Only administrators edit agreement templates."))


def _move(ctx: Ctx, agreement: Agreement, to: AgreementStatus, **detail) -> None:
    if (AS(agreement.status), to) not in AGREEMENT_TRANSITIONS:
        raise StateConflict(_l("An agreement that is %(from)s cannot become %(to)s.",
                               **{"from": agreement.status, "to": to.value}))
    before = agreement.status
    agreement.status = to.value
    try:
        db.session.flush()
    except StaleDataError:
        raise StateConflict(_l("Someone else changed this agreement at the same moment. "
                               "Reload it and try again.")) from None
    audit.record(ctx, f"agreement.{to.value}", agreement, number=agreement.number,
                 version=agreement.version, **{"from": before}, **detail)


# --------------------------------------------------------------------------- templates


_sandbox = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True,
                                lstrip_blocks=True)


@lru_cache(maxsize=64)
def _compiled(body: str):
    return _sandbox.from_string(body)


def current_templates(family: str | None = None) -> list[AgreementTemplate]:
    """The newest version of every template (of one family), by key."""
    newest = (select(AgreementTemplate.key, func.max(AgreementTemplate.version).label("v"))
              .group_by(AgreementTemplate.key).subquery())
    query = (select(AgreementTemplate)
             .join(newest, and_(AgreementTemplate.key == newest.c.key,
                                AgreementTemplate.version == newest.c.v))
             .order_by(AgreementTemplate.family, AgreementTemplate.key))
    if family:
        query = query.where(AgreementTemplate.family == family)
    return list(db.session.scalars(query))


def template_versions(key: str) -> list[AgreementTemplate]:
    return list(db.session.scalars(select(AgreementTemplate).where(AgreementTemplate.key == key)
                                   .order_by(AgreementTemplate.version.desc())))


def latest_template(key: str) -> AgreementTemplate | None:
    return db.session.scalar(select(AgreementTemplate).where(AgreementTemplate.key == key)
                             .order_by(AgreementTemplate.version.desc()).limit(1))


def templates_for(org: Organization) -> list[AgreementTemplate]:
    return current_templates(family_of(org))


def default_template_for(org: Organization, products: list[str] | None = None):
    """The template to draft with: of the org's family, for the one product when there is one
    made for it, else the family's general template."""
    candidates = templates_for(org)
    if products and len(products) == 1:
        for template in candidates:
            if template.product_code == products[0]:
                return template
    general = [t for t in candidates if t.product_code is None]
    return (general or candidates or [None])[0]


def ensure_default_templates(ctx: Ctx = SYSTEM) -> None:
    """Put back the default template of every family that has none (fresh databases in tests)."""
    existing = set(db.session.scalars(select(AgreementTemplate.key)))
    for key, family, product, title in DEFAULT_TEMPLATES:
        if key not in existing:
            db.session.add(AgreementTemplate(key=key, version=1, family=family,
                                             product_code=product, title=title,
                                             body=DEFAULT_BODY, note="default"))
    db.session.flush()


def _sample_context(family: str) -> list[dict]:
    kinds = [k for k, f in FAMILY_OF.items() if f == family] or ["law_firm"]
    samples = []
    for kind in kinds:
        products = [{"code": "housing_mortgage", "name_zh": "个人住房贷款",
                     "name_en": "Housing mortgage"}]
        terms = {"number": "AGR-SAMPLE-2026-001", "version": 1, "products": products,
                 "projects": ["示例项目一期"], "stage_guarantee": "示例", "brands": ["示例品牌"],
                 "onsite_staff": "示例", "bank_sla_hours": 72, "partner_doc_days": 5,
                 "effective_from": date(2026, 1, 1), "expires_on": date(2026, 12, 31)}
        samples.append(_template_context(
            {"name": "示例合作方", "code": "SAMPLE", "kind": kind, "branch": None}, terms,
            {"name": DEFAULT_BANK_NAME, "unit": DEFAULT_BANK_UNIT}))
    return samples


def check_template_body(body: str, family: str) -> None:
    """Compile the body in the sandbox and render it for every partner type of the family."""
    if not (body or "").strip():
        raise ValidationFailed({"body": _l("The template body is empty.")})
    try:
        template = _compiled(body)
        clauses = [_parse(template.render(**c))[1] for c in _sample_context(family)]
    except TemplateError as err:
        raise ValidationFailed({"body": _l("The template does not render: %(error)s",
                                           error=str(err))}) from None
    if not all(clauses):
        raise ValidationFailed({"body": _l("The template has no clause: start each clause with "
                                           "a line \"## title\".")})


def edit_template(ctx: Ctx, template: AgreementTemplate, *, body: str, title: str | None = None,
                  note: str | None = None) -> AgreementTemplate:
    """Save an edit as the template's next version; every earlier version stays as it was."""
    _require_admin(ctx)
    body = (body or "").replace("\r\n", "\n")
    title = (title or template.title).strip()
    if not title:
        raise ValidationFailed({"title": _l("A title is required.")})
    newest = latest_template(template.key)
    if newest is not None and newest.body == body and newest.title == title:
        raise ValidationFailed({"body": _l("Nothing changed.")})
    check_template_body(body, template.family)
    version = (newest.version if newest else 0) + 1
    new = AgreementTemplate(key=template.key, version=version, family=template.family,
                            product_code=template.product_code, title=title, body=body,
                            note=(note or "").strip()[:300] or None,
                            created_by_id=ctx.user.id if ctx.user else None)
    db.session.add(new)
    db.session.flush()
    audit.record(ctx, "agreement_template.edit", new, key=new.key, version=version,
                 based_on=template.version)
    return new


TEMPLATE_KEY = re.compile(r"^[a-z0-9_.-]{2,60}$")


def create_template(ctx: Ctx, *, key: str, family: str, title: str, body: str,
                    product_code: str | None = None) -> AgreementTemplate:
    _require_admin(ctx)
    key = (key or "").strip().lower()
    errors = {}
    if not TEMPLATE_KEY.match(key):
        errors["key"] = _l("Use 2-60 small letters, digits, dots, dashes or underscores.")
    elif latest_template(key) is not None:
        errors["key"] = _l("A template with this key exists; edit it instead.")
    if family not in {f.value for f in PartnerFamily}:
        errors["family"] = _l("Unknown partner family.")
    if product_code and db.session.get(Product, product_code) is None:
        errors["product_code"] = _l("Choose a loan product.")
    if not (title or "").strip():
        errors["title"] = _l("A title is required.")
    if errors:
        raise ValidationFailed(errors)
    body = (body or "").replace("\r\n", "\n")
    check_template_body(body, family)
    template = AgreementTemplate(key=key, version=1, family=family,
                                 product_code=product_code or None, title=title.strip(),
                                 body=body, created_by_id=ctx.user.id if ctx.user else None)
    db.session.add(template)
    db.session.flush()
    audit.record(ctx, "agreement_template.create", template, key=key)
    return template


# --------------------------------------------------------------------------- content


def _template_context(partner: dict, terms: dict, bank: dict) -> dict:
    kind = partner["kind"]
    agreement = dict(terms)
    agreement["products_zh"] = "、".join(p["name_zh"] for p in terms["products"])
    start, end = terms["effective_from"], terms["expires_on"]
    agreement["term_months"] = (end.year - start.year) * 12 + end.month - start.month + (
        1 if end.day >= start.day else 0)
    agreement["effective_from"] = chinese_date(start)
    agreement["expires_on"] = chinese_date(end)
    return {
        "partner": {**partner, "kind_zh": KIND_ZH.get(kind, kind)},
        "bank": bank,
        "agreement": agreement,
        "family": FAMILY_OF.get(kind, PartnerFamily.service.value),
        "is_developer": kind in PROJECT_KINDS,
        "is_dealer": kind in BRAND_KINDS,
    }


def _parse(text: str) -> tuple[list[str], list[dict]]:
    """Rendered template text -> (preamble paragraphs, numbered clauses)."""
    preamble: list[str] = []
    clauses: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            title, _, title_en = line[3:].partition("|")
            clauses.append({"no": f"第{chinese_number(len(clauses) + 1)}条",
                            "title": title.strip(), "title_en": title_en.strip() or None,
                            "lines": []})
        elif clauses:
            lines = clauses[-1]["lines"]
            if line.startswith("- "):
                n = sum(1 for x in lines if x["n"]) + 1
                lines.append({"n": n, "text": line[2:].strip()})
            else:
                lines.append({"n": None, "text": line})
        else:
            preamble.append(line)
    return preamble, clauses


def _bank_party() -> dict:
    return {"name": current_app.config.get("BANK_LEGAL_NAME") or DEFAULT_BANK_NAME,
            "unit": current_app.config.get("BANK_UNIT_NAME") or DEFAULT_BANK_UNIT}


def build_content(agreement: Agreement, *, draft: bool | None = None,
                  dated: datetime | None = None) -> dict:
    """Everything the agreement document shows, as plain JSON-able data.

    Issue freezes this on the agreement; the PDF and the reading page both render from it.
    """
    org = agreement.org
    products = []
    for code in agreement.products:
        product = db.session.get(Product, code)
        products.append({"code": code, "name_zh": product.name_zh if product else code,
                         "name_en": product.name_en if product else code})
    terms = {"number": agreement.number, "version": agreement.version, "products": products,
             "projects": list(agreement.projects or []),
             "stage_guarantee": agreement.stage_guarantee, "brands": list(agreement.brands or []),
             "onsite_staff": agreement.onsite_staff, "bank_sla_hours": agreement.bank_sla_hours,
             "partner_doc_days": agreement.partner_doc_days,
             "effective_from": agreement.effective_from, "expires_on": agreement.expires_on}
    partner = {"name": org.name, "code": org.code, "kind": org.kind, "branch": org.branch}
    bank = _bank_party()
    template = agreement.template
    rendered = _compiled(template.body).render(**_template_context(partner, terms, bank))
    preamble, clauses = _parse(rendered)
    dated = dated or agreement.issued_at or agreement.created_at or utcnow()
    supersedes = agreement.supersedes
    return {
        "format": CONTENT_FORMAT,
        "draft": agreement.status == AS.draft.value if draft is None else draft,
        "number": agreement.number,
        "version": agreement.version,
        "supersedes": {"number": supersedes.number, "version": supersedes.version}
        if supersedes else None,
        "title": template.title,
        "template": {"key": template.key, "version": template.version},
        "bank": bank,
        "partner": {**partner, "kind_zh": KIND_ZH.get(org.kind, org.kind)},
        **{k: v for k, v in terms.items() if k not in ("effective_from", "expires_on")},
        "effective_from": agreement.effective_from.isoformat(),
        "expires_on": agreement.expires_on.isoformat(),
        "effective_from_zh": chinese_date(agreement.effective_from),
        "expires_on_zh": chinese_date(agreement.expires_on),
        "dated": dated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dated_zh": chinese_date(_bank_date(dated)),
        "preamble": preamble,
        "clauses": clauses,
    }


def document(agreement: Agreement) -> dict:
    """The content to show: frozen at issue, or built from the current draft."""
    return agreement.content or build_content(agreement)


def pdf_for(agreement: Agreement) -> pdf.RenderedPdf:
    """The agreement's PDF: for an issued agreement the very bytes issued, else a rendering."""
    if agreement.pdf_data is not None:
        return pdf.RenderedPdf(agreement.pdf_data, agreement.pdf_sha256, cached=True)
    return pdf.render(document(agreement))


# --------------------------------------------------------------------------- drafting


def _lines(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[\n;；]+", value)
    out = []
    for item in value:
        item = str(item).strip()
        if item and item not in out:
            out.append(item[:200])
    return out


def _int(value, field, errors, low, high):
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        errors[field] = _l("Enter a whole number.")
        return None
    if not low <= number <= high:
        errors[field] = _l("Enter a number from %(low)d to %(high)d.", low=low, high=high)
        return None
    return number


def _date(value, field, errors):
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        errors[field] = _l("Enter a date (YYYY-MM-DD).")
        return None


def clean_terms(org: Organization, data: dict) -> dict:
    """Validate the terms of an agreement for `org`; raise ValidationFailed with every error."""
    errors: dict = {}
    codes = _lines(data.get("products"))
    known = {p.code: p for p in db.session.scalars(select(Product).where(Product.code.in_(codes)))}
    if not codes:
        errors["products"] = _l("Choose at least one product.")
    elif any(c not in known or not known[c].active for c in codes):
        errors["products"] = _l("Choose loan products from the list.")
    out = {"products": sorted(codes)}
    out["projects"] = _lines(data.get("projects")) if org.kind in PROJECT_KINDS else []
    guarantee = (data.get("stage_guarantee") or "").strip()
    out["stage_guarantee"] = guarantee[:2000] or None if org.kind in PROJECT_KINDS else None
    out["brands"] = _lines(data.get("brands")) if org.kind in BRAND_KINDS else []
    out["onsite_staff"] = (data.get("onsite_staff") or "").strip()[:2000] or None
    out["bank_sla_hours"] = _int(data.get("bank_sla_hours", 72), "bank_sla_hours", errors, 1, 720)
    out["partner_doc_days"] = _int(data.get("partner_doc_days", 5), "partner_doc_days", errors,
                                   1, 90)
    start = _date(data.get("effective_from"), "effective_from", errors)
    end = _date(data.get("expires_on"), "expires_on", errors)
    if start and end:
        if end <= start:
            errors["expires_on"] = _l("The expiry date must be after the effective date.")
        elif (end - start).days > MAX_TERM_DAYS:
            errors["expires_on"] = _l("An agreement runs for at most five years.")
    out["effective_from"], out["expires_on"] = start, end
    if errors:
        raise ValidationFailed(errors)
    return out


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
    _require_manager(ctx)
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
        number, version = next_number(org, (_bank_date(at) if at else local_today()).year), 1
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
    _require_manager(ctx)
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
    today = today or local_today()
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
    _require_manager(ctx)
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


# --------------------------------------------------------------------------- lifecycle


def issue(ctx: Ctx, agreement: Agreement, *, at: datetime | None = None) -> Agreement:
    """Freeze the content, render the PDF once and keep it: this is the document to accept."""
    _require_manager(ctx)
    if agreement.status != AS.draft.value:
        raise StateConflict(_l("Only a draft can be issued."))
    now = at or utcnow()
    if agreement.expires_on < (_bank_date(at) if at else local_today()):
        raise StateConflict(_l("This agreement's expiry date has passed."))
    agreement.issued_at = now
    agreement.issued_by_id = ctx.user.id if ctx.user else None
    content = build_content(agreement, draft=False, dated=now)
    rendered = pdf.render(content)
    agreement.content = content
    agreement.content_sha256 = pdf.content_hash(content)
    agreement.pdf_sha256 = rendered.sha256
    agreement.pdf_data = rendered.data
    _move(ctx, agreement, AS.issued, pdf_sha256=rendered.sha256)
    events.agreement_issued(ctx, agreement)  # webhook and partner notifications, same txn
    return agreement


def accept(ctx: Ctx, agreement: Agreement, *, pdf_sha256: str | None = None,
           user_agent: str | None = None, at: datetime | None = None) -> AgreementAcceptance:
    """A partner admin of the agreement's organisation accepts the issued PDF; the proof is
    who, when, from which address and the SHA-256 of that PDF. Effective today -> active."""
    user = ctx.user
    if user is None or not user.is_partner or user.org_id != agreement.org_id:
        raise NotFound()
    if user.role != Role.partner_admin.value:
        raise Forbidden(_l("Only your organisation's partner administrator can accept an "
                           "agreement."))
    if agreement.status != AS.issued.value:
        raise StateConflict(_l("Only an issued agreement can be accepted."))
    if pdf_sha256 is not None and pdf_sha256.strip().lower() != agreement.pdf_sha256:
        raise StateConflict(_l("The agreement is not the one you read. Reload it, read it "
                               "again and accept."))
    if agreement.expires_on < (_bank_date(at) if at else local_today()):
        raise StateConflict(_l("This agreement's expiry date has passed."))
    acceptance = AgreementAcceptance(agreement=agreement, user_id=user.id,
                                     accepted_at=at or utcnow(), ip=ctx.ip,
                                     user_agent=(user_agent or "")[:300] or None,
                                     pdf_sha256=agreement.pdf_sha256)
    db.session.add(acceptance)
    _move(ctx, agreement, AS.accepted, pdf_sha256=agreement.pdf_sha256)
    if agreement.effective_from <= local_today():
        # Backdated (demo data): in force from the later of acceptance and the effective day.
        start = _day_start(agreement.effective_from)
        activate(ctx, agreement, at=max(at, start) if at else None)
    return acceptance


def activate(ctx: Ctx, agreement: Agreement, *, at: datetime | None = None,
             today: date | None = None) -> Agreement:
    """An accepted agreement comes into force on its effective date; the version it renews
    is superseded at the same moment."""
    if agreement.status != AS.accepted.value:
        raise StateConflict(_l("Only an accepted agreement can become active."))
    if agreement.effective_from > (today or local_today()):
        raise StateConflict(_l("This agreement is not yet effective."))
    now = at or utcnow()
    agreement.activated_at = now
    _move(ctx, agreement, AS.active)
    old = agreement.supersedes
    if old is not None and old.status == AS.active.value:
        old.ended_at = now
        _move(ctx, old, AS.superseded, by_version=agreement.version)
    return agreement


def terminate(ctx: Ctx, agreement: Agreement, reason: str, *,
              at: datetime | None = None) -> Agreement:
    _require_manager(ctx)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationFailed({"reason": _l("Write the reason for the termination.")})
    if not agreement.can_move(AS.terminated):
        raise StateConflict(_l("An agreement that is %(from)s cannot be terminated.",
                               **{"from": agreement.status}))
    agreement.terminated_at = at or utcnow()
    agreement.terminated_by_id = ctx.user.id if ctx.user else None
    agreement.termination_reason = reason[:2000]
    _move(ctx, agreement, AS.terminated, reason=reason[:200])
    return agreement


def roll_statuses(ctx: Ctx = SYSTEM, *, today: date | None = None,
                  org: Organization | None = None) -> dict[str, int]:
    """Bring statuses up to date with the calendar: accepted agreements whose day has come
    become active (superseding what they renew), and agreements past expiry expire."""
    today = today or local_today()
    scope = [Agreement.org_id == org.id] if org is not None else []
    counts = {"activated": 0, "expired": 0}
    due = db.session.scalars(select(Agreement).where(
        Agreement.status == AS.accepted.value, Agreement.effective_from <= today,
        Agreement.expires_on >= today, *scope).order_by(Agreement.id))
    for agreement in list(due):
        if _quietly(lambda a=agreement: activate(ctx, a, today=today)):
            counts["activated"] += 1
    lapsed = db.session.scalars(select(Agreement).where(
        Agreement.status.in_([AS.active.value, AS.issued.value, AS.accepted.value]),
        Agreement.expires_on < today, *scope).order_by(Agreement.id))
    for agreement in list(lapsed):
        if _quietly(lambda a=agreement: _expire(ctx, a)):
            counts["expired"] += 1
    return counts


def _expire(ctx: Ctx, agreement: Agreement) -> None:
    agreement.ended_at = utcnow()
    _move(ctx, agreement, AS.expired)


def _quietly(step) -> bool:
    """Run one roll step in a savepoint: when another request rolled the same agreement at the
    same moment, leave it to them instead of failing the page."""
    try:
        with db.session.begin_nested():
            step()
    except StateConflict:
        return False
    return True


# --------------------------------------------------------------------------- gating, warnings


def _in_force(today: date):
    """An agreement in force today: active (or accepted and due, before the daily roll)."""
    return and_(Agreement.status.in_([AS.active.value, AS.accepted.value]),
                Agreement.effective_from <= today, Agreement.expires_on >= today)


# Built once: every intake asks.
_COVERED = select(Agreement.products).where(Agreement.org_id == bindparam("org_id"),
                                            _in_force(bindparam("today")))


def covered_products(org: Organization, today: date | None = None) -> set[str]:
    rows = db.session.scalars(_COVERED, {"org_id": org.id, "today": today or local_today()})
    return {code for products in rows for code in (products or [])}


def check_product_covered(org: Organization, product, *, today: date | None = None) -> None:
    """Refuse a referral for a product no agreement of the organisation in force covers."""
    code = product.code if isinstance(product, Product) else str(product)
    covered = covered_products(org, today)
    if code in covered:
        return
    if not isinstance(product, Product):
        product = db.session.get(Product, code)
    name = product.display_name(str(get_locale() or "zh_CN")) if product else code
    if not covered:
        raise Forbidden(_l("Your organisation has no cooperation agreement in force, so it "
                           "cannot submit referrals. Please contact your channel manager."))
    raise Forbidden(_l("Your cooperation agreement does not cover %(product)s. Please contact "
                       "your channel manager to add it.", product=name))


def expiring_soon(subject, days: int = 30, *, today: date | None = None) -> list[Agreement]:
    """Agreements in force that end within `days` and have no accepted renewal yet.

    `subject`: an Organization, or a User (partner: their organisation's; channel manager: the
    partners they look after; admin: all).
    """
    today = today or local_today()
    renewal = aliased(Agreement)
    query = (select(Agreement).join(Agreement.org)
             .where(Agreement.status == AS.active.value, Agreement.expires_on >= today,
                    Agreement.expires_on <= today + timedelta(days=days),
                    ~exists().where(renewal.supersedes_id == Agreement.id,
                                    renewal.status.in_([AS.accepted.value, AS.active.value])))
             .order_by(Agreement.expires_on, Agreement.id))
    if isinstance(subject, Organization):
        query = query.where(Agreement.org_id == subject.id)
    elif isinstance(subject, User):
        if subject.is_partner:
            query = query.where(Agreement.org_id == subject.org_id)
        elif subject.role == Role.channel_manager.value:
            query = query.where(Organization.channel_manager_id == subject.id)
        elif subject.role != Role.admin.value:
            return []
    else:
        return []
    return list(db.session.scalars(query))


# --------------------------------------------------------------------------- reading


def visible_agreements(user: User) -> Select:
    """Agreements the user may see: their organisation's (not drafts) or, for channel managers
    and admins, all."""
    query = select(Agreement)
    if user.is_partner:
        return query.where(Agreement.org_id == user.org_id, Agreement.status != AS.draft.value)
    if user.role in MANAGER_ROLES:
        return query
    return query.where(False)


def get_for(user: User, agreement_id: int) -> Agreement:
    """Load an agreement the user may see; another organisation's is simply not found."""
    agreement = db.session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound()
    if user.is_partner:
        if agreement.org_id != user.org_id or agreement.status == AS.draft.value:
            raise NotFound()
    elif user.role not in MANAGER_ROLES:
        raise NotFound()
    return agreement


def search(query: Select, *, status: str | None = None, org_id: int | None = None,
           q: str | None = None, manager_id: int | None = None,
           expiring_days: int | None = None) -> Select:
    if status:
        query = query.where(Agreement.status == status)
    if org_id:
        query = query.where(Agreement.org_id == org_id)
    if q:
        like = f"%{q.strip()}%"
        query = query.join(Agreement.org).where(or_(Agreement.number.ilike(like),
                                                    Organization.name.ilike(like),
                                                    Organization.code.ilike(like)))
        if manager_id:
            query = query.where(Organization.channel_manager_id == manager_id)
    elif manager_id:
        query = query.join(Agreement.org).where(Organization.channel_manager_id == manager_id)
    if expiring_days:
        today = local_today()
        query = query.where(Agreement.status == AS.active.value, Agreement.expires_on >= today,
                            Agreement.expires_on <= today + timedelta(days=expiring_days))
    return query


def product_names(locale: str) -> dict[str, str]:
    return {p.code: p.display_name(locale) for p in db.session.scalars(select(Product))}


def history(agreement: Agreement) -> list[Agreement]:
    """Every version of the agreement's number, newest first."""
    return list(db.session.scalars(select(Agreement).where(Agreement.number == agreement.number)
                                   .order_by(Agreement.version.desc())))


# --------------------------------------------------------------------------- verification


@dataclass
class Verification:
    sha256: str
    agreement: Agreement
    acceptance: AgreementAcceptance | None
    # "accepted": the accepted PDF; "issued": the issued PDF, not (yet) accepted;
    # "content": the content hash printed in the footer (a paper copy).
    matched: str


HEX64 = re.compile(r"^[0-9a-f]{64}$")


def verify(value: bytes | str) -> Verification | None:
    """Which agreement, version and acceptance a PDF (bytes) or a SHA-256 (hex) matches."""
    if isinstance(value, bytes | bytearray):
        digest = pdf.sha256(bytes(value))
    else:
        digest = re.sub(r"\s+", "", value or "").lower()
        if not HEX64.match(digest):
            raise ValidationFailed({"sha256": _l("Enter the 64 hexadecimal characters of a "
                                                 "SHA-256.")})
    acceptance = db.session.scalar(select(AgreementAcceptance)
                                   .where(AgreementAcceptance.pdf_sha256 == digest)
                                   .order_by(AgreementAcceptance.id.desc()).limit(1))
    if acceptance is not None:
        return Verification(digest, acceptance.agreement, acceptance, "accepted")
    agreement = db.session.scalar(select(Agreement).where(Agreement.pdf_sha256 == digest)
                                  .order_by(Agreement.id.desc()).limit(1))
    if agreement is not None:
        return Verification(digest, agreement, None, "issued")
    agreement = db.session.scalar(select(Agreement).where(Agreement.content_sha256 == digest)
                                  .order_by(Agreement.id.desc()).limit(1))
    if agreement is not None:
        return Verification(digest, agreement, agreement.acceptance, "content")
    return None
