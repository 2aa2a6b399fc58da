"""The referral intake, declared once: the buyer and loan fields a partner submits, their rules and
their messages.

`ReferralIntake` is a pydantic model of the flat intake (the keys `referrals.validate_intake`
takes). Each field carries, beside its rule, an `IntakeField` that tells the faces how to show
it: the web form builds its fields from the label, kind and required flag; the API builds its
request body from the nested name (`buyer.national_id`) and kind. So a new buyer field is one
line here, one column in the model and, if wanted, a place in the form's template.

The rules need what only the service knows (the product looked up, the bank's "today", the
consent notice in force): it passes them as the validation context (`IntakeContext`). Every
refusal carries its translatable message in the error's context (`refusal`), so that
`field_errors` hands the service the same lazy messages it always gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models import utcnow
from portal.i18n import lazy_gettext as _l

from . import pii
from .reference import INDUSTRY_CLASS, PRODUCT_CODES
from .validation import REFUSAL, field_errors, refusal  # noqa: F401  (field_errors: the faces')

MAX_AMOUNT = Decimal("1e11")
MAX_TERM_MONTHS = 360  # when the product is unknown; a product has its own maximum
ASSET_KINDS = ("property", "vehicle")  # products secured on what the buyer buys


# --- small parsers shared by the intake and the imports ------------------------------------------

_CURRENCY_SIGNS = ("¥", "￥")
_WAN = Decimal(10_000)


def parse_amount(value) -> Decimal:
    """A finite amount of CNY as people write it, or InvalidOperation: thousands separators
    ("1,200,000"), a yuan sign or 元 ("¥1,200,000", "1200000元") and 万 ("120万", "120 万",
    "1.5万元") allowed; anything else (letters, two 万, a bare sign) is not an amount."""
    text = str(value).strip().replace(",", "").replace("，", "")
    text = text.removeprefix(_CURRENCY_SIGNS[0]).removeprefix(_CURRENCY_SIGNS[1]).strip()
    text = text.removesuffix("元").strip()
    scale = Decimal(1)
    if text.endswith("万"):
        text, scale = text[:-1].strip(), _WAN
    if not text or not all(c.isdigit() or c in ".-+eE" for c in text):
        raise InvalidOperation
    number = Decimal(text) * scale
    if not number.is_finite():
        raise InvalidOperation
    return number


def parse_timestamp(value: str) -> datetime:
    """ISO-8601 (a trailing Z allowed), or ValueError."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- how a field shows on the faces -------------------------------------------------------------

@dataclass(frozen=True)
class IntakeField:
    """How the faces show a field. `kind` is one of: product, text, industry, money, months,
    consent, version, time, site. `api` is the field's nested name in the API's request body;
    `form=False` keeps it off the web form (the portal fills it in). `required` is the
    asterisk on the form and a required member of the API body (unless `api_required` says
    otherwise); the rule itself decides."""

    label: Any
    kind: str
    api: str
    required: bool = True
    form: bool = True
    render_kw: dict | None = None
    description: str | None = None
    examples: tuple = ()
    api_required: bool | None = None

    @property
    def in_api_required(self) -> bool:
        return self.required if self.api_required is None else self.api_required


class IntakeContext(TypedDict, total=False):
    product: Any  # the Product the service looked up for the code given, or None
    today: date | None  # the day the buyer's age is reckoned on (history imports backdate)
    notice_version: str  # the consent notice in force, when the intake names none
    # The partner's active site an intake names, by id or code, or None (services/sites.py's
    # `finder(org_id)`); without it no site can be named.
    find_site: Any


def _context(info: ValidationInfo) -> IntakeContext:
    return info.context or {}


def _needs_asset(info: ValidationInfo) -> bool:
    product = _context(info).get("product")
    return product is not None and product.asset_kind in ASSET_KINDS


def _blank(value) -> bool:
    return value is None or value == ""


# --- the rules ----------------------------------------------------------------------------------

def _product(value, info: ValidationInfo) -> str:
    product = _context(info).get("product")
    if product is None or not product.active or product.code != value:
        raise refusal(_l("Choose a loan product."))
    return product.code


