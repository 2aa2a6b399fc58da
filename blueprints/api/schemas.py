"""API v1 request and response schemas, declared once.

The same pydantic models validate requests, shape responses and give the OpenAPI document its
components (openapi.py). They check shape and type only; the business rules (valid ID numbers,
amounts a product lends, allowed moves) stay in the services the web pages use.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    create_model,
)

from models import WEBHOOK_EVENT_TYPES
from portal.services import group_referrals, referral_intake
from portal.services.lifecycle import DECLINE_REASONS, State
from portal.services.reference import DOCUMENT_KINDS, INDUSTRY_CLASS

Day = date  # a field named `date` would shadow the type in its own annotation
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


RequestModel = _In  # the base of every request body and query, for the other API modules


# --- requests ----------------------------------------------------------------------------------

# The referral body is built from the intake schema (services/referral_intake.py): each
# intake field sits at its nested API name, with this type for its kind. Only the shape is
# checked here; the intake's rules are the service's.
API_TYPES = {"product": Text, "text": Text, "version": Text, "industry": Industry,
             "money": Money, "months": int, "consent": bool, "time": datetime,
             "site": None}  # SiteRef, below
def _site_ref(value):
    """A site by id (a JSON number, not a boolean) or by code (text)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    if isinstance(value, str) and "\x00" not in value and 0 < len(value.strip()) <= 32:
        return value.strip()
    raise ValueError("must be a site's id (a number) or its code (text)")


SiteRef = Annotated[int | str, PlainValidator(_site_ref), WithJsonSchema(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 32}]})]
API_TYPES["site"] = SiteRef
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
    "site": "SUNRISE-GARDEN",
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


# The terms a move records (services/decisions.py checks them): optional, as before they existed;
# when given, every required member must be there. Only their shape is checked here.
Number = Annotated[Decimal, Field(allow_inf_nan=False)] | Text


class DecisionIn(_In):
    amount: Number | None = Field(None, description="The amount approved, CNY: at most the "
                                  "amount requested, within the product's limits.",
                                  examples=[800000])
    term_months: int | None = Field(None, description="The term approved, in months.",
                                    examples=[240])
    rate_percent: Number | None = Field(None, description="The annual interest rate in "
                                        "percent, above 0 and below 36.", examples=[3.85])
    conditions: list[Text] = Field(default_factory=list, max_length=50, description=(
        "Conditions of the approval, written for the partner (it reads them), e.g. "
        "\"co-borrower's income proof before signing\"; at most 10 of 300 characters."))


class ContractIn(_In):
    number: Text | None = Field(None, description="The contract's number.")
    amount: Number | None = Field(None, description="The contract amount, CNY: at most the "
                                  "approved amount.")
    date: Text | None = Field(None, description="Signing date, YYYY-MM-DD (not in the "
                              "future, not before the approval).", examples=["2026-03-18"])


class DisbursementIn(_In):
    amount: Number | None = Field(None, description="The amount paid out, CNY: at most the "
                                  "contract (or approved) amount.")
    date: Text | None = Field(None, description="Value date, YYYY-MM-DD (not in the future, "
                              "not before the contract).", examples=["2026-03-20"])
    number: Text | None = Field(None, description="The loan note number, if any.")


