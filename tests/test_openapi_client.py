"""The served OpenAPI document is valid, and a client generated from it with
openapi-python-client works against the app: a submission, its replay and an agreement PDF."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.integration_helpers import api_body, make_key

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def test_the_served_document_is_valid_openapi(client):
    validate(client.get("/api/v1/openapi.json").json)


@pytest.fixture
def generated_client(client, tmp_path, monkeypatch):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(client.get("/api/v1/openapi.json").json))
    # The generator reads PDF bodies as bytes only when told application/pdf is binary.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"project_name_override": "portal_client",
                                  "package_name_override": "portal_client",
                                  "content_type_overrides": {
                                      "application/pdf": "application/octet-stream"}}))
    subprocess.run([str(GENERATOR), "generate", "--path", str(spec), "--config", str(config),
                    "--output-path", str(tmp_path / "portal_client"), "--meta", "none"],
                   check=True, capture_output=True, cwd=tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("portal_client")
    for name in [m for m in sys.modules if m == "portal_client" or
                 m.startswith("portal_client.")]:
        del sys.modules[name]


def test_a_generated_client_submits_replays_and_downloads_the_pdf(app, world,
                                                                  generated_client):
    from portal_client.api.agreements import get_agreement_pdf, list_agreements
    from portal_client.api.referrals import submit_referral
    from portal_client.models import ReferralIn

    api = generated_client.AuthenticatedClient(
        base_url="http://portal.test/api/v1", token=make_key(world.partner_a),
        httpx_args={"transport": httpx.WSGITransport(app=app)})
    body = ReferralIn.from_dict(api_body())

    first = submit_referral.sync_detailed(client=api, body=body, idempotency_key="crm-1")
    assert first.status_code == 201
    assert first.parsed.id > 0
    replay = submit_referral.sync_detailed(client=api, body=body, idempotency_key="crm-1")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.parsed.id == first.parsed.id

    agreements = list_agreements.sync(client=api)
    pdf = get_agreement_pdf.sync(client=api, agreement_id=agreements.items[0].id)
    assert pdf.payload.read().startswith(b"%PDF")