def _text(max_len: int, *, required: bool = True, asset: bool = False):
    def rule(value, info: ValidationInfo) -> str | None:
        value = str(value or "").strip()
        if (required or (asset and _needs_asset(info))) and not value:
            raise refusal(_l("This field is required."))
        if len(value) > max_len:
            raise refusal(_l("At most %(n)d characters.", n=max_len))
        return value or None
    return rule


def _checked_amount(value, minimum: Decimal) -> Decimal:
    try:
        number = parse_amount(value)
    except InvalidOperation:
        raise refusal(_l("Enter an amount in yuan, such as 1,200,000 or 120万.")) from None
    if number < minimum or number > MAX_AMOUNT:
        raise refusal(_l("Enter an amount between %(low)s and 100,000,000,000.", low=minimum))
    return number.quantize(Decimal("0.01"))


def _money(minimum: str = "0", *, asset: bool = False):
    low = Decimal(minimum)

    def rule(value, info: ValidationInfo) -> Decimal | None:
        if _blank(value):
            if not asset or _needs_asset(info):
                raise refusal(_l("This field is required."))
            return None
        return _checked_amount(value, low)
    return rule


def _loan_amount(value, info: ValidationInfo) -> Decimal:
    amount = _money("1")(value, info)
    product = _context(info).get("product")
    if product is not None and not product.min_amount <= amount <= product.max_amount:
        raise refusal(_l("This product lends between %(low)s and %(high)s.",
                         low=f"¥{product.min_amount:,}", high=f"¥{product.max_amount:,}"))
    return amount


def _national_id(value, info: ValidationInfo) -> str:
    try:
        return pii.normalise_national_id(value or "", _context(info).get("today"))
    except ValueError as exc:
        raise refusal(exc.args[0]) from None


def _mobile(value, info: ValidationInfo) -> str:
    try:
        return pii.normalise_mobile(value or "")
    except ValueError as exc:
        raise refusal(exc.args[0]) from None


def _industry(value, info: ValidationInfo) -> str:
    if not isinstance(value, str) or value not in INDUSTRY_CLASS:
        raise refusal(_l("Choose the employer's industry."))
    return value


def _term(value, info: ValidationInfo) -> int:
    product = _context(info).get("product")
    longest = product.max_term_months if product else MAX_TERM_MONTHS
    try:
        term = int(str(value).strip())
    except (TypeError, ValueError):
        term = 0
    if not 1 <= term <= longest:
        raise refusal(_l("Enter a term between 1 and %(n)d months.", n=longest))
    return term


def _consent(value, info: ValidationInfo) -> bool:
    if value not in (True, "y", "on", "true", "1", 1):
        raise refusal(_l("The buyer's consent to pass their data to the bank is required."))
    return True


def _notice_version(value, info: ValidationInfo) -> str | None:
    return value or _context(info).get("notice_version")


def _consent_time(value, info: ValidationInfo) -> datetime:
    obtained = value or utcnow()
    if isinstance(obtained, str):
        try:
            obtained = parse_timestamp(obtained)
        except ValueError:
            raise refusal(_l("Give the time of consent as ISO-8601.")) from None
    if not isinstance(obtained, datetime):
        raise refusal(_l("Give the time of consent as ISO-8601."))
    if obtained.tzinfo is None:
        raise refusal(_l("Give the time of consent with its time zone."))
    if obtained > utcnow() + timedelta(minutes=5):
        raise refusal(_l("The time of consent cannot be in the future."))
    return obtained


def _site(value, info: ValidationInfo) -> int | None:
    if _blank(value):
        return None
    if not isinstance(value, int | str) or isinstance(value, bool) or len(str(value)) > 32:
        raise refusal(_l("Name the site by its id or its code."))
    find = _context(info).get("find_site")
    site = find(value) if find is not None else None
    # Another partner's site, an unknown one and a closed one are refused alike: the answer
    # tells nobody which sites other partners have.
    if site is None:
        raise refusal(_l("%(site)s is not one of your organisation's active sites: choose one "
                         "of your own projects, showrooms or offices.", site=str(value)[:32]))
    return site.id


