"""The one way a service checks its input: a pydantic model per input, whose refusals carry the
bank's own (lazy, translated when shown) messages, turned into `ValidationFailed` with one message
per field. The intake, import rows, agreement terms and webhook endpoints all use it."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from .errors import ValidationFailed

REFUSAL = "refusal"
Model = TypeVar("Model", bound=BaseModel)


def refusal(message) -> PydanticCustomError:
    """A validation error whose message is `message` itself (lazy, translated when shown)."""
    return PydanticCustomError(REFUSAL, "{message}", {"message": message})


def message_of(error: dict):
    """The message of one pydantic error: our own refusal's as given, else pydantic's text."""
    if error["type"] == REFUSAL:
        return error["ctx"]["message"]
    return error["msg"]


def field_errors(exc: ValidationError, *, first_wins: bool = False) -> dict:
    """{field (its dotted path): message} in the order of the fields. By default a later message
    for a field replaces an earlier one (a rule across fields says more than the field's own);
    `first_wins` keeps the first (a union type fails once per member: the first says most)."""
    errors: dict = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(p) for p in error["loc"]) or "body"
        if not (first_wins and name in errors):
            errors[name] = message_of(error)
    return errors


def first_error(exc: ValidationError) -> str:
    """The message of the first field that failed: an import row reports one reason."""
    return str(message_of(exc.errors(include_url=False)[0]))


def checked(model: type[Model], data, context: dict | None = None, *,
            first_wins: bool = False) -> Model:
    """`data` read by `model`, or ValidationFailed naming every field that failed."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, first_wins=first_wins)) from None
