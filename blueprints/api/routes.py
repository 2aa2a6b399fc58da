"""HTTP API v1 (docs/contract.md): referrals, documents, transitions and agreements for other
systems.

Views stay thin: parse with the schemas (schemas.py), authorize, call the same services the web
pages use, shape the response with the schemas. Each view declares itself for the OpenAPI
document (`@operation`, openapi.py); authentication and parsing live in common.py, the
Idempotency-Key in idempotency.py.
"""

from __future__ import annotations

from functools import wraps
from io import BytesIO

from flask import current_app, request, send_file
from pydantic import TypeAdapter
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import selectinload

from models import Agreement, Organization, Referral, User
from portal.extensions import db
from portal.i18n import lazy_gettext as _l
from portal.services import (
    agreements,
    branches,
    conditions,
    decisions,
    disclosure,
    documents,
    referral_rows,
    referrals,
    sites,
)
from portal.services.errors import NotFound, ValidationFailed
from portal.services.lifecycle import State
from portal.services.reference import DOCUMENT_KINDS

from . import schemas
from .common import (
    TooLarge,
    bp,
    ctx,
    json_body,
    json_response,
    page_of,
    parse,
    partner_only,
    rate_limited,
    user,
)
from .idempotency import claim_key, idempotent
from .openapi import PDF, operation

__all__ = ["bp"]

# --- shaping responses -------------------------------------------------------------------------

def _timeline(referral: Referral, caller: User) -> list[dict]:
    if caller.is_partner:  # what a partner reads is decided in services/disclosure.py
        return [{"at": e["at"], "from": e["from_state"], "to": e["to_state"],
                 "note": e["partner_note"]} for e in disclosure.timeline(referral, by=False)]
    return [{"at": e.at, "from": e.from_state, "to": e.to_state,
             "note": disclosure.bank_note(e.note, e.partner_note)} for e in referral.events]


def _items(referral: Referral, caller: User) -> list[dict]:
    """Item by item, shaped by services/disclosure.py for every caller (no internal note)."""
    shown = conditions.visible(referral) if caller.is_partner else referral.stipulations
    out = []
    for entry in shown:
        view = disclosure.item(entry, referral)
        out.append({
            "id": view["id"], "kind": view["kind"], "label": view["label"],
            "requested": view["requested"], "status": view["status"],
            "waiting_on_partner": view["waiting_on_partner"], "note": view["request_note"],
            "reason": view["reason"],
            "files": [{"id": f["id"], "filename": f["filename"], "status": f["status"],
                       "uploaded_at": f["uploaded_at"]} for f in view["files"]]})
    return out


def _referral_fields(referral: Referral, caller: User, timeline: list | None = None) -> dict:
    """A referral as schemas.ReferralOut takes it. `timeline`: its lines as a list read them
    (disclosure.timelines)."""
    return {
        "id": referral.id,
        "external_ref": referral.external_ref,
        "org_code": referral.org.code,
        "product": referral.product_code,
        "status": referral.status,
        "customer_class": referral.customer_class,
        "buyer": {"name": referral.buyer_name,
                  "national_id_masked": referral.national_id_masked,
                  "mobile_masked": referral.mobile_masked},
        "amount": float(referral.amount),
        "term_months": referral.term_months,
        "submitted_at": referral.submitted_at,
        "status_changed_at": referral.status_changed_at,
        "clock": referral.clock,
        "decline_reason": referral.decline_reason,
        "version": referral.version,
        "documents": [{"kind": s.kind, "status": s.status} for s in referral.stipulations],
        "stipulations": _items(referral, caller),
        "timeline": _timeline(referral, caller) if timeline is None else timeline,
        # The same for bank and partner callers: the terms are written for the partner.
        **disclosure.loan_terms(referral),
        "site": ({"id": referral.site.id, "code": referral.site.code,
                  "name": disclosure.partner_text(referral.site, "name")}
                 if referral.site else None),
        "assigned_to": ({"id": referral.assigned_to.id, "name": referral.assigned_to.name}
                        if not caller.is_partner and referral.assigned_to else None),
    }


def _hidden_from(caller: User) -> set | None:
    # Who works on a referral inside the bank is not the partner's business.
    return {"assigned_to"} if caller.is_partner else None


def _referral_out(referral: Referral, caller: User) -> dict:
    return schemas.ReferralOut.model_validate(_referral_fields(referral, caller)).model_dump(
        mode="json", by_alias=True, exclude=_hidden_from(caller))


# A page of referrals validated and written by pydantic in one pass: a model built, dumped to
# Python and written by json.dumps per referral was a fifth of the list (issue 15).
_REFERRAL_PAGE = TypeAdapter(list[schemas.ReferralOut])


