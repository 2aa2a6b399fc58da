"""Schemathesis against the app's own OpenAPI document (through WSGI): generated requests,
valid and invalid, with a real API key; no server errors and no response that breaks the
document (status codes, content types, headers, bodies)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.extensions import db
from tests import factories
from tests.integration_helpers import make_key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(app):
    def wsgi(environ, start_response):
        # Each request in an app context of its own, as in production (fresh `g` and session).
        with app.app_context():
            return list(app.wsgi_app(environ, start_response))

    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi)


@pytest.fixture
def caller(app):
    """A partner administrator with a key that is not rate limited, one referral to find, and
    a bank officer's key for the bank-only moves."""
    org = factories.OrgFactory(code="FUZZ")
    user = factories.UserFactory(org=org, role="partner_admin", email="fuzz@partner.test")
    factories.submit(user, national_id=factories.national_id(977))
    officer = factories.UserFactory.bank("credit_officer", email="fuzz-officer@bank.test")
    db.session.commit()
    return {"partner": make_key(user, "fuzz", rate_limit="100000 per minute"),
            "officer": make_key(officer, "fuzz officer", rate_limit="100000 per minute")}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
# 30 examples per operation keeps `make test` short; SCHEMATHESIS_MAX_EXAMPLES digs deeper.
@settings(max_examples=int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_own_document(case, caller):
    role = "officer" if case.operation.path.endswith("/transitions") else "partner"
    case.call_and_validate(headers={"Authorization": f"Bearer {caller[role]}"}, checks=CHECKS)
