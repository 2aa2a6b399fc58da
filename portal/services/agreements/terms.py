"""The terms of an agreement as a manager enters them, declared once as a pydantic model.

The web form and the API hand in loose values (a list or one text with a line per item, numbers
as text, dates as text or dates); `AgreementTerms` reads them into the values stored on the
agreement and refuses each field with its own message, all fields at once. Which products exist
is the database's to say: the caller passes a lookup in the validation context
(`known_products`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo
from sqlalchemy import select

from models import BRAND_KINDS, PROJECT_KINDS, Organization, Product
from portal.i18n import lazy_gettext as _l

from ...extensions import db
from ..validation import checked, refusal

MAX_TERM_DAYS = 5 * 366


def lines(value) -> list[str]:
    """One item per line (or ; / ；), trimmed, without repeats; a list is taken as it is."""
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[\n;；]+", value)
    out = []
    for item in value:
        item = str(item).strip()
        if item and item not in out:
            out.append(item[:200])
    return out


def _text(value) -> str | None:
    return (value or "").strip()[:2000] or None


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def parse(value) -> int:
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise refusal(_l("Enter a whole number.")) from None
        if not low <= number <= high:
            raise refusal(_l("Enter a number from %(low)d to %(high)d.", low=low, high=high))
        return number
    return parse


def _day(value) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise refusal(_l("Enter a date (YYYY-MM-DD).")) from None


def _products(value, info: ValidationInfo) -> list[str]:
    codes = lines(value)
    if not codes:
        raise refusal(_l("Choose at least one product."))
    if not info.context["known_products"](codes) >= set(codes):
        raise refusal(_l("Choose loan products from the list."))
    return sorted(codes)


def _expiry(value, info: ValidationInfo) -> date:
    end = _day(value)
    start = info.data.get("effective_from")  # absent when the effective date was refused
    if start is not None:
        if end <= start:
            raise refusal(_l("The expiry date must be after the effective date."))
        if (end - start).days > MAX_TERM_DAYS:
            raise refusal(_l("An agreement runs for at most five years."))
    return end


Lines = Annotated[list[str], PlainValidator(lines)]
Text = Annotated[str | None, PlainValidator(_text)]


class AgreementTerms(BaseModel):
    """The terms stored on an agreement. Fields missing from the input take the defaults here;
    the dates have none, so a missing one is refused like a wrong one."""

    model_config = ConfigDict(extra="ignore")

    products: Annotated[list[str], PlainValidator(_products)] = Field(
        default=None, validate_default=True)
    projects: Lines = []
    stage_guarantee: Text = None
    brands: Lines = []
    onsite_staff: Text = None
    bank_sla_hours: Annotated[int, PlainValidator(_whole(1, 720))] = 72
    partner_doc_days: Annotated[int, PlainValidator(_whole(1, 90))] = 5
    effective_from: Annotated[date, PlainValidator(_day)] = Field(
        default=None, validate_default=True)
    expires_on: Annotated[date, PlainValidator(_expiry)] = Field(
        default=None, validate_default=True)


def _active_products(codes: list[str]) -> set[str]:
    return set(db.session.scalars(select(Product.code).where(Product.code.in_(codes),
                                                              Product.active.is_(True))))


def clean_terms(org: Organization, data: dict) -> dict:
    """Validate the terms of an agreement for `org`; raise ValidationFailed with every error.

    Projects and a stage guarantee belong to developers' agreements, brands to dealers'; for
    other partners they are dropped, not refused."""
    terms = checked(AgreementTerms, data, {"known_products": _active_products})
    out = terms.model_dump()
    if org.kind not in PROJECT_KINDS:
        out["projects"], out["stage_guarantee"] = [], None
    if org.kind not in BRAND_KINDS:
        out["brands"] = []
    return out
