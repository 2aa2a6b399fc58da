"""The admin-set KPI weights and tier thresholds: versioned rows, validated by one schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from models import ScoringWeights
from portal.i18n import lazy_gettext as _l

from ...extensions import db
from .. import Ctx, audit
from ..errors import ValidationFailed
from .kpis import DEFAULT_WEIGHTS, KPIS
from .tiers import DEFAULT_THRESHOLDS


@dataclass
class Weights:
    version: int
    weights: dict
    thresholds: dict

    @property
    def total(self) -> float:
        return sum(self.weights.values())


def current_weights() -> Weights:
    row = db.session.scalar(select(ScoringWeights).order_by(ScoringWeights.id.desc()).limit(1))
    if row is None:
        return Weights(0, dict(DEFAULT_WEIGHTS), dict(DEFAULT_THRESHOLDS))
    weights = {k.name: float(row.weights.get(k.name, 0) or 0) for k in KPIS}
    return Weights(row.id, weights, {**DEFAULT_THRESHOLDS, **(row.thresholds or {})})


# --- the input: one schema for the weights form --------------------------------------------------

# The error types the schema raises, and what the admin reads for each.
MESSAGES = {
    "number": _l("Enter a number."),
    "weight_range": _l("Enter a weight between 0 and 100."),
    "threshold_range": _l("Out of range."),
    "no_weight": _l("At least one weight must be above zero."),
    "not_rising": _l("The thresholds must rise: watch ≤ core ≤ strategic."),
}
# Errors of the whole input, shown at this field.
SHOWN_AT = {"no_weight": "weights", "not_rising": "strategic"}


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PydanticCustomError("number", "Enter a number.") from None


def _within(high: float, kind: str):
    def check(value: float) -> float:
        if not 0 <= value <= high:
            raise PydanticCustomError(kind, "Out of range.")
        return value
    return AfterValidator(check)


# An empty weight is 0; an empty threshold is not a number.
Weight = Annotated[float, BeforeValidator(lambda v: _number(v or 0)), _within(100, "weight_range")]
Threshold = Annotated[float, BeforeValidator(_number), _within(100, "threshold_range")]
SampleSize = Annotated[float, BeforeValidator(_number), _within(100_000, "threshold_range"),
                       AfterValidator(int)]


class _WeightsBase(BaseModel):
    @model_validator(mode="after")
    def _some_weight(self):
        if sum(self.model_dump().values()) <= 0:
            raise PydanticCustomError("no_weight", "At least one weight must be above zero.")
        return self


KpiWeights = create_model("KpiWeights", __base__=_WeightsBase,
                          **{k.name: (Weight, Field(default=0.0)) for k in KPIS})
TierThresholds = create_model(
    "TierThresholds",
    **{key: (SampleSize if key.endswith("sample") else Threshold, Field(default=default))
       for key, default in DEFAULT_THRESHOLDS.items()})


class WeightsInput(BaseModel):
    """The weights form: a weight 0-100 per KPI, the tier thresholds, and a note."""

    weights: KpiWeights
    thresholds: TierThresholds
    note: str | None = None

    @model_validator(mode="after")
    def _thresholds_rise(self):
        t = self.thresholds
        if not t.watch <= t.core <= t.strategic:
            raise PydanticCustomError("not_rising", "The thresholds must rise.")
        return self


def parse_weights(weights: dict, thresholds: dict, note: str | None = None) -> WeightsInput:
    """The checked input, or ValidationFailed with one message per field."""
    try:
        return WeightsInput(weights=weights, thresholds=thresholds, note=note)
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            key = err["loc"][-1] if err["type"] not in SHOWN_AT else SHOWN_AT[err["type"]]
            errors.setdefault(key, MESSAGES[err["type"]])
        raise ValidationFailed(errors) from None


def save_weights(ctx: Ctx, weights: dict, thresholds: dict, note: str | None = None
                 ) -> ScoringWeights:
    """Store a new version of the weights and tier thresholds (admins only; audited)."""
    given = parse_weights(weights, thresholds, note)
    clean, limits = given.weights.model_dump(), given.thresholds.model_dump()
    row = ScoringWeights(weights=clean, thresholds=limits, note=(note or "").strip() or None,
                         created_by_id=ctx.user.id if ctx.user else None)
    db.session.add(row)
    db.session.flush()
    audit.record(ctx, "scoring.weights", row, weights=clean, thresholds=limits)
    return row
