"""What an agreement document says, as plain JSON-able data: frozen on the agreement at issue,
and what both the PDF and the reading page render from."""

from __future__ import annotations

from datetime import datetime

from models import Agreement, AgreementStatus, Product, utcnow

from ...bank_time import bank_date
from ...extensions import db
from . import pdf
from .chinese import chinese_date
from .rendering import KIND_ZH, bank_party, compiled, parse, template_context

# Bumped when the shape of the content changes; frozen content keeps the format it was made in.
CONTENT_FORMAT = 1


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
    partner = {"name": org.name, "code": org.code, "kind": org.kind,
               "branch": org.branch.name if org.branch else None}
    bank = bank_party()
    template = agreement.template
    rendered = compiled(template.body).render(**template_context(partner, terms, bank))
    preamble, clauses = parse(rendered)
    dated = dated or agreement.issued_at or agreement.created_at or utcnow()
    supersedes = agreement.supersedes
    return {
        "format": CONTENT_FORMAT,
        "draft": agreement.status == AgreementStatus.draft.value if draft is None else draft,
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
        "dated_zh": chinese_date(bank_date(dated)),
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
