"""Stipulations and documents: requests, uploads checked by content, reviews, safe storage."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l

from models import Document, Referral, Stipulation, utcnow

from ..extensions import db
from . import Ctx, audit, referrals
from .errors import Forbidden, StateConflict, ValidationFailed
from .lifecycle import TERMINAL, State
from .reference import DOCUMENT_KINDS
from .upload_checks import ALLOWED_TYPES, Refused, check


def _storage_root() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def path_of(document: Document) -> Path:
    return _storage_root() / document.storage_key


def _safe_filename(name: str) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    return "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?')[:200] or "upload"


def upload(ctx: Ctx, referral: Referral, kind: str, filename: str, data: bytes) -> Document:
    if State(referral.status) in TERMINAL:
        raise StateConflict(_l("This referral is closed; no more documents can be added."))
    if ctx.user is not None and ctx.user.is_partner and ctx.user.org_id != referral.org_id:
        raise Forbidden()
    errors = {}
    if kind not in DOCUMENT_KINDS:
        errors["kind"] = _l("Choose what kind of document this is.")
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    checked = None
    if not data:
        errors["file"] = _l("Choose a file to upload.")
    elif len(data) > limit:
        errors["file"] = _l("The file is larger than %(mb)d MB.", mb=limit // (1024 * 1024))
    else:
        try:
            checked = check(data, max_pixels=current_app.config["UPLOAD_MAX_PIXELS"])
        except Refused as refusal:
            errors["file"] = refusal.message
    if errors:
        raise ValidationFailed(errors)
    # What is stored, and hashed, is what the check returned: an image is drawn again.
    stored = checked.data
    now = utcnow()
    key = f"{now:%Y/%m}/{uuid.uuid4().hex}{ALLOWED_TYPES[checked.content_type]}"
    target = _storage_root() / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(stored)
    document = Document(kind=kind, filename=_safe_filename(filename),
                        content_type=checked.content_type, size=len(stored),
                        sha256=hashlib.sha256(stored).hexdigest(), storage_key=key,
                        uploaded_by_id=ctx.user.id if ctx.user else None, uploaded_at=now)
    referral.documents.append(document)
    stipulation = next((s for s in referral.stipulations if s.kind == kind), None)
    if stipulation is None:
        stipulation = Stipulation(kind=kind, requested_at=now)
        referral.stipulations.append(stipulation)
    if stipulation.status != "accepted":
        stipulation.status = "uploaded"
    db.session.flush()
    received = hashlib.sha256(data).hexdigest()
    audit.record(ctx, "document.upload", document, referral=referral.id, kind=kind,
                 sha256=document.sha256, size=document.size,
                 **({} if received == document.sha256 else {"received_sha256": received,
                                                            "received_size": len(data)}))
    return document


def review(ctx: Ctx, document: Document, *, accept: bool, reason: str | None = None,
           note: str | None = None) -> None:
    """Accept or reject an upload. `reason` is what the partner reads about a rejection (what to
    send instead); `note` is the officer's own finding and stays inside the bank."""
    if ctx.user is None or not ctx.user.is_bank:
        raise Forbidden()
    reason = (reason or "").strip() or None
    if not accept and not reason:
        raise ValidationFailed({"reason": _l("Say why the document is rejected.")})
    if document.status != "pending":
        raise StateConflict(_l("This document has already been reviewed."))
    document.status = "accepted" if accept else "rejected"
    document.reviewed_by_id = ctx.user.id
    document.reviewed_at = utcnow()
    document.review_reason = reason
    document.review_note = (note or "").strip() or None
    stipulation = next((s for s in document.referral.stipulations if s.kind == document.kind), None)
    if stipulation is not None:
        stipulation.status = document.status
    audit.record(ctx, "document.accept" if accept else "document.reject", document,
                 referral=document.referral_id, reason=reason, note=document.review_note)


def request_documents(ctx: Ctx, referral: Referral, kinds: list[str], note: str,
                      expected_version: int | None = None, at=None, *,
                      internal_note: str | None = None) -> None:
    """Ask the partner for documents: open a stipulation per kind and hand the clock over.

    `note` is what the partner reads (on the checklist, in the notice and the webhook);
    `internal_note`, if given, stays inside the bank on the timeline."""
    kinds = [k for k in kinds if k in DOCUMENT_KINDS]
    if not kinds:
        raise ValidationFailed({"kinds": _l("Choose at least one document.")})
    now = at or utcnow()
    by_kind = {s.kind: s for s in referral.stipulations}
    for kind in kinds:
        stipulation = by_kind.get(kind)
        if stipulation is None:
            referral.stipulations.append(Stipulation(
                kind=kind, status="missing", note=note,
                requested_by_id=ctx.user.id if ctx.user else None,
                requested_at=now))
        else:
            stipulation.status = "missing"
            stipulation.note = note
            stipulation.requested_by_id = ctx.user.id if ctx.user else None
            stipulation.requested_at = now
    referrals.transition(ctx, referral, State.documents_requested.value,
                         note=internal_note or note, partner_note=note,
                         expected_version=expected_version, at=now)


def checklist(referral: Referral) -> list[dict]:
    latest: dict[str, Document] = {}
    for doc in referral.documents:
        latest[doc.kind] = doc
    return [{"stipulation": s, "document": latest.get(s.kind)} for s in referral.stipulations]