def _rule(function, face: IntakeField):
    # Every field may be left out: its rule decides what a missing value means.
    return Field(None, validate_default=True), PlainValidator(function), face


# --- the intake ---------------------------------------------------------------------------------

NUMBER = {"inputmode": "decimal", "autocomplete": "off"}


class ReferralIntake(BaseModel):
    """One buyer referred for one loan product, as every face submits it (flat names)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    product: Annotated[str, *_rule(_product, IntakeField(
        _l("Loan product"), "product", "product",
        description=f"One of {', '.join(PRODUCT_CODES)}.", examples=("housing_mortgage",)))]
    buyer_name: Annotated[str, *_rule(_text(100), IntakeField(
        _l("Buyer's full name"), "text", "buyer.name", render_kw={"maxlength": 100},
        description="The buyer's full name.", examples=("张伟",)))]
    national_id: Annotated[str, *_rule(_national_id, IntakeField(
        _l("Buyer's national ID number"), "text", "buyer.national_id",
        render_kw={"autocomplete": "off", "maxlength": 18, "spellcheck": "false"},
        description="18-character PRC resident ID number.", examples=("110105198506120018",)))]
    mobile: Annotated[str, *_rule(_mobile, IntakeField(
        _l("Buyer's mobile number"), "text", "buyer.mobile",
        render_kw={"autocomplete": "off", "inputmode": "tel", "maxlength": 20},
        description="11-digit mainland China mobile number.", examples=("13912345678",)))]
    employer: Annotated[str, *_rule(_text(200), IntakeField(
        _l("Employer"), "text", "buyer.employer", render_kw={"maxlength": 200},
        examples=("市第一中学",)))]
    industry: Annotated[str, *_rule(_industry, IntakeField(
        _l("Employer's industry"), "industry", "buyer.industry",
        description="The employer's industry; decides the customer class (1, 2 or 3)."))]
    monthly_income: Annotated[Decimal, *_rule(_money("0"), IntakeField(
        _l("Monthly income (CNY)"), "money", "buyer.monthly_income", render_kw=NUMBER,
        examples=(18000,)))]
    amount: Annotated[Decimal, *_rule(_loan_amount, IntakeField(
        _l("Loan amount (CNY)"), "money", "amount", render_kw=NUMBER, examples=(800000,)))]
    term_months: Annotated[int, *_rule(_term, IntakeField(
        _l("Term (months)"), "months", "term_months",
        render_kw={"inputmode": "numeric", "autocomplete": "off"}, examples=(240,)))]
    asset_description: Annotated[str | None, *_rule(_text(300, required=False, asset=True),
                                                    IntakeField(
        _l("Asset description (property or vehicle products)"), "text", "asset.description",
        required=False, render_kw={"maxlength": 300}))]
    asset_price: Annotated[Decimal | None, *_rule(_money("0", asset=True), IntakeField(
        _l("Asset price, CNY (property or vehicle products)"), "money", "asset.price",
        required=False, render_kw=NUMBER))]
    down_payment: Annotated[Decimal | None, *_rule(_money("0", asset=True), IntakeField(
        _l("Down payment, CNY (property or vehicle products)"), "money", "asset.down_payment",
        required=False, render_kw=NUMBER))]
    consent: Annotated[bool, *_rule(_consent, IntakeField(
        _l("The buyer has read the consent notice and agrees"), "consent", "consent.obtained",
        required=False, api_required=True,  # a checkbox: no asterisk, but the API needs it
        description="The buyer agreed to pass their data to the bank."))]
    consent_notice_version: Annotated[str | None, *_rule(_notice_version, IntakeField(
        None, "version", "consent.notice_version", required=False, form=False,
        # The consent evidence travels with every API submission (docs/attribution.md); the
        # web form records the notice in force and the moment its box was ticked.
        api_required=True, description="The privacy notice version shown."))]
    consent_obtained_at: Annotated[datetime, *_rule(_consent_time, IntakeField(
        None, "time", "consent.obtained_at", required=False, form=False, api_required=True,
        description="ISO-8601 with a time zone."))]
    external_ref: Annotated[str | None, *_rule(_text(64, required=False), IntakeField(
        _l("Your own reference (optional)"), "text", "external_ref", required=False,
        render_kw={"maxlength": 64},
        description="Your own reference (unique within your organisation)."))]
    site: Annotated[int | None, *_rule(_site, IntakeField(
        _l("Project, showroom or office"), "site", "site", required=False,
        description="Optional: the project, showroom or office of yours the buyer came "
                    "through, by its id or its code (GET /api/v1/sites lists them). Another "
                    "partner's site, or one no longer active, is refused (422).",
        examples=("SUNRISE-GARDEN",)))]

    @property
    def customer_class(self) -> int:
        """The bank's customer class (1, 2 or 3), which the employer's industry decides."""
        return INDUSTRY_CLASS[self.industry]

    @model_validator(mode="wrap")
    @classmethod
    def _asset_financing(cls, data, handler, info: ValidationInfo):
        """The down payment and the loan together may not exceed the asset's price. Checked
        even when other fields failed, so that every error shows at once."""
        errors = []
        try:
            intake = handler(data)
        except ValidationError as exc:
            intake, errors = None, exc.errors(include_url=False)
        raw = data if isinstance(data, dict) else {}
        if intake is not None:  # the fields read already, by the same rules as _quiet's
            price, down, amount = intake.asset_price, intake.down_payment, intake.amount
        else:
            price = _quiet(raw.get("asset_price"), "0")
            down, amount = _quiet(raw.get("down_payment"), "0"), _quiet(raw.get("amount"), "1")
        across = []
        if price is not None and down is not None and down > price:
            across.append(("down_payment", _l("The down payment cannot exceed the price.")))
        if _needs_asset(info) and None not in (price, down, amount) and amount > price - down:
            across.append(("amount", _l("The loan cannot exceed the price less the down "
                                        "payment.")))
        if not errors and not across:
            return intake
        raise _merge(cls, errors, across, raw)


def _quiet(value, minimum: str) -> Decimal | None:
    """The amount as its field's rule reads it, or None where that rule refuses it."""
    if _blank(value):
        return None
    try:
        return _checked_amount(value, Decimal(minimum))
    except PydanticCustomError:
        return None


