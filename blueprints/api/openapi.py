"""The OpenAPI document, generated from the views themselves.

Each API view carries its declaration (`@operation(...)`: summary, query and body models,
responses); `idempotent` marks the views that take an Idempotency-Key. `document(app)` walks the
app's URL map, so a path and its method are written once, in the route. The rules every
operation shares (the key, the rate limit, error bodies, the language of messages, 413 for a
body over the limit) are added here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, jsonify, render_template
from pydantic.json_schema import models_json_schema

from . import schemas
from .common import bp
from .idempotency import REPLAY_HEADER

API_PREFIX = "/api/v1"
REF = schemas.REF
PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
_PATH_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@dataclass
class Operation:
    operation_id: str
    summary: str
    tag: str
    # status -> (response model or a content dict such as PDF, description[, headers])
    responses: dict[int, tuple]
    errors: tuple[str, ...] = ()
    query: Any = None
    body: Any = None  # a pydantic model (JSON) or a content dict (multipart)
    description: str | None = None
    models: list = field(default_factory=list)


def operation(operation_id: str, summary: str, *, tag: str, responses: dict[int, tuple],
              errors: tuple[str, ...] = (), query=None, body=None,
              description: str | None = None):
    """Declare a view for the document; goes right under `@bp.route`."""
    def mark(view):
        view.openapi = Operation(operation_id, summary, tag, responses, tuple(errors), query,
                                 body, description)
        return view
    return mark


ERRORS = {
    "401": "Missing, wrong or revoked API key. Such calls share a budget per client address "
           "(`API_UNAUTHENTICATED_RATE_LIMIT`); past it, 429.",
    "403": "Your role may not do this, in any state.",
    "404": "No such object, or it belongs to another organisation.",
    "409": "The object's state does not allow this.",
    "413": "The upload or the request body is too large.",
    "422": "Invalid input; `fields` names each invalid field (nested names, e.g. "
           "`buyer.national_id`).",
    "429": "Rate limit reached: the key's (`API_RATE_LIMIT`, or its own), or, for calls "
           "without a valid key, the address's (`API_UNAUTHENTICATED_RATE_LIMIT`). Retry after "
           "the number of seconds in Retry-After.",
}

ACCEPT_LANGUAGE = {
    "name": "Accept-Language", "in": "header", "required": False,
    "description": "The language of `error.message` and `error.fields`: English when `en` is "
                   "the best match among `zh-CN`, `zh` and `en`, Chinese otherwise (also when "
                   "the header is missing).",
    "schema": {"type": "string", "examples": ["en", "zh-CN"]},
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Any unique string (at most 200 printable ASCII characters). A retry with "
                   "the same key and body returns the first response (with `Idempotent-"
                   "Replayed: true`); the same key with a different body gives 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200,
               "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"},
}

REPLAYED = {REPLAY_HEADER: {
    "description": "`true` when this is the stored response of an earlier request with the "
                   "same Idempotency-Key and body.",
    "schema": {"type": "string", "enum": ["true"]}}}

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": schemas.MAX_ID}


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _content(what) -> dict:
    return what if isinstance(what, dict) else {"application/json": {"schema": _ref(what)}}


def _errors(codes) -> dict:
    out = {}
    for code in sorted({"401", *codes, "429"}):
        response = {"description": ERRORS[code], "content": _content(schemas.Error)}
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
        if prop.get("default", ...) is None:  # "left out" is not a value of the type
            del prop["default"]
        param = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _path_parameters(rule: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True,
             "schema": ID_SCHEMA if converter == "int" else {"type": "string"}}
            for converter, name in _PATH_ARG.findall(rule)]


def _operation(view, rule: str, op: Operation, models: set) -> dict:
    idempotent = getattr(view, "idempotent", False)
    parameters = _path_parameters(rule) + [ACCEPT_LANGUAGE]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    out: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag],
                           "summary": op.summary}
    if op.description:
        out["description"] = op.description
    out["parameters"] = parameters
    errors = set(op.errors)
    if op.body is not None:
        if not isinstance(op.body, dict):
            models.add((op.body, "validation"))
        out["requestBody"] = {"required": True, "content": _content(op.body)}
        errors.add("413")  # MAX_CONTENT_LENGTH holds for every body
    responses = {}
    for status, (what, description, *headers) in op.responses.items():
        if not isinstance(what, dict):
            models.add((what, "serialization"))
        response = {"description": description, "content": _content(what)}
        response_headers = dict(headers[0]) if headers else {}
        if idempotent:
            response_headers.update(REPLAYED)
        if response_headers:
            response["headers"] = response_headers
        responses[str(status)] = response
    out["responses"] = responses | _errors(errors)
    return out


def document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of every declared view under API_PREFIX."""
    paths: dict[str, dict] = {}
    models = {(schemas.Error, "serialization"), (schemas.WebhookEvent, "serialization")}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "openapi", None)
        if op is None or not rule.rule.startswith(API_PREFIX + "/"):
            continue
        path = _PATH_ARG.sub(r"{\2}", rule.rule[len(API_PREFIX):])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, rule.rule, op, models)
    _, top = models_json_schema(sorted(models, key=lambda m: (m[0].__name__, m[1])),
                                ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Partner Portal API",
            "version": "1.0.0",
            "description": (
                "Submit and follow buyer referrals from your own sales system. Authenticate "
                "with `Authorization: Bearer <api key>`; a key acts as the user it was made "
                "for. Errors are `{\"error\": {\"code\", \"message\", \"fields\"}}`; "
                "`message` and `fields` are in English when `Accept-Language` prefers `en`, "
                "in Chinese otherwise. Every POST accepts an `Idempotency-Key` header; a "
                "replayed response carries `Idempotent-Replayed: true`.\n\n"
                "Webhooks: the portal POSTs a `WebhookEvent` to each endpoint you register, "
                "for `referral.status_changed`, `referral.documents_requested`, "
                "`agreement.issued`, `lead.received` (the bank referred a customer to you) "
                "and `referral.message` (the bank wrote on a referral's thread), with "
                "`X-Portal-Signature: t=<unix seconds>,v1=<hex "
                "HMAC-SHA256 of \"<t>.<raw body>\" with the endpoint secret>` and "
                "`X-Portal-Event-Id`; retried with exponential backoff until a 2xx."),
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API key from the portal."}},
        },
    }


@bp.route("/openapi.json")
def openapi_json():
    served = current_app.extensions.get("portal_openapi")
    if served is None:
        served = current_app.extensions["portal_openapi"] = document(current_app)
    return jsonify(served)


@bp.route("/docs")
def docs():
    return render_template("integration/api_docs.html")
