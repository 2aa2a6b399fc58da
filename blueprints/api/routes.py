"""HTTP API v1 (CONTRACT.md): referrals, documents, transitions and agreements for other systems.

Bearer API keys act as the user they were made for. Views stay thin: parse with the schemas
(schemas.py), authorize, call the same services the web pages use, shape the response with the
schemas. Mounted at /api/v1 and exempt from CSRF (no cookies are used here).
"""

from __future__ import annotations

import hashlib
import json
from functools import wraps

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    send_file,
)
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from models import Organization, Referral, User
from portal import database_ok
from portal.extensions import db, limiter
from portal.services import Ctx, api_keys, documents, idempotency, referrals
from portal.services.errors import Forbidden, NotFound, ValidationFailed
from portal.services.lifecycle import State

from . import schemas

bp = Blueprint("api", __name__)
health_bp = Blueprint("health", __name__)

PUBLIC_ENDPOINTS = {"api.openapi_json", "api.docs"}


@health_bp.route("/healthz")
def healthz():
    if database_ok():
        return jsonify({"status": "ok", "database": "ok"})
    return jsonify({"status": "unavailable", "database": "unreachable"}), 503


# --- authentication and rate limits ------------------------------------------------------------

def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _lookup():
    """The request's API key row, or the Unauthorized error, looked up once per request."""
    if "api_key_lookup" not in g:
        try:
            g.api_key_lookup = (api_keys.authenticate(_bearer()), None)
        except api_keys.Unauthorized as exc:
            g.api_key_lookup = (None, exc)
    return g.api_key_lookup


def _rate_key() -> str:
    # Per key; calls without a valid key share their address's budget.
    row, _ = _lookup()
    return f"key:{row.id}" if row is not None else f"addr:{get_remote_address()}"


def _rate_value() -> str:
    row, _ = _lookup()
    return (row.rate_limit if row is not None and row.rate_limit
            else current_app.config["API_RATE_LIMIT"])


rate_limited = limiter.shared_limit(_rate_value, scope="api-v1", key_func=_rate_key)


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    row, error = _lookup()
    if error is not None:
        raise error
    g.api_key = row
    g.api_user = row.user
    api_keys.touch(row)
    return None


@bp.after_request
def _api_headers(response):
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _ctx() -> Ctx:
    return Ctx(user=g.api_user, ip=request.remote_addr)


def _user() -> User:
    return g.api_user


def _partner_only():
    if not _user().is_partner:
        raise Forbidden(_l("Only partner users can do this."))


# --- request parsing ---------------------------------------------------------------------------

def _field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "body"


def _parse(model: type[BaseModel], data) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors(include_url=False, include_input=False):
            fields.setdefault(_field_name(err["loc"]), err["msg"])
        raise ValidationFailed(fields) from None


def _json_body(model: type[BaseModel]) -> BaseModel:
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed({"body": _l("Send a JSON object.")}) from None
    if not isinstance(data, dict):
        raise ValidationFailed({"body": _l("Send a JSON object.")})
    return _parse(model, data)


def _fingerprint_body():
    if request.mimetype == "multipart/form-data":
        digest = hashlib.sha256()
        # Field names may be anything a client sends (even empty): order them as text.
        for name, values in sorted(request.form.lists(), key=lambda item: str(item[0])):
            digest.update(f"{name!s}={values}\n".encode("utf-8", "replace"))
        for name, files in sorted(request.files.lists(), key=lambda item: str(item[0])):
            for storage in files:
                digest.update(f"{name!s}:{storage.filename}:".encode("utf-8", "replace"))
                digest.update(hashlib.sha256(storage.stream.read()).digest())
                storage.stream.seek(0)
        return digest.digest()
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw


class _PendingKey:
    """The Idempotency-Key of the request being served, claimed once before its first write."""

    def __init__(self, key: str, print_: str):
        self.key, self.print_ = key, print_
        self.claim: idempotency.Claim | None = None

    def take(self) -> Response | None:
        """Claim the key; the stored response when an earlier request with it has finished."""
        self.claim = idempotency.claim(g.api_key.id, self.key, self.print_)
        return _replay(self.claim.replay) if self.claim.replay is not None else None


