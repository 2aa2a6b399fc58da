"""Agreement templates: one per partner family (or product), versioned. An edit is a new version
and every earlier version stays as it was: an agreement always knows the text it was made from."""

from __future__ import annotations

import re

from jinja2 import TemplateError
from sqlalchemy import and_, func, select

from models import FAMILY_OF, AgreementTemplate, Organization, PartnerFamily, Product
from portal.i18n import lazy_gettext as _l

from ...extensions import db
from .. import Ctx, audit
from ..errors import ValidationFailed
from .access import SYSTEM, require_admin
from .defaults import DEFAULT_BODY, DEFAULT_TEMPLATES
from .rendering import compiled, parse, sample_contexts

TEMPLATE_KEY = re.compile(r"^[a-z0-9_.-]{2,60}$")


def family_of(org: Organization) -> str:
    return FAMILY_OF.get(org.kind, PartnerFamily.service.value)


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


def check_template_body(body: str, family: str) -> None:
    """Compile the body in the sandbox and render it for every partner type of the family."""
    if not (body or "").strip():
        raise ValidationFailed({"body": _l("The template body is empty.")})
    try:
        template = compiled(body)
        clauses = [parse(template.render(**c))[1] for c in sample_contexts(family)]
    except TemplateError as err:
        raise ValidationFailed({"body": _l("The template does not render: %(error)s",
                                           error=str(err))}) from None
    if not all(clauses):
        raise ValidationFailed({"body": _l("The template has no clause: start each clause with "
                                           "a line \"## title\".")})


def edit_template(ctx: Ctx, template: AgreementTemplate, *, body: str, title: str | None = None,
                  note: str | None = None) -> AgreementTemplate:
    """Save an edit as the template's next version; every earlier version stays as it was."""
    require_admin(ctx)
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


def create_template(ctx: Ctx, *, key: str, family: str, title: str, body: str,
                    product_code: str | None = None) -> AgreementTemplate:
    require_admin(ctx)
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