class TransitionIn(_In):
    to: StateCode = Field(description="The state to move to.")
    note: Text | None = Field(None, description="Why (bank-internal for bank callers).")
    partner_note: Text | None = Field(None, description="What the partner may read (bank "
                                                        "callers).")
    reason_code: Literal[DECLINE_REASONS] | None = Field(  # type: ignore[valid-type]
        None, description="Partner-safe decline category; required with to=declined.")
    documents: list[DocumentKind] | None = Field(
        None, description="With to=documents_requested: the documents the bank asks for.")
    items: list[Annotated[Text, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=10,
        description="With to=documents_requested: items on no list, in the bank's words (each "
                    "becomes a stipulation of kind `other` with this `label`).")
    expected_version: int | None = Field(
        None, ge=1, le=MAX_ID,
        description="The referral's version you last saw; a newer one gives 409.")
    decision: DecisionIn | None = Field(
        None, description="With to=approved: the terms approved (optional; when given, "
                          "amount, term_months and rate_percent are required).")
    contract: ContractIn | None = Field(
        None, description="With to=contract_signed: number, amount and date (optional; "
                          "when given, all three are required).")
    disbursement: DisbursementIn | None = Field(
        None, description="With to=disbursed: amount and value date (optional; when given, "
                          "both are required).")

    def terms(self) -> dict[str, dict]:
        """{section: the terms as the service takes them} of each section given."""
        return {name: getattr(self, name).model_dump()
                for name in ("decision", "contract", "disbursement")
                if getattr(self, name) is not None}


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


class AssignedOfficerOut(BaseModel):
    id: int
    name: str


class ItemFileOut(BaseModel):
    id: int
    filename: str
    status: Literal["pending", "accepted", "rejected", "superseded", "not_reviewed"] = Field(
        description="`superseded`: replaced by a newer upload; `not_reviewed`: the referral "
                    "closed before anyone reviewed it.")
    uploaded_at: datetime


class ItemOut(BaseModel):
    id: int = Field(description="Upload files for this item at "
                                "`/referrals/{referral_id}/stipulations/{id}/documents`.")
    kind: str
    label: str | None = Field(description="An item on no list, in the bank's words.")
    requested: bool = Field(description="Asked of the partner (false: a line of the product's "
                                        "checklist nobody asked for).")
    status: Literal["missing", "uploaded", "accepted", "rejected", "not_reviewed",
                    "not_needed"] = Field(
        description="`not_reviewed` / `not_needed`: the referral closed while the item was "
                    "uploaded but not reviewed / still waiting for a file.")
    waiting_on_partner: bool = Field(description="The partner must (still) send a file for it.")
    note: str | None = Field(description="The bank's request, as the partner reads it.")
    reason: str | None = Field(description="Why the bank rejected it (rejected items).")
    files: list[ItemFileOut]


class RefusedFileOut(BaseModel):
    filename: str
    message: str


class DecisionOut(BaseModel):
    outcome: Literal["approved", "declined"]
    decided_at: datetime
    amount: float | None = Field(description="The amount approved (null: declined, or "
                                             "approved without recorded terms).")
    term_months: int | None
    rate_percent: float | None = Field(description="Annual interest rate, percent.")
    conditions: list[str] = Field(description="Conditions of the approval, for the partner.")
    counter_offer: bool = Field(description="Approved with changes: less than the amount "
                                            "requested, or another term.")
    requested_amount: float
    requested_term_months: int
    reason_code: str | None = Field(description="With a decline: the partner-safe category.")


class ContractOut(BaseModel):
    number: str
    amount: float
    date: Day


class DisbursementOut(BaseModel):
    number: str | None = Field(description="The loan note number, when recorded.")
    amount: float
    date: Day = Field(description="The value date.")


class SiteRefOut(BaseModel):
    id: int
    code: str
    name: str


class SiteOut(BaseModel):
    id: int
    code: str = Field(description="Name the site by this code (or its id) in a submission's "
                                  "`site`.")
    kind: Literal["project", "showroom", "office"]
    name: str
    address: str | None
    presale_permit: str | None = Field(description="Projects: the pre-sale permit number.")
    active: bool = Field(description="Only active sites may be named on new referrals.")


class SiteList(BaseModel):
    items: list[SiteOut]
    page: int
    per_page: int
    total: int


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
    stipulations: list[ItemOut] = Field(
        description="Item by item: partners get the items asked of them and those they sent "
                    "files for; bank callers every item, the product's checklist included.")
    timeline: list[TimelineEntry]
    assigned_to: AssignedOfficerOut | None = Field(
        None, description="Bank callers only (absent for partners): the officer working on the "
                          "referral, null when nobody has taken it.")
    decision: DecisionOut | None = Field(None, description="Once the bank decides.")
    contract: ContractOut | None = Field(None, description="Once the contract is recorded.")
    disbursement: DisbursementOut | None = Field(None, description="Once the disbursement "
                                                                   "is recorded.")
    site: SiteRefOut | None = Field(None, description="The project, showroom or office the "
                                                      "referral came through, if named.")


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
    content_type: str = Field(description="What the file is, by its content: application/pdf, "
                                          "image/jpeg or image/png.")
    size: int = Field(description="Bytes stored.")
    sha256: str = Field(description="SHA-256 of the bytes stored (hex). A PDF is stored as "
                                    "sent; an image is stored re-encoded (the same pixels, "
                                    "without metadata or anything appended), so its hash "
                                    "differs from the file sent.")
    status: str
    uploaded_at: datetime


class ItemUploadOut(BaseModel):
    documents: list[DocumentOut] = Field(description="The files stored.")
    refused: list[RefusedFileOut] = Field(description="Files left out, each with why; the "
                                                      "others were stored.")


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


# Component names in the OpenAPI document (openapi.py).
REF = "#/components/schemas/{model}"


# --- group referrals (services/group_referrals.py) -----------------------------------------------

BATCH_MAX_ITEMS = group_referrals.MAX_ITEMS


class ReferralBatchIn(_In):
    """What the OpenAPI document shows; the view reads each item on its own (a malformed item
    is refused alone, with its index)."""

    items: list[ReferralIn] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=BATCH_MAX_ITEMS,
        description="The buyers, each a `submitReferral` body (1 to 500).")


class BatchShape(_In):
    items: list[Any] = Field(min_length=1, description="The buyers.")


class BatchItemOut(BaseModel):
    index: int = Field(description="The item's place in `items`, from 0.")
    status: Literal[201, 403, 409, 422] = Field(
        description="What `submitReferral` would have answered for this item alone.")
    referral: ReferralOut | None = Field(None, description="With 201: the referral.")
    error: ErrorDetail | None = Field(None, description="Otherwise: why it was refused "
                                                        "(nothing was written for it).")


class ReferralBatchOut(BaseModel):
    results: list[BatchItemOut]
    submitted: int = Field(description="Items registered (status 201).")
    refused: int = Field(description="Items refused.")
