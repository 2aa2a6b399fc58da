"""What a company types to apply to become a partner, read by one pydantic model: the unified
social credit code (统一社会信用代码) checked by python-stdnum, the contact's mobile and e-mail as
everywhere else, the branch and the products from their lists."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo
from stdnum.cn import uscc as stdnum_uscc
from stdnum.exceptions import ValidationError as NumberInvalid

from models import PartnerType
from portal.i18n import lazy_gettext as _l

from . import accounts, branches, pii
from .errors import ValidationFailed
from .validation import refusal


def clean_uscc(value) -> str:
    """The unified social credit code (统一社会信用代码), compact and upper-case, or ValueError
    with the applicant's message (a wrong length or letter, or a wrong check digit)."""
    number = stdnum_uscc.compact(str(value or "")).upper()
    if not number:
        raise ValueError(_l("This field is required."))
    try:
        return stdnum_uscc.validate(number)
    except NumberInvalid:
        raise ValueError(_l("This is not a valid unified social credit code: check its 18 "
                            "characters (the last one is a check digit).")) from None


def _text(max_len: int, *, minimum: int = 1):
    def rule(value) -> str:
        value = re.sub(r"\s+", " ", str(value or "")).strip()
        if len(value) < minimum:
            raise refusal(_l("This field is required."))
        if len(value) > max_len:
            raise refusal(_l("At most %(n)d characters.", n=max_len))
        return value
    return rule


def _uscc(value) -> str:
    try:
        return clean_uscc(value)
    except ValueError as exc:
        raise refusal(exc.args[0]) from None


def _kind(value) -> str:
    if value not in {t.value for t in PartnerType}:
        raise refusal(_l("Choose the kind of partner you are."))
    return value


def _branch(value) -> str:
    branch = branches.by_code(value)
    if branch is None:
        raise refusal(_l("Choose the branch you apply to."))
    return branch.code


def _mobile(value) -> str:
    try:
        return pii.normalise_mobile(value or "")
    except ValueError as exc:
        raise refusal(exc.args[0]) from None


def _email(value) -> str:
    try:
        return accounts.normalise_email(value or "")
    except ValidationFailed as exc:
        raise refusal(exc.fields["email"]) from None


def _products(value, info: ValidationInfo) -> list[str]:
    codes = [value] if isinstance(value, str) else list(value or [])
    codes = sorted({str(c).strip() for c in codes if str(c).strip()})
    if not codes:
        raise refusal(_l("Choose at least one product."))
    if not set(codes) <= info.context["offered"]:
        raise refusal(_l("Choose loan products from the list."))
    return codes


def _rule(function):
    return Field(None, validate_default=True), PlainValidator(function)


class ApplicationInput(BaseModel):
    """What the public form takes (the licence file is checked beside it)."""

    model_config = ConfigDict(extra="ignore")

    company_name: Annotated[str, *_rule(_text(200, minimum=2))]
    uscc: Annotated[str, *_rule(_uscc)]
    kind: Annotated[str, *_rule(_kind)]
    branch: Annotated[str, *_rule(_branch)]
    contact_name: Annotated[str, *_rule(_text(100))]
    contact_mobile: Annotated[str, *_rule(_mobile)]
    contact_email: Annotated[str, *_rule(_email)]
    products: Annotated[list[str], *_rule(_products)]
