"""The terms a decision carries (docs/contract.md, `decision`, `contract`, `disbursement`).

Three lifecycle moves record terms, each checked by one model here and written on the
referral's one `LoanDecision` row by `referrals.transition` (the only way a referral moves):

- approved: the amount, term and annual rate approved and the conditions (text the partner
  reads). Less than the amount asked, or another term, is a counter-offer;
- contract_signed: the contract's number, amount and signing date;
- disbursed: the amount paid out, its value date and the loan note number if given.

The pages always ask for them; over the API they stay optional (the contract let bank systems
move a referral without them), but when given they are checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import func, select

from models import LoanDecision, Referral
from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_date
from .errors import ValidationFailed
from .lifecycle import State
from .validation import checked, refusal

Day = date  # the field named `date` below would shadow the type in its annotation

# Which move records which terms, and the name they go by in the API's body and answers.
SECTION = {State.approved: "decision", State.contract_signed: "contract",
           State.disbursed: "disbursement"}

MAX_CONDITIONS = 10
CONDITION_LENGTH = 300
NUMBER_LENGTH = 64
RATE_CEILING = Decimal(36)  # the legal ceiling on private lending rates, percent a year
CENT = Decimal("0.01")


def yuan(value) -> str:
    """An amount as the bank writes it in a message: ¥1,000,000.00."""
    return f"¥{Decimal(value):,.2f}"


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _amount(value, missing):
    if _blank(value):
        raise refusal(missing)
    if isinstance(value, bool):
        raise refusal(_l("Enter an amount in yuan, e.g. 800000."))
    text = str(value).strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise refusal(_l("Enter an amount in yuan, e.g. 800000.")) from None
    if not amount.is_finite():
        raise refusal(_l("Enter an amount in yuan, e.g. 800000."))
    if amount <= 0:
        raise refusal(_l("The amount must be more than zero."))
    if amount != amount.quantize(CENT):
        raise refusal(_l("Give the amount in yuan with at most two decimals (fen)."))
    if amount >= Decimal("1e12"):
        raise refusal(_l("The amount is far too large."))
    return amount.quantize(CENT)


def _day(value, missing):
    if _blank(value):
        raise refusal(missing)
    if isinstance(value, datetime):
        return bank_date(value)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise refusal(_l("Enter the date as YYYY-MM-DD, e.g. 2026-03-18.")) from None


def _number(value, missing=None):
    if _blank(value):
        if missing is not None:
            raise refusal(missing)
        return None
    text = str(value).strip()
    if len(text) > NUMBER_LENGTH:
        raise refusal(_l("At most %(n)d characters.", n=NUMBER_LENGTH))
    if any(ord(c) < 32 for c in text):
        raise refusal(_l("Write the number on one line."))
    return text


def _context(info: ValidationInfo) -> dict:
    return info.context or {}


class _Terms(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)


class ApprovalTerms(_Terms):
    amount: Decimal | None = Field(None, validate_default=True)
    term_months: int | None = Field(None, validate_default=True)
    rate_percent: Decimal | None = Field(None, validate_default=True)
    conditions: list[str] = Field(default_factory=list, validate_default=True)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value):
        return _amount(value, _l("Enter the approved amount."))

    @field_validator("term_months", mode="before")
    @classmethod
    def _term(cls, value):
        if _blank(value):
            raise refusal(_l("Enter the approved term in months."))
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise refusal(_l("Enter the term as a whole number of months, e.g. 240."))
        return int(text)

    @field_validator("rate_percent", mode="before")
    @classmethod
    def _rate(cls, value):
        if _blank(value):
            raise refusal(_l("Enter the annual interest rate."))
        try:
            rate = Decimal(str(value).strip().rstrip("%").strip())
        except InvalidOperation:
            rate = None
        if isinstance(value, bool) or rate is None or not rate.is_finite():
            raise refusal(_l("Enter the annual rate as a percentage, e.g. 3.85."))
        if not Decimal(0) < rate < RATE_CEILING:
            raise refusal(_l("The annual rate must be above 0 %% and below %(max)s %%.",
                             max=RATE_CEILING))
        if rate != rate.quantize(Decimal("0.001")):
            raise refusal(_l("Give the rate with at most three decimals, e.g. 3.85."))
        return rate

    @field_validator("conditions", mode="before")
    @classmethod
    def _conditions(cls, value):
        if _blank(value):
            return []
        lines = value.splitlines() if isinstance(value, str) else value
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise refusal(_l("List the conditions as text, one per line."))
        lines = [" ".join(line.split()) for line in lines]
        lines = [line for line in lines if line]
        if any(ord(c) < 32 for line in lines for c in line):
            raise refusal(_l("Write the conditions as plain text."))
        if len(lines) > MAX_CONDITIONS:
            raise refusal(_l("At most %(n)d conditions.", n=MAX_CONDITIONS))
        if any(len(line) > CONDITION_LENGTH for line in lines):
            raise refusal(_l("Each condition may have at most %(n)d characters.",
                             n=CONDITION_LENGTH))
        return lines

    @model_validator(mode="after")
    def _within_product(self, info: ValidationInfo):
        referral: Referral = _context(info)["referral"]
        product = referral.product
        errors = {}
        if not product.min_amount <= self.amount <= product.max_amount:
            errors["amount"] = _l("This product lends from %(low)s to %(high)s.",
                                  low=yuan(product.min_amount), high=yuan(product.max_amount))
        elif self.amount > referral.amount:
            errors["amount"] = _l("The bank may approve the amount requested (%(asked)s) or "
                                  "less, not more.", asked=yuan(referral.amount))
        if not 1 <= self.term_months <= product.max_term_months:
            errors["term_months"] = _l("This product lends for 1 to %(n)d months.",
                                       n=product.max_term_months)
        if errors:
            raise ValidationFailed(errors)
        return self


class ContractTerms(_Terms):
    number: str | None = Field(None, validate_default=True)
    amount: Decimal | None = Field(None, validate_default=True)
    date: Day | None = Field(None, validate_default=True)

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value):
        return _number(value, _l("Enter the contract number."))

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value):
        return _amount(value, _l("Enter the contract amount."))

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value):
        return _day(value, _l("Enter the date the contract was signed."))

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo):
        context = _context(info)
        referral: Referral = context["referral"]
        errors = {}
        ceiling, of = _ceiling(referral, contract=False)
        if self.amount > ceiling:
            errors["amount"] = CONTRACT_ABOVE[of](amount=yuan(ceiling))
        errors.update(_date_errors(self.date, context["today"], _after(referral)))
        if errors:
            raise ValidationFailed(errors)
        return self


class DisbursementTerms(_Terms):
    amount: Decimal | None = Field(None, validate_default=True)
    date: Day | None = Field(None, validate_default=True)
    number: str | None = Field(None, validate_default=True)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value):
        return _amount(value, _l("Enter the amount disbursed."))

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value):
        return _day(value, _l("Enter the value date of the disbursement."))

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value):
        return _number(value)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo):
        context = _context(info)
        referral: Referral = context["referral"]
        errors = {}
        ceiling, of = _ceiling(referral, contract=True)
        if self.amount > ceiling:
            errors["amount"] = DISBURSED_ABOVE[of](amount=yuan(ceiling))
        errors.update(_date_errors(self.date, context["today"], _after(referral)))
        if errors:
            raise ValidationFailed(errors)
        return self


MODELS = {State.approved: ApprovalTerms, State.contract_signed: ContractTerms,
          State.disbursed: DisbursementTerms}


# Whole sentences, so that each language can word them its own way.
CONTRACT_ABOVE = {
    "approved": lambda **v: _l("The contract amount cannot be more than the approved amount "
                               "(%(amount)s).", **v),
    "requested": lambda **v: _l("The contract amount cannot be more than the amount "
                                "requested (%(amount)s).", **v),
}
DISBURSED_ABOVE = {
    "contract": lambda **v: _l("The amount disbursed cannot be more than the contract amount "
                               "(%(amount)s).", **v),
    "approved": lambda **v: _l("The amount disbursed cannot be more than the approved amount "
                               "(%(amount)s).", **v),
    "requested": lambda **v: _l("The amount disbursed cannot be more than the amount "
                                "requested (%(amount)s).", **v),
}
BEFORE = {
    "contract": lambda **v: _l("The date cannot be before the contract was signed "
                               "(%(day)s).", **v),
    "approved": lambda **v: _l("The date cannot be before the approval (%(day)s).", **v),
}


def _ceiling(referral: Referral, *, contract: bool) -> tuple[Decimal, str]:
    """The most that may be signed or paid out, and which figure that is."""
    row = referral.decision
    if contract and row is not None and row.contract_amount is not None:
        return row.contract_amount, "contract"
    if row is not None and row.approved_amount is not None:
        return row.approved_amount, "approved"
    return referral.amount, "requested"


def _after(referral: Referral) -> tuple[date | None, str]:
    """The earliest date the next record may carry: the contract's, else the approval's."""
    row = referral.decision
    if row is not None and row.contract_signed_on is not None:
        return row.contract_signed_on, "contract"
    if referral.decided_at is not None:
        return bank_date(referral.decided_at), "approved"
    return None, ""


def _date_errors(day: date, today: date, after: tuple[date | None, str]) -> dict:
    earliest, of = after
    if day > today:
        return {"date": _l("The date cannot be in the future (today is %(today)s).",
                           today=today.isoformat())}
    if earliest is not None and day < earliest:
        return {"date": BEFORE[of](day=earliest.isoformat())}
    return {}


@dataclass
class Checked:
    target: State
    terms: _Terms


def check(referral: Referral, target: State, data: dict | None, *, at: datetime) -> Checked | None:
    """The terms of this move, checked (ValidationFailed naming each field otherwise); None
    when none were given. Terms given for a move that records none are refused."""
    if data is None:
        return None
    model = MODELS.get(target)
    if model is None:
        raise ValidationFailed({"terms": _l("Only approving, signing the contract and "
                                            "disbursing record terms.")})
    return Checked(target, checked(model, data, {"referral": referral, "today": bank_date(at)}))


def record(referral: Referral, checked_terms: Checked, at: datetime) -> LoanDecision:
    """Write checked terms on the referral's decision row (made on its first terms)."""
    row = referral.decision
    if row is None:
        row = referral.decision = LoanDecision()
    terms = checked_terms.terms
    if isinstance(terms, ApprovalTerms):
        row.approved_amount, row.approved_term_months = terms.amount, terms.term_months
        row.rate_percent = terms.rate_percent
        row.conditions = "\n".join(terms.conditions) or None
        row.approved_at = at
    elif isinstance(terms, ContractTerms):
        row.contract_number, row.contract_amount = terms.number, terms.amount
        row.contract_signed_on = terms.date
    else:
        row.disbursed_amount, row.disbursed_on = terms.amount, terms.date
        row.loan_number = terms.number
    return row


def audit_detail(checked_terms: Checked | None) -> dict:
    """The figures of the terms for the move's audit entry (plain strings)."""
    if checked_terms is None:
        return {}
    terms = checked_terms.terms
    out = {}
    for name in ("amount", "term_months", "rate_percent", "number", "date"):
        value = getattr(terms, name, None)
        if value is not None:
            out[name] = value.isoformat() if isinstance(value, date) else str(value)
    return {"terms": out}


def lent_amount(referral_columns):
    """SQL: the amount a referral's loan lent — the amount disbursed where recorded, else the
    amount requested (history imported without terms). `referral_columns` is the referral
    table's (or an alias's) columns."""
    disbursed = (select(LoanDecision.disbursed_amount)
                 .where(LoanDecision.referral_id == referral_columns.id)
                 .scalar_subquery())
    return func.coalesce(disbursed, referral_columns.amount)