def _merge(model, errors: list[dict], across: list[tuple], raw: dict) -> ValidationError:
    """One ValidationError of the fields' errors and the cross-field ones, these right after
    the asset fields (the order the messages are listed in)."""
    names = list(model.model_fields)
    split = names.index("down_payment") + 1
    before = [e for e in errors if e["loc"] and e["loc"][0] in names[:split]]
    after = [e for e in errors if e not in before]
    details = [_detail(e) for e in before]
    details += [{"type": refusal(message), "loc": (name,), "input": raw.get(name)}
                for name, message in across]
    details += [_detail(e) for e in after]
    return ValidationError.from_exception_data(model.__name__, details)


def _detail(error: dict) -> dict:
    kind = error["type"]
    if kind == REFUSAL:
        kind = refusal(error["ctx"]["message"])
    detail = {"type": kind, "loc": error["loc"], "input": error.get("input")}
    if error.get("ctx") and kind is error["type"]:
        detail["ctx"] = error["ctx"]
    return detail


def faces() -> dict[str, IntakeField]:
    """{flat name: IntakeField} in the order of the fields."""
    return {name: next(m for m in info.metadata if isinstance(m, IntakeField))
            for name, info in ReferralIntake.model_fields.items()}


def api_names() -> dict[str, str]:
    """{flat name: nested name in the API body}, for the names that differ."""
    return {name: face.api for name, face in faces().items() if face.api != name}


def form_fields() -> dict[str, IntakeField]:
    """The fields the partner types in on the web form, in order."""
    return {name: face for name, face in faces().items() if face.form}


def check(data: dict, context: IntakeContext) -> ReferralIntake:
    """Validate a flat intake dict, or raise pydantic's ValidationError."""
    return ReferralIntake.model_validate(data, context=context)