def _referral(referral_id: int) -> Referral:
    """Load-then-authorize: a referral the caller may see, or 404 (never 403)."""
    if not 1 <= referral_id <= schemas.MAX_ID:
        raise NotFound()
    return referrals.get_for(user(), referral_id)


# --- referrals ---------------------------------------------------------------------------------

@bp.route("/referrals", methods=["POST"])
@operation(
    "submitReferral", "Submit a buyer referral (partner roles)", tag="referrals",
    description="201 with the referral. A buyer another partner registered for this product "
                "within the protection window gives 201 with `status: conflict` (the response "
                "names no other partner); one your organisation registered gives 409 "
                "`already_registered`.",
    body=schemas.ReferralIn,
    responses={201: (schemas.ReferralOut, "The referral.", {"Location": {
        "description": "The referral's address.", "schema": {"type": "string"}}})},
    errors=("403", "409", "422"))
@rate_limited
@idempotent(claim_late=True)
def submit_referral():
    partner_only()
    body = json_body(schemas.ReferralIn)
    caller = user()
    try:
        # The agreement rules (which products the partner may refer) apply in prepare.
        intake = referrals.prepare(ctx(), caller.org, body.intake())
        replay = claim_key()
        if replay is not None:
            return replay
        result = referrals.register(ctx(), intake)
    except ValidationFailed as exc:
        fields = {schemas.INTAKE_FIELDS.get(k, k): v for k, v in exc.fields.items()}
        raise ValidationFailed(fields, exc.message) from None
    response = json_response(_referral_out(result.referral, caller), 201)
    response.headers["Location"] = f"{request.script_root}/api/v1/referrals/{result.referral.id}"
    return response


@branches.per_scope
def _list_statements(scope: branches.Scope, given: tuple[str, ...]) -> tuple[Select, Select]:
    """The list's page and count statements for a caller's scope and the filters `given` (their
    values bound at execution), built once and kept."""
    query = referrals.visible_referrals(scope)
    if "status" in given:
        query = query.where(Referral.status == bindparam("status"))
    if "external_ref" in given:
        query = query.where(Referral.external_ref == bindparam("external_ref"))
    if "org_code" in given:
        query = query.join(Organization, Organization.id == Referral.org_id).where(
            Organization.code == bindparam("org_code"))
    return (referral_rows.statement(query, for_bank=not scope.is_partner),
            select(func.count()).select_from(query.subquery()))


@bp.route("/referrals", methods=["GET"])
@operation("listReferrals", "Your organisation's referrals (bank roles: all), newest first",
           tag="referrals", query=schemas.ListQuery,
           responses={200: (schemas.ReferralList, "A page of referrals.")}, errors=("422",))
@rate_limited
def list_referrals():
    args = parse(schemas.ListQuery, request.args.to_dict())
    caller = user()
    org_code = args.org_code.upper() if args.org_code and caller.is_bank else None
    filters = {"status": args.status, "external_ref": args.external_ref, "org_code": org_code}
    given = tuple(name for name, value in filters.items() if value)
    params = {name: filters[name] for name in given}
    page_statement, count_statement = _list_statements(caller, given)
    if args.external_ref:  # narrower than partner and status: count those referrals
        total = db.session.scalar(count_statement, params)
    else:  # the whole scope: counted from the tally, not by reading every referral in it
        total = referrals.visible_count(
            caller, statuses=(args.status,) if args.status else None, org_code=org_code)
    rows = referral_rows.page(page_statement, {
        **params, "limit": args.per_page, "offset": (args.page - 1) * args.per_page})
    lines = disclosure.timelines([r.id for r in rows], for_partner=caller.is_partner)
    hidden = _hidden_from(caller)
    items = _REFERRAL_PAGE.dump_json(
        _REFERRAL_PAGE.validate_python([_referral_fields(r, caller, lines[r.id]) for r in rows]),
        by_alias=True, exclude={"__all__": hidden} if hidden else None).decode()
    return current_app.response_class(
        f'{{"items":{items},"page":{args.page},"per_page":{args.per_page},"total":{total}}}',
        mimetype="application/json")


@bp.route("/referrals/<int:referral_id>", methods=["GET"])
@operation("getReferral", "One referral with its timeline", tag="referrals",
           responses={200: (schemas.ReferralOut, "The referral.")}, errors=("404",))
@rate_limited
def get_referral(referral_id: int):
    return json_response(_referral_out(_referral(referral_id), user()))


UPLOAD_FORM = {"multipart/form-data": {
    "schema": {
        "type": "object", "required": ["file", "kind"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "kind": {"type": "string", "enum": list(DOCUMENT_KINDS)},
        },
    },
    "encoding": {"file": {"contentType": "application/pdf, image/jpeg, image/png, "
                                         "application/octet-stream"}},
}}