def _replay(record) -> Response:
    response = Response(record.response_body, status=record.status_code,
                        mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def claim_key() -> Response | None:
    """For a view marked `idempotent(claim_late=True)`: claim the request's key right before
    its first write; a response to return instead when the request is a replay."""
    pending = g.get("idempotency_key")
    return pending.take() if pending is not None and pending.claim is None else None


def idempotent(view=None, *, claim_late: bool = False):
    """Idempotency-Key on a POST: replay the stored response of a finished request with the
    same key and body; 422 for the same key with another body. The claim and the stored
    response are written in the request's own transaction (see services/idempotency.py).

    The claim is the request's first write. A view that reads and checks a lot before writing
    says `claim_late=True` and calls `claim_key()` when it is about to write, so that on SQLite
    (one writer at a time) the write lock is not held while it checks; a finished retry is
    still replayed before any checking, by a read.
    """
    if view is None:
        return lambda v: idempotent(v, claim_late=claim_late)

    @wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Idempotency-Key")
        if header is None:
            return view(*args, **kwargs)
        pending = _PendingKey(idempotency.check_key(header),
                              idempotency.fingerprint(request.method, request.path,
                                                      _fingerprint_body()))
        if claim_late:
            record = idempotency.finished(g.api_key.id, pending.key, pending.print_)
            if record is not None:
                return _replay(record)
            g.idempotency_key = pending
        else:
            replay = pending.take()
            if replay is not None:
                return replay
        response = make_response(view(*args, **kwargs))
        if pending.claim is not None and pending.claim.replay is None \
                and response.status_code < 400:
            idempotency.complete(pending.claim, response.status_code,
                                 response.get_data(as_text=True))
        return response

    return wrapped


# --- shaping responses -------------------------------------------------------------------------

def _referral_out(referral: Referral, user: User) -> dict:
    partner = user.is_partner
    timeline = [
        schemas.TimelineEntry(
            at=e.at, from_=e.from_state, to=e.to_state,
            note=e.partner_note if partner else (e.note or e.partner_note))
        for e in referral.events
    ]
    return schemas.ReferralOut(
        id=referral.id,
        external_ref=referral.external_ref,
        org_code=referral.org.code,
        product=referral.product_code,
        status=referral.status,
        customer_class=referral.customer_class,
        buyer=schemas.BuyerOut(name=referral.buyer_name,
                               national_id_masked=referral.national_id_masked,
                               mobile_masked=referral.mobile_masked),
        amount=float(referral.amount),
        term_months=referral.term_months,
        submitted_at=referral.submitted_at,
        status_changed_at=referral.status_changed_at,
        clock=referral.clock,
        decline_reason=referral.decline_reason,
        version=referral.version,
        documents=[schemas.StipulationOut(kind=s.kind, status=s.status)
                   for s in referral.stipulations],
        timeline=timeline,
    ).model_dump(mode="json", by_alias=True)


def _json(payload, status: int = 200):
    response = current_app.response_class(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")), status=status,
        mimetype="application/json")
    return response


def _referral(referral_id: int) -> Referral:
    """Load-then-authorize: a referral the caller may see, or 404 (never 403)."""
    if not 1 <= referral_id <= schemas.MAX_ID:
        raise NotFound()
    return referrals.get_for(_user(), referral_id)


# --- referrals ---------------------------------------------------------------------------------

@bp.route("/referrals", methods=["POST"])
@rate_limited
@idempotent(claim_late=True)
def submit_referral():
    _partner_only()
    body = _json_body(schemas.ReferralIn)
    user = _user()
    try:
        # The agreement rules (which products the partner may refer) apply in prepare.
        intake = referrals.prepare(_ctx(), user.org, body.intake())
        replay = claim_key()
        if replay is not None:
            return replay
        result = referrals.register(_ctx(), intake)
    except ValidationFailed as exc:
        fields = {schemas.INTAKE_FIELDS.get(k, k): v for k, v in exc.fields.items()}
        raise ValidationFailed(fields, exc.message) from None
    response = _json(_referral_out(result.referral, user), 201)
    response.headers["Location"] = f"{request.script_root}/api/v1/referrals/{result.referral.id}"
    return response


@bp.route("/referrals", methods=["GET"])
@rate_limited
def list_referrals():
    args = _parse(schemas.ListQuery, request.args.to_dict())
    user = _user()
    query = referrals.visible_referrals(user)
    if args.status:
        query = query.where(Referral.status == args.status)
    if args.external_ref:
        query = query.where(Referral.external_ref == args.external_ref)
    if args.org_code and user.is_bank:
        query = query.join(Organization, Organization.id == Referral.org_id).where(
            Organization.code == args.org_code.upper())
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.options(selectinload(Referral.events), selectinload(Referral.stipulations),
                      selectinload(Referral.org))
        .order_by(Referral.submitted_at.desc(), Referral.id.desc())
        .limit(args.per_page).offset((args.page - 1) * args.per_page))
    return _json({"items": [_referral_out(r, user) for r in rows], "page": args.page,
                  "per_page": args.per_page, "total": total})


