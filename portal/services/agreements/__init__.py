"""Cooperation agreements (合作协议): templates, drafting, issue, acceptance with proof, renewal,
termination, verification of PDFs, and the referral gating that rests on them.

One concern per module; callers use the names re-exported here (`agreements.issue(...)`):

  chinese        numerals and dates as the document writes them (pure)
  rendering      the template sandbox, its context and the clause parser
  templates      versioned templates per partner family
  terms          the terms a manager enters (pydantic schema)
  drafting       draft, update, renew
  content        the frozen content of a document and its PDF
  lifecycle      issue, accept, activate, terminate, the calendar roll
  gating         which products a partner may refer now
  expiry         agreements about to end: warnings and notices
  reading        visibility, search, history
  verification   which agreement a PDF or SHA-256 is
  maintenance    the worker's scheduled share
  pdf, defaults  WeasyPrint rendering with its disk cache; the starting templates
"""

from __future__ import annotations

from ...bank_time import bank_today as local_today
from . import pdf
from .access import MANAGER_ROLES, SYSTEM
from .chinese import chinese_date, chinese_number
from .content import CONTENT_FORMAT, build_content, document, pdf_for
from .drafting import draft, next_number, renew, renewal_defaults, successor, update_draft
from .expiry import EXPIRY_NOTICE_DAYS, expiring_soon, send_expiry_notices
from .gating import check_product_covered, covered_products
from .lifecycle import accept, activate, issue, roll_statuses, terminate
from .maintenance import maintain
from .reading import get_for, history, product_names, search, visible_agreements
from .rendering import KIND_ZH
from .templates import (
    check_template_body,
    create_template,
    current_templates,
    default_template_for,
    edit_template,
    ensure_default_templates,
    family_of,
    latest_template,
    template_versions,
    templates_for,
)
from .terms import MAX_TERM_DAYS, AgreementTerms, clean_terms
from .verification import Verification, verify

__all__ = [
    "CONTENT_FORMAT", "EXPIRY_NOTICE_DAYS", "KIND_ZH", "MANAGER_ROLES", "MAX_TERM_DAYS",
    "SYSTEM", "AgreementTerms", "Verification", "accept", "activate", "build_content",
    "check_product_covered", "check_template_body", "chinese_date", "chinese_number",
    "clean_terms", "covered_products", "create_template", "current_templates",
    "default_template_for", "document", "draft", "edit_template", "ensure_default_templates",
    "expiring_soon", "family_of", "get_for", "history", "issue", "latest_template", "local_today",
    "maintain", "next_number", "pdf", "pdf_for", "product_names", "renew", "renewal_defaults",
    "roll_statuses", "search", "send_expiry_notices", "successor", "template_versions",
    "templates_for", "terminate", "update_draft", "verify", "visible_agreements",
]