@bp.route("/referrals/<int:referral_id>/documents", methods=["POST"])
@operation("uploadDocument", "Upload a document (PDF, JPEG or PNG) for a referral",
           tag="referrals", body=UPLOAD_FORM,
           description="A file over the upload limit (10 MB unless configured otherwise) gives "
                       "413 with `fields.file`. Files are read by their content: anything that "
                       "is not a whole PDF, JPEG or PNG, a PDF with JavaScript, launch or other "
                       "active actions, embedded or attached files, or content after its last "
                       "`%%EOF`, a password-protected PDF, and an image over the pixel limit "
                       "(50 megapixels unless configured otherwise) give 422 with "
                       "`fields.file` saying why. Images are stored re-encoded (same pixels, "
                       "no metadata); `sha256` is of the bytes stored.",
           responses={201: (schemas.DocumentOut, "The stored document.")},
           errors=("404", "409", "413", "422"))
@rate_limited
@idempotent
def upload_document(referral_id: int):
    referral = _referral(referral_id)
    file = request.files.get("file")
    kind = request.form.get("kind", "")
    errors = {}
    if file is None:
        errors["file"] = _l("Choose a file to upload.")
    if not kind:
        errors["kind"] = _l("Choose what kind of document this is.")
    if errors:
        raise ValidationFailed(errors)
    data = file.read()
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if len(data) > limit:
        # The web page shows this on its form (422); over the API it is what it is, too large.
        raise TooLarge({"file": _l("The file is larger than %(mb)d MB.",
                                   mb=limit // (1024 * 1024))})
    document = documents.upload(ctx(), referral, kind, file.filename or "", data)
    return json_response(_document_out(document).model_dump(mode="json"), 201)


def _several_files(view):
    """A request of several files may be larger than one file's limit: set before anything
    (the idempotency fingerprint) reads the body."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        request.max_content_length = documents.item_request_limit()
        return view(*args, **kwargs)
    return wrapped


ITEM_UPLOAD_FORM = {"multipart/form-data": {
    "schema": {
        "type": "object", "required": ["files"],
        "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "maxItems": documents.MAX_FILES},
            "replace": {"type": "boolean", "description": "The item's files not yet reviewed "
                                                          "are superseded by these."},
        },
    },
    "encoding": {"files": {"contentType": "application/pdf, image/jpeg, image/png, "
                                          "application/octet-stream"}},
}}


@bp.route("/referrals/<int:referral_id>/stipulations/<int:item_id>/documents",
          methods=["POST"])
@operation("uploadItemFiles", "Upload several files (PDF, JPEG or PNG) for one item",
           tag="referrals", body=ITEM_UPLOAD_FORM,
           description="Each `files` part is checked on its own, as `uploadDocument` checks a "
                       "file: a refused file is left out and listed in `refused` with why, the "
                       "others are stored (201). When every file is refused nothing is stored: "
                       "422 with `fields.files`. An accepted item takes no more files (409). "
                       "One request may carry five files of the upload limit (50 MB with the "
                       "default 10 MB) and 20 files at most.",
           responses={201: (schemas.ItemUploadOut, "The files stored and those refused.")},
           errors=("404", "409", "413", "422"))
@_several_files
@rate_limited
@idempotent
def upload_item_files(referral_id: int, item_id: int):
    referral = _referral(referral_id)
    if not 1 <= item_id <= schemas.MAX_ID:
        raise NotFound()
    item = documents.item_of(referral, item_id)
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files")]
    replace = request.form.get("replace", "").lower() in ("1", "true", "yes", "on")
    stored, refused = documents.upload_files(ctx(), referral, item, files, replace=replace)
    out = schemas.ItemUploadOut(
        documents=[_document_out(d) for d in stored],
        refused=[schemas.RefusedFileOut(filename=name, message=str(why))
                 for name, why in refused])
    return json_response(out.model_dump(mode="json"), 201)


def _document_out(document) -> schemas.DocumentOut:
    return schemas.DocumentOut(
        id=document.id, referral_id=document.referral_id, kind=document.kind,
        filename=document.filename, content_type=document.content_type, size=document.size,
        sha256=document.sha256, status=document.status, uploaded_at=document.uploaded_at)


@bp.route("/referrals/<int:referral_id>/transitions", methods=["POST"])
@operation("transitionReferral", "Move a referral along the lifecycle (bank roles; partners "
                                 "may withdraw and send back after uploading)",
           tag="referrals", body=schemas.TransitionIn,
           description="403 when the caller's role may never make the move asked for (a "
                       "partner asking for `approved`, a channel manager for `disbursed`); 409 "
                       "when the role may make it, but not from the referral's state now, or "
                       "`expected_version` is out of date.",
           responses={200: (schemas.ReferralOut, "The referral after the move.")},
           errors=("403", "404", "409", "422"))
@rate_limited
@idempotent
def transition_referral(referral_id: int):
    referral = _referral(referral_id)
    body = json_body(schemas.TransitionIn)
    caller = user()
    section, terms = _terms(body)
    if (body.to == State.documents_requested.value and (body.documents or body.items)
            and caller.is_bank):
        # `note` is the bank's own; only `partner_note` may reach the partner.
        documents.request_documents(ctx(), referral, list(body.documents or []),
                                    body.partner_note or "", internal_note=body.note,
                                    expected_version=body.expected_version,
                                    items=list(body.items or []))
    else:
        try:
            referrals.transition(ctx(), referral, body.to, note=body.note,
                                 partner_note=body.partner_note if caller.is_bank else None,
                                 reason_code=body.reason_code,
                                 expected_version=body.expected_version, terms=terms)
        except ValidationFailed as exc:
            if terms is None:
                raise
            # The service names the terms' own fields; the body has them under their section.
            fields = {(f"{section}.{k}" if k in terms else k): v for k, v in exc.fields.items()}
            raise ValidationFailed(fields, exc.message) from None
    return json_response(_referral_out(referral, caller))


def _terms(body: schemas.TransitionIn) -> tuple[str | None, dict | None]:
    """(section, terms) the body gives for its move, or (None, None); a section given for
    another move is refused (422)."""
    expected = decisions.SECTION.get(State(body.to))
    given = body.terms()
    for section in given:
        if section != expected:
            raise ValidationFailed({section: _l("Give %(section)s only with to=%(state)s.",
                                                section=section,
                                                state=_state_of(section))})
    return (expected, given[expected]) if given else (None, None)


def _state_of(section: str) -> str:
    return next(s.value for s, name in decisions.SECTION.items() if name == section)


# --- agreements --------------------------------------------------------------------------------

def _agreement_out(agreement: Agreement) -> dict:
    acceptance = agreement.acceptance
    return schemas.AgreementOut(
        id=agreement.id, number=agreement.number, version=agreement.version,
        status=agreement.status, products=list(agreement.products or []),
        effective_from=agreement.effective_from, expires_on=agreement.expires_on,
        issued_at=agreement.issued_at,
        accepted_at=acceptance.accepted_at if acceptance else None,
    ).model_dump(mode="json")


@bp.route("/agreements", methods=["GET"])
@operation("listAgreements", "Your organisation's agreements (bank roles: all)",
           tag="agreements", query=schemas.PageQuery,
           responses={200: (schemas.AgreementList, "A page of agreements.")}, errors=("422",))
@rate_limited
def list_agreements():
    # A read only: statuses follow the calendar through the scheduled job, not this GET.
    args = parse(schemas.PageQuery, request.args.to_dict())
    query = agreements.visible_agreements(user())
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.options(selectinload(Agreement.acceptances))
        .order_by(Agreement.number, Agreement.version.desc())
        .limit(args.per_page).offset((args.page - 1) * args.per_page))
    return page_of([_agreement_out(a) for a in rows], args, total)


@bp.route("/agreements/<int:agreement_id>/pdf", methods=["GET"])
@operation("getAgreementPdf", "The agreement as issued (PDF)", tag="agreements",
           responses={200: (PDF, "The PDF.", {"X-Content-SHA256": {
               "description": "SHA-256 of the PDF, hex.", "schema": {"type": "string"}}})},
           errors=("404", "409"))
@rate_limited
def agreement_pdf(agreement_id: int):
    if not 1 <= agreement_id <= schemas.MAX_ID:
        raise NotFound()
    agreement = agreements.get_for(user(), agreement_id)
    rendered = agreements.pdf_for(agreement)
    response = send_file(BytesIO(rendered.data), mimetype="application/pdf",
                         download_name=f"{agreement.number}-v{agreement.version}.pdf",
                         etag=rendered.sha256, max_age=0)
    response.headers["X-Content-SHA256"] = rendered.sha256
    return response


# --- sites -------------------------------------------------------------------------------------

@bp.route("/sites", methods=["GET"])
@operation("listSites", "Your organisation's projects, showrooms and offices (partner roles)",
           tag="referrals", query=schemas.PageQuery,
           description="The sites a submission may name in `site` (by id or code): the active "
                       "ones. The bank's channel managers keep them.",
           responses={200: (schemas.SiteList, "A page of your organisation's sites.")},
           errors=("403", "422"))
@rate_limited
def list_sites():
    partner_only()
    args = parse(schemas.PageQuery, request.args.to_dict())
    own = sites.of_org(user().org_id)
    items = []
    for found in own[(args.page - 1) * args.per_page:args.page * args.per_page]:
        view = disclosure.site(found)
        items.append(schemas.SiteOut(id=view.id, code=view.code, kind=view.kind, name=view.name,
                                     address=view.address, presale_permit=view.presale_permit,
                                     active=view.active).model_dump(mode="json"))
    # A partner has a handful of sites: read whole, served a page at a time like every list.
    return page_of(items, args, len(own))
