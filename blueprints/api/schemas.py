"""API v1 request and response schemas, declared once.

The same pydantic models validate requests, shape responses and produce the OpenAPI document
(`openapi()`). They check shape and type only; the business rules (valid ID numbers, amounts a
product lends, allowed moves) stay in the services the web pages use.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from models import WEBHOOK_EVENT_TYPES
from portal.services import referral_intake
from portal.services.lifecycle import DECLINE_REASONS, State
from portal.services.reference import DOCUMENT_KINDS, INDUSTRY_CLASS

MAX_ID = 2_147_483_647  # ids are 32-bit integers in the database


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
StateCode = Literal[tuple(s.value for s in State)]  # type: ignore[valid-type]
Industry = Literal[tuple(INDUSTRY_CLASS)]  # type: ignore[valid-type]
DocumentKind = Literal[DOCUMENT_KINDS]  # type: ignore[valid-type]
Money = Annotated[Decimal, Field(allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


# --- requests ----------------------------------------------------------------------------------

# The referral body is built from the intake schema (services/referral_intake.py): each
# intake field sits at its nested API name, with this type for its kind. Only the shape is
# checked here; the intake's rules are the service's.
API_TYPES = {"product": Text, "text": Text, "version": Text, "industry": Industry,
             "money": Money, "months": int, "consent": bool, "time": datetime}
SECTIONS = {"buyer": "BuyerIn", "asset": "AssetIn", "consent": "ConsentIn"}
SECTION_DOCS = {"asset": "Required for housing and auto loans."}


def _body_field(face):
    kind = API_TYPES[face.kind]
    doc = {"description": face.description} if face.description else {}
    if face.examples:
        doc["examples"] = list(face.examples)
    if face.in_api_required:
        return kind, Field(**doc)
    return kind | None, Field(None, **doc)


def _referral_body_fields() -> dict:
    top: dict = {}
    members: dict[str, dict] = {}
    for face in referral_intake.faces().values():
        section, _, name = face.api.rpartition(".")
        if section:
            if section not in members:
                members[section] = {}
                top[section] = None  # placed where its first member is
            members[section][name] = _body_field(face)
        else:
            top[name] = _body_field(face)
    for section, fields in members.items():
        model = create_model(SECTIONS[section], __base__=_In, **fields)
        if any(field.is_required() for field in model.model_fields.values()):
            top[section] = (model, Field(description=SECTION_DOCS.get(section)))
        else:
            top[section] = (model | None, Field(None, description=SECTION_DOCS.get(section)))
    return top


EXAMPLE_REFERRAL = {
    "product": "housing_mortgage",
    "buyer": {"name": "张伟", "national_id": "110105198506120018", "mobile": "13912345678",
              "employer": "市第一中学", "industry": "education_science_culture_health",
              "monthly_income": 18000},
    "amount": 800000, "term_months": 240,
    "asset": {"description": "旭日花园 3-1201", "price": 1200000, "down_payment": 400000},
    "consent": {"obtained": True, "notice_version": "2026-01",
                "obtained_at": "2026-03-01T10:00:00+08:00"},
    "external_ref": "CRM-000123",
}


class _ReferralBody(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_REFERRAL]})

    def intake(self) -> dict:
        """The flat dict referrals.submit takes (a missing section gives None for its fields)."""
        data = {}
        for name, face in referral_intake.faces().items():
            value = self
            for part in face.api.split("."):
                value = getattr(value, part, None)
            data[name] = value
        return data


ReferralIn = create_model("ReferralIn", __base__=_ReferralBody, **_referral_body_fields())
BuyerIn, AssetIn, ConsentIn = (ReferralIn.model_fields[s].annotation for s in SECTIONS)

# The service's flat field names, as the nested names of the request body.
INTAKE_FIELDS = referral_intake.api_names()


class TransitionIn(_In):
    to: StateCode = Field(description="The state to move to.")
    note: Text | None = Field(None, description="Why (bank-internal for bank callers).")
    partner_note: Text | None = Field(None, description="What the partner may read (bank "
                                                        "callers).")
    reason_code: Literal[DECLINE_REASONS] | None = Field(  # type: ignore[valid-type]
        None, description="Partner-safe decline category; required with to=declined.")
    documents: list[DocumentKind] | None = Field(
        None, description="With to=documents_requested: the documents the bank asks for.")
    expected_version: int | None = Field(
        None, ge=1, le=MAX_ID,
        description="The referral's version you last saw; a newer one gives 409.")


class PageQuery(_In):
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(25, ge=1, le=100)


class ListQuery(_In):
    status: StateCode | None = None
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(25, ge=1, le=100)
    external_ref: Text | None = Field(None, max_length=64,
                                      description="Only the referral with this reference.")
    org_code: Text | None = Field(None, max_length=32,
                                  description="Bank callers: one partner's referrals only.")


# --- responses ---------------------------------------------------------------------------------

class BuyerOut(BaseModel):
    name: str
    national_id_masked: str
    mobile_masked: str


class TimelineEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: datetime
    from_: StateCode | None = Field(serialization_alias="from", alias="from")
    to: StateCode
    note: str | None = Field(description="Partner callers: the note meant for the partner.")


class StipulationOut(BaseModel):
    kind: str
    status: Literal["missing", "uploaded", "accepted", "rejected"]


class ReferralOut(BaseModel):
    id: int
    external_ref: str | None
    org_code: str
    product: str
    status: StateCode
    customer_class: Literal[1, 2, 3]
    buyer: BuyerOut
    amount: float
    term_months: int
    submitted_at: datetime
    status_changed_at: datetime
    clock: Literal["bank", "partner"] | None = Field(description="Whose clock runs now.")
    decline_reason: str | None = Field(description="Partner-safe decline category.")
    version: int
    documents: list[StipulationOut] = Field(description="The document checklist.")
    timeline: list[TimelineEntry]


class ReferralList(BaseModel):
    items: list[ReferralOut]
    page: int
    per_page: int
    total: int


class DocumentOut(BaseModel):
    id: int
    referral_id: int
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    status: str
    uploaded_at: datetime


class AgreementOut(BaseModel):
    id: int
    number: str
    version: int
    status: str
    products: list[str]
    effective_from: date
    expires_on: date
    issued_at: datetime | None = None
    accepted_at: datetime | None = None


class AgreementList(BaseModel):
    items: list[AgreementOut]
    page: int
    per_page: int
    total: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str]


class Error(BaseModel):
    error: ErrorDetail


class WebhookEvent(BaseModel):
    """What the portal POSTs to a webhook endpoint (documentation only)."""

    id: str
    type: Literal[WEBHOOK_EVENT_TYPES]  # type: ignore[valid-type]
    created_at: datetime
    data: dict[str, Any]


# --- the OpenAPI document ----------------------------------------------------------------------

REQUEST_MODELS = (ReferralIn, TransitionIn)
RESPONSE_MODELS = (ReferralOut, ReferralList, DocumentOut, AgreementOut, AgreementList, Error,
                   WebhookEvent)
REF = "#/components/schemas/{model}"
# Operations other modules add to the document at import (blueprints/api/scorecards.py).
EXTRA_RESPONSE_MODELS: list = []
EXTRA_PATHS: dict[str, dict] = {}


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


ERRORS = {
    "401": "Missing, wrong or revoked API key.",
    "403": "Your role may not do this.",
    "404": "No such object, or it belongs to another organisation.",
    "409": "The object's state does not allow this.",
    "413": "The upload is too large.",
    "422": "Invalid input; `fields` names each invalid field (nested names, e.g. "
           "`buyer.national_id`).",
    "429": "Rate limit reached; retry after the number of seconds in Retry-After.",
}


def _errors(*codes: str) -> dict:
    out = {}
    for code in ("401", *codes, "429"):
        response = _json(Error, ERRORS[code])
        if code == "429":
            response["headers"] = {"Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"}}}
        out[code] = response
    return out


def _query_parameters(model) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        if "anyOf" in prop:  # Optional[X]: a query parameter is simply left out instead
            prop = {k: v for k, v in prop.items() if k != "anyOf"} | next(
                p for p in prop["anyOf"] if p.get("type") != "null")
        param = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


ID_PARAM = {"in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Any unique string (at most 200 printable ASCII characters). A retry with "
                   "the same key and body returns the first response; the same key with a "
                   "different body gives 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200,
               "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"},
}


def openapi(*, with_agreements: bool = False) -> dict:
    _, top = models_json_schema(
        [(m, "validation") for m in REQUEST_MODELS]
        + [(m, "serialization") for m in (*RESPONSE_MODELS, *EXTRA_RESPONSE_MODELS)],
        ref_template=REF)
    components = top.get("$defs", {})
    referral_id = {"name": "referral_id", **ID_PARAM}
    paths: dict[str, dict] = {
        "/referrals": {
            "post": {
                "operationId": "submitReferral", "tags": ["referrals"],
                "summary": "Submit a buyer referral (partner roles)",
                "description": "201 with the referral. A buyer another partner registered for "
                               "this product within the protection window gives 201 with "
                               "`status: conflict` (the response names no other partner); one "
                               "your organisation registered gives 409 `already_registered`.",
                "parameters": [IDEMPOTENCY_HEADER],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref(ReferralIn)}}},
                "responses": {"201": _json(ReferralOut, "The referral."),
                              **_errors("403", "409", "422")},
            },
            "get": {
                "operationId": "listReferrals", "tags": ["referrals"],
                "summary": "Your organisation's referrals (bank roles: all), newest first",
                "parameters": _query_parameters(ListQuery),
                "responses": {"200": _json(ReferralList, "A page of referrals."),
                              **_errors("422")},
            },
        },
        "/referrals/{referral_id}": {
            "get": {
                "operationId": "getReferral", "tags": ["referrals"],
                "summary": "One referral with its timeline",
                "parameters": [referral_id],
                "responses": {"200": _json(ReferralOut, "The referral."), **_errors("404")},
            },
        },
        "/referrals/{referral_id}/documents": {
            "post": {
                "operationId": "uploadDocument", "tags": ["referrals"],
                "summary": "Upload a document (PDF, JPEG or PNG) for a referral",
                "parameters": [referral_id, IDEMPOTENCY_HEADER],
                "requestBody": {"required": True, "content": {"multipart/form-data": {
                    "schema": {
                        "type": "object", "required": ["file", "kind"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "kind": {"type": "string", "enum": list(DOCUMENT_KINDS)},
                        },
                    },
                    "encoding": {"file": {"contentType": "application/pdf, image/jpeg, "
                                                         "image/png, application/octet-stream"}},
                }}},
                "responses": {"201": _json(DocumentOut, "The stored document."),
                              **_errors("404", "409", "413", "422")},
            },
        },
        "/referrals/{referral_id}/transitions": {
            "post": {
                "operationId": "transitionReferral", "tags": ["referrals"],
                "summary": "Move a referral along the lifecycle (bank roles; partners may "
                           "withdraw and send back after uploading)",
                "parameters": [referral_id, IDEMPOTENCY_HEADER],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref(TransitionIn)}}},
                "responses": {"200": _json(ReferralOut, "The referral after the move."),
                              **_errors("404", "409", "422")},
            },
        },
    }
    if with_agreements:
        agreement_id = {"name": "agreement_id", **ID_PARAM}
        paths["/agreements"] = {"get": {
            "operationId": "listAgreements", "tags": ["agreements"],
            "summary": "Your organisation's agreements (bank roles: all)",
            "parameters": _query_parameters(PageQuery),
            "responses": {"200": _json(AgreementList, "A page of agreements."),
                          **_errors("422")},
        }}
        paths["/agreements/{agreement_id}/pdf"] = {"get": {
            "operationId": "getAgreementPdf", "tags": ["agreements"],
            "summary": "The agreement as issued (PDF)",
            "parameters": [agreement_id],
            "responses": {"200": {"description": "The PDF.", "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
                **_errors("404", "409")},
        }}
    paths.update(EXTRA_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Partner Portal API",
            "version": "1.0.0",
            "description": (
                "Submit and follow buyer referrals from your own sales system. Authenticate "
                "with `Authorization: Bearer <api key>`; a key acts as the user it was made "
                "for. Errors are `{\"error\": {\"code\", \"message\", \"fields\"}}`. Every POST "
                "accepts an `Idempotency-Key` header.\n\n"
                "Webhooks: the portal POSTs a `WebhookEvent` to each endpoint you register, "
                "for `referral.status_changed`, `referral.documents_requested` and "
                "`agreement.issued`, with `X-Portal-Signature: t=<unix seconds>,v1=<hex "
                "HMAC-SHA256 of \"<t>.<raw body>\" with the endpoint secret>` and "
                "`X-Portal-Event-Id`; retried with exponential backoff until a 2xx."),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API key from the portal."}},
        },
    }