@bp.route("/referrals/<int:referral_id>", methods=["GET"])
@rate_limited
def get_referral(referral_id: int):
    return _json(_referral_out(_referral(referral_id), _user()))


@bp.route("/referrals/<int:referral_id>/documents", methods=["POST"])
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
    document = documents.upload(_ctx(), referral, kind, file.filename or "", file.read())
    out = schemas.DocumentOut(
        id=document.id, referral_id=referral.id, kind=document.kind, filename=document.filename,
        content_type=document.content_type, size=document.size, sha256=document.sha256,
        status=document.status, uploaded_at=document.uploaded_at)
    return _json(out.model_dump(mode="json"), 201)


@bp.route("/referrals/<int:referral_id>/transitions", methods=["POST"])
@rate_limited
@idempotent
def transition_referral(referral_id: int):
    referral = _referral(referral_id)
    body = _json_body(schemas.TransitionIn)
    ctx = _ctx()
    if body.to == State.documents_requested.value and body.documents and _user().is_bank:
        documents.request_documents(ctx, referral, list(body.documents), body.note or "",
                                    expected_version=body.expected_version)
    else:
        referrals.transition(ctx, referral, body.to, note=body.note,
                             partner_note=body.partner_note if _user().is_bank else None,
                             reason_code=body.reason_code,
                             expected_version=body.expected_version)
    return _json(_referral_out(referral, _user()))


# --- agreements --------------------------------------------------------------------------------

def _agreement_out(agreement) -> dict:
    acceptance = agreement.acceptance
    return schemas.AgreementOut(
        id=agreement.id, number=agreement.number, version=agreement.version,
        status=agreement.status, products=list(agreement.products or []),
        effective_from=agreement.effective_from, expires_on=agreement.expires_on,
        issued_at=agreement.issued_at,
        accepted_at=acceptance.accepted_at if acceptance else None,
    ).model_dump(mode="json")


@bp.route("/agreements", methods=["GET"])
@rate_limited
def list_agreements():
    from models import Agreement
    from portal.services import agreements

    args = _parse(schemas.PageQuery, request.args.to_dict())
    user = _user()
    if user.is_partner:
        # Statuses follow the calendar, as on the partner's agreement page.
        agreements.roll_statuses(_ctx(), org=user.org)
    query = agreements.visible_agreements(user)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.options(selectinload(Agreement.acceptances))
        .order_by(Agreement.number, Agreement.version.desc())
        .limit(args.per_page).offset((args.page - 1) * args.per_page))
    return _json({"items": [_agreement_out(a) for a in rows], "page": args.page,
                  "per_page": args.per_page, "total": total})


@bp.route("/agreements/<int:agreement_id>/pdf", methods=["GET"])
@rate_limited
def agreement_pdf(agreement_id: int):
    from io import BytesIO

    from portal.services import agreements

    if not 1 <= agreement_id <= schemas.MAX_ID:
        raise NotFound()
    agreement = agreements.get_for(_user(), agreement_id)
    rendered = agreements.pdf_for(agreement)
    response = send_file(BytesIO(rendered.data), mimetype="application/pdf",
                         download_name=f"{agreement.number}-v{agreement.version}.pdf",
                         etag=rendered.sha256, max_age=0)
    response.headers["X-Content-SHA256"] = rendered.sha256
    return response


# --- the OpenAPI document and its documentation page -------------------------------------------

@bp.route("/openapi.json")
def openapi_json():
    document = current_app.extensions.get("portal_openapi")
    if document is None:
        document = schemas.openapi(with_agreements=True)
        current_app.extensions["portal_openapi"] = document
    return jsonify(document)


@bp.route("/docs")
def docs():
    return render_template("integration/api_docs.html")
