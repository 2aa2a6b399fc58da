"""Stipulations and documents: requests, uploads checked by content, reviews, safe storage."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from flask import current_app

from models import Document, Referral, Stipulation, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, conditions, events, referrals
from .errors import Forbidden, NotFound, StateConflict, ValidationFailed
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


MAX_FILES = 20  # one submit from a phone: a handful of photos, never a folder
MAX_ITEMS = 10  # free-text items in one request
LABEL_MAX = 200  # an item's name in the officer's words
# One submit of files for an item may carry this many full-size files (phone photos run to a
# few MB each; the files past the limit of one go in the next submit).
FILES_AT_FULL_SIZE = 5


def item_request_limit() -> int:
    """The largest request of files for one item (the app's limit is one file's)."""
    return current_app.config["UPLOAD_MAX_BYTES"] * FILES_AT_FULL_SIZE + 2 * 1024 * 1024


def _checked(data: bytes):
    """What to store of one file, or raise ValidationFailed({"file": why})."""
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if not data:
        raise ValidationFailed({"file": _l("Choose a file to upload.")})
    if len(data) > limit:
        raise ValidationFailed({"file": _l("The file is larger than %(mb)d MB.",
                                           mb=limit // (1024 * 1024))})
    try:
        return check(data, max_pixels=current_app.config["UPLOAD_MAX_PIXELS"])
    except Refused as refusal:
        raise ValidationFailed({"file": refusal.message}) from None


def _may_add(ctx: Ctx, referral: Referral) -> None:
    if State(referral.status) in TERMINAL:
        raise StateConflict(_l("This referral is closed; no more documents can be added."))
    if ctx.user is not None and ctx.user.is_partner and ctx.user.org_id != referral.org_id:
        raise Forbidden()


def _item_for(referral: Referral, kind: str, label: str | None = None) -> Stipulation | None:
    return next((s for s in referral.stipulations if s.kind == kind and s.label == label), None)


def _store(ctx: Ctx, referral: Referral, item: Stipulation, filename: str, data: bytes,
           checked) -> Document:
    # What is stored, and hashed, is what the check returned: an image is drawn again.
    stored = checked.data
    now = utcnow()
    key = f"{now:%Y/%m}/{uuid.uuid4().hex}{ALLOWED_TYPES[checked.content_type]}"
    target = _storage_root() / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(stored)
    document = Document(kind=item.kind, filename=_safe_filename(filename),
                        content_type=checked.content_type, size=len(stored),
                        sha256=hashlib.sha256(stored).hexdigest(), storage_key=key,
                        uploaded_by_id=ctx.user.id if ctx.user else None, uploaded_at=now)
    referral.documents.append(document)
    item.documents.append(document)
    if item.status != "accepted":
        item.status = "uploaded"
    db.session.flush()
    received = hashlib.sha256(data).hexdigest()
    audit.record(ctx, "document.upload", document, referral=referral.id, kind=item.kind,
                 item=item.id, sha256=document.sha256, size=document.size,
                 **({} if received == document.sha256 else {"received_sha256": received,
                                                            "received_size": len(data)}))
    return document


def upload(ctx: Ctx, referral: Referral, kind: str, filename: str, data: bytes) -> Document:
    """One file of a document type: it answers the item of that type (opened if none)."""
    _may_add(ctx, referral)
    errors = {}
    if kind not in DOCUMENT_KINDS:
        errors["kind"] = _l("Choose what kind of document this is.")
    try:
        checked = _checked(data)
    except ValidationFailed as refusal:
        errors.update(refusal.fields)
    if errors:
        raise ValidationFailed(errors)
    item = _item_for(referral, kind)
    if item is None:
        item = Stipulation(kind=kind, requested_at=utcnow())
        referral.stipulations.append(item)
    return _store(ctx, referral, item, filename, data, checked)


def item_of(referral: Referral, item_id: int) -> Stipulation:
    """One item of this referral (load-then-authorise: the referral is already the caller's)."""
    item = next((s for s in referral.stipulations if s.id == item_id), None)
    if item is None:
        raise NotFound()
    return item


def upload_files(ctx: Ctx, referral: Referral, item: Stipulation,
                 files: list[tuple[str, bytes]], *, replace: bool = False
                 ) -> tuple[list[Document], list[tuple[str, str]]]:
    """Several files for one item in one go. Each file is checked on its own: a refused file is
    left out, with its reason, and the others are kept — a partner who photographed five pages
    at the counter does not take the four good ones again. When every file is refused nothing
    is written and the refusal is raised.

    `replace`: the files sent before for this item and not yet reviewed are superseded (the
    partner sends a better scan); reviewed files keep their decision."""
    _may_add(ctx, referral)
    if item.referral_id != referral.id:
        raise NotFound()
    if item.status == "accepted":
        raise StateConflict(_l("The bank has accepted this item; nothing more is needed for it."))
    files = [(name, data) for name, data in files if name or data]
    if not files:
        raise ValidationFailed({"files": _l("Choose at least one file, or take a photo.")})
    if len(files) > MAX_FILES:
        raise ValidationFailed({"files": _l("Send at most %(n)d files at a time.", n=MAX_FILES)})
    checked, refused = [], []
    for name, data in files:
        try:
            checked.append((name, data, _checked(data)))
        except ValidationFailed as refusal:
            refused.append((_safe_filename(name), str(refusal.fields["file"])))
    if not checked:
        raise ValidationFailed({"files": "; ".join(f"{n}: {why}" for n, why in refused)},
                               _l("No file was uploaded."))
    if replace:
        for old in conditions.pending_files(item):
            old.status = "superseded"
    stored = [_store(ctx, referral, item, name, data, c) for name, data, c in checked]
    return stored, refused


def _settle_older(item: Stipulation | None, reviewed: Document) -> None:
    """Files of the item sent before the one reviewed and still waiting were replaced by it."""
    if item is None:
        return
    for older in item.documents:
        if older.status == "pending" and older.id < reviewed.id:
            older.status = "superseded"


def _decide(ctx: Ctx, document: Document, accept: bool, reason: str | None,
            note: str | None) -> None:
    document.status = "accepted" if accept else "rejected"
    document.reviewed_by_id = ctx.user.id
    document.reviewed_at = utcnow()
    document.review_reason = reason
    document.review_note = note
    audit.record(ctx, "document.accept" if accept else "document.reject", document,
                 referral=document.referral_id, item=document.stipulation_id, reason=reason,
                 note=note)


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
    _decide(ctx, document, accept, reason, (note or "").strip() or None)
    item = document.stipulation or _item_for(document.referral, document.kind)
    _settle_older(item, document)
    if item is not None:
        item.status = document.status


def review_item(ctx: Ctx, item: Stipulation, *, accept: bool, reason: str | None = None,
                note: str | None = None) -> None:
    """Accept or reject an item: every file of it waiting for review gets the decision.

    A rejection asks the partner for a new upload: `reason` (required) is what the partner reads;
    `note` is the officer's own and stays inside the bank."""
    if ctx.user is None or not ctx.user.is_bank:
        raise Forbidden()
    if State(item.referral.status) in TERMINAL:
        raise StateConflict(_l("This referral is closed; its documents are no longer reviewed."))
    reason = (reason or "").strip() or None
    if not accept and not reason:
        raise ValidationFailed({"reason": _l("Say why the item is rejected and what to send "
                                             "instead.")})
    waiting = conditions.pending_files(item)
    if not waiting:
        raise StateConflict(_l("No file of this item is waiting for review."))
    note = (note or "").strip() or None
    for document in waiting:
        _decide(ctx, document, accept, reason, note)
    item.status = "accepted" if accept else "rejected"
    if not accept:
        events.item_rejected(ctx, item.referral, item, waiting[-1])


def _clean_labels(labels: list[str] | None) -> list[str]:
    out: list[str] = []
    for text in labels or []:
        text = " ".join((text or "").split())
        if text and text not in out:
            out.append(text)
    if any(len(t) > LABEL_MAX for t in out):
        raise ValidationFailed({"items": _l("Name each item in at most %(n)d characters.",
                                            n=LABEL_MAX)})
    if len(out) > MAX_ITEMS:
        raise ValidationFailed({"items": _l("Ask for at most %(n)d items of your own at a time.",
                                            n=MAX_ITEMS)})
    return out


def request_documents(ctx: Ctx, referral: Referral, kinds: list[str], note: str,
                      expected_version: int | None = None, at=None, *,
                      internal_note: str | None = None, items: list[str] | None = None) -> None:
    """Ask the partner for exactly these items: a document type each of `kinds`, and each of
    `items` (named in the officer's words, when it is on no list); then hand the clock over.

    `note` is what the partner reads (on each item, in the notice and the webhook);
    `internal_note`, if given, stays inside the bank on the timeline."""
    kinds = list(dict.fromkeys(k for k in kinds if k in DOCUMENT_KINDS))
    labels = _clean_labels(items)
    if not kinds and not labels:
        raise ValidationFailed({"kinds": _l("Choose at least one document.")})
    now = at or utcnow()
    asked = [(kind, None) for kind in kinds] + [("other", label) for label in labels]
    for kind, label in asked:
        item = _item_for(referral, kind, label)
        if item is None:
            item = Stipulation(kind=kind, label=label)
            referral.stipulations.append(item)
        item.requested = True
        item.status = "missing"
        item.note = note
        item.requested_by_id = ctx.user.id if ctx.user else None
        item.requested_at = now
    referrals.transition(ctx, referral, State.documents_requested.value,
                         note=internal_note or note, partner_note=note,
                         expected_version=expected_version, at=now)


def checklist(referral: Referral) -> list[dict]:
    """The bank's view: every item (the product's checklist and what was asked), its files."""
    return [{"stipulation": s, "document": s.documents[-1] if s.documents else None,
             "files": list(s.documents), "status": conditions.item_status(s, referral),
             "pending": conditions.pending_files(s)}
            for s in referral.stipulations]
