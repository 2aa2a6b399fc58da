"""Partners' quoting tools: which products an organisation may refer, each product's sheet
(limits, rates by term, documents), the payment calculator, and the administrator's rate tables.

The calculator works in Decimal and rounds every figure to the fen with banker's rounding
(ROUND_HALF_EVEN), month by month as a repayment schedule does: each month's interest is the
balance times the monthly rate, rounded; the last month repays whatever principal is left, so
the principal parts always add up to the amount lent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo
from sqlalchemy import select

from models import Organization, Product, ProductRate
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, agreements, audit
from .errors import NotFound, ValidationFailed
from .referral_intake import parse_amount
from .validation import checked, refusal

FEN = Decimal("0.01")
HUNDRED = Decimal(100)
TWELVE = Decimal(12)
MAX_RATE = Decimal(36)  # percent a year: the legal ceiling the courts protect
EQUAL_INSTALMENT = "equal_instalment"  # 等额本息
EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
METHODS = (EQUAL_INSTALMENT, EQUAL_PRINCIPAL)


def fen(value: Decimal) -> Decimal:
    return value.quantize(FEN, rounding=ROUND_HALF_EVEN)


# --- which products, and their sheets -----------------------------------------------------------

def covered(org: Organization) -> list[Product]:
    """The active products the organisation's agreements in force cover, by code."""
    codes = agreements.covered_products(org)
    if not codes:
        return []
    return list(db.session.scalars(select(Product).where(
        Product.code.in_(codes), Product.active.is_(True)).order_by(Product.code)))


def covered_product(org: Organization, code: str | None) -> Product | None:
    return next((p for p in covered(org) if p.code == code), None)


def rate_for(product: Product, months: int) -> Decimal | None:
    """The annual rate (percent) of the band that holds `months`, or None."""
    return next((band.annual_rate for band in product.rates
                 if band.min_term_months <= months <= band.max_term_months), None)


# --- the schedule -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instalment:
    number: int
    payment: Decimal
    principal: Decimal
    interest: Decimal
    balance: Decimal  # what is still owed after this payment


@dataclass
class Schedule:
    amount: Decimal
    annual_rate: Decimal  # percent
    months: int
    method: str
    rows: list[Instalment] = field(default_factory=list)

    @property
    def first_payment(self) -> Decimal:
        return self.rows[0].payment

    @property
    def last_payment(self) -> Decimal:
        return self.rows[-1].payment

    @property
    def total_interest(self) -> Decimal:
        return sum((r.interest for r in self.rows), Decimal(0))

    @property
    def total_repayment(self) -> Decimal:
        return sum((r.payment for r in self.rows), Decimal(0))

    def excerpt(self, head: int = 12) -> tuple[list[Instalment], Instalment | None]:
        """The first `head` rows, and the last one when it is not among them."""
        rows = self.rows[:head]
        return rows, (self.rows[-1] if len(self.rows) > head else None)


def level_payment(amount: Decimal, monthly_rate: Decimal, months: int) -> Decimal:
    """等额本息: the one monthly payment that repays `amount` over `months` (to the fen)."""
    if monthly_rate == 0:
        return fen(amount / months)
    with localcontext() as context:
        context.prec = 40
        growth = (1 + monthly_rate) ** months
        return fen(amount * monthly_rate * growth / (growth - 1))


def schedule(amount: Decimal, annual_rate: Decimal, months: int, method: str) -> Schedule:
    """The repayment schedule of `amount` lent for `months` at `annual_rate` percent a year."""
    if method not in METHODS:
        raise ValueError(method)
    monthly_rate = Decimal(annual_rate) / HUNDRED / TWELVE
    plan = Schedule(amount=fen(amount), annual_rate=Decimal(annual_rate), months=months,
                    method=method)
    balance = plan.amount
    level = level_payment(balance, monthly_rate, months)
    part = fen(balance / months)
    for number in range(1, months + 1):
        interest = fen(balance * monthly_rate)
        if number == months:
            principal = balance
        elif method == EQUAL_INSTALMENT:
            principal = min(level - interest, balance)
        else:
            principal = min(part, balance)
        balance -= principal
        plan.rows.append(Instalment(number, principal + interest, principal, interest, balance))
    return plan


# --- the calculator's input ---------------------------------------------------------------------

def _amount(value, info: ValidationInfo) -> Decimal:
    try:
        amount = fen(parse_amount(value if value is not None else ""))
    except InvalidOperation:
        raise refusal(_l("Enter an amount in yuan, such as 1,200,000 or 120万.")) from None
    product: Product = info.context["product"]
    if not product.min_amount <= amount <= product.max_amount:
        raise refusal(_l("This product lends between %(low)s and %(high)s.",
                         low=f"¥{product.min_amount:,}", high=f"¥{product.max_amount:,}"))
    return amount


