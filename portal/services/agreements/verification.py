"""Checking a PDF or a SHA-256 against the portal's records (the public verification page)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from models import Agreement, AgreementAcceptance
from portal.i18n import lazy_gettext as _l

from ...extensions import db
from ..errors import ValidationFailed
from . import pdf

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Verification:
    sha256: str
    agreement: Agreement
    acceptance: AgreementAcceptance | None
    # "accepted": the accepted PDF; "issued": the issued PDF, not (yet) accepted;
    # "content": the content hash printed in the footer (a paper copy).
    matched: str


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