def _months(value, info: ValidationInfo) -> int:
    product: Product = info.context["product"]
    try:
        months = int(str(value).strip())
    except (TypeError, ValueError):
        months = 0
    if not 1 <= months <= product.max_term_months:
        raise refusal(_l("Enter a term between 1 and %(n)d months.", n=product.max_term_months))
    if rate_for(product, months) is None:
        raise refusal(_l("The bank quotes no rate for this term. Please contact your channel "
                         "manager."))
    return months


def _method(value, info: ValidationInfo) -> str:
    if value not in METHODS:
        raise refusal(_l("Choose how the loan is repaid."))
    return value


class QuoteRequest(BaseModel):
    """What the calculator is asked: the amount (万 allowed), the term and the method."""

    model_config = ConfigDict(extra="ignore")

    amount: Annotated[Decimal, Field(None, validate_default=True), PlainValidator(_amount)]
    months: Annotated[int, Field(None, validate_default=True), PlainValidator(_months)]
    method: Annotated[str, Field(None, validate_default=True), PlainValidator(_method)]


def quote(org: Organization, code: str | None, data: dict) -> tuple[Product, Schedule]:
    """A schedule for one of the organisation's covered products, or ValidationFailed."""
    product = covered_product(org, code)
    if product is None:
        raise ValidationFailed({"product": _l("Choose one of the products your agreement "
                                              "covers.")})
    request = checked(QuoteRequest, data, {"product": product})
    return product, schedule(request.amount, rate_for(product, request.months),
                             request.months, request.method)


# --- the administrator's rate tables ------------------------------------------------------------

@dataclass(frozen=True)
class Band:
    min_term_months: int
    max_term_months: int
    annual_rate: Decimal


def product(code: str) -> Product:
    found = db.session.get(Product, code)
    if found is None:
        raise NotFound()
    return found


def _band_errors(product: Product, rows: list[dict]) -> tuple[list[Band], dict]:
    bands, errors = [], {}
    for i, row in enumerate(rows):
        if not any(str(row.get(k) or "").strip() for k in ("low", "high", "rate")):
            continue  # an empty line of the form
        try:
            low, high = int(str(row.get("low")).strip()), int(str(row.get("high")).strip())
        except (TypeError, ValueError):
            errors[f"band_{i}"] = _l("Enter the shortest and longest term in whole months.")
            continue
        try:
            rate = Decimal(str(row.get("rate")).strip().removesuffix("%"))
        except InvalidOperation:
            rate = Decimal(-1)
        if not rate.is_finite() or not 0 <= rate <= MAX_RATE or rate != rate.quantize(
                Decimal("0.001")):
            errors[f"band_{i}"] = _l("Enter a rate from 0 to 36 percent, at most three decimals.")
            continue
        if not 1 <= low <= high <= product.max_term_months:
            errors[f"band_{i}"] = _l("Terms run from 1 to %(n)d months, shortest first.",
                                     n=product.max_term_months)
            continue
        bands.append(Band(low, high, rate.quantize(Decimal("0.001"))))
    return sorted(bands, key=lambda b: b.min_term_months), errors


def save_rates(ctx: Ctx, product: Product, rows: list[dict]) -> list[Band]:
    """Replace the product's rate table. The bands must cover every term from one month to the
    product's longest exactly once: a partner must never meet a term without a rate."""
    bands, errors = _band_errors(product, rows)
    if not errors:
        expected = 1
        for band in bands:
            if band.min_term_months != expected:
                errors["bands"] = _l("The bands must follow on from each other without gap or "
                                     "overlap: a band should start at %(n)d months.", n=expected)
                break
            expected = band.max_term_months + 1
        else:
            if expected != product.max_term_months + 1:
                errors["bands"] = _l("The bands must reach the product's longest term, %(n)d "
                                     "months.", n=product.max_term_months)
    if errors:
        raise ValidationFailed(errors)
    before = [[b.min_term_months, b.max_term_months, str(b.annual_rate)] for b in product.rates]
    product.rates.clear()
    db.session.flush()  # the old bands go before the new ones take their terms
    for band in bands:
        product.rates.append(ProductRate(min_term_months=band.min_term_months,
                                         max_term_months=band.max_term_months,
                                         annual_rate=band.annual_rate))
    db.session.flush()
    after = [[b.min_term_months, b.max_term_months, str(b.annual_rate)] for b in bands]
    # A product is named by its code, not an id: the entry is written with its target spelled out.
    audit.insert_entry(db.session, audit.values(ctx, "product.rates", target_type="product",
                                                target_id=product.code,
                                                detail={"before": before, "after": after}))
    return bands
