"""Helpers for the API, webhook and notification tests."""

from __future__ import annotations

import io

import pikepdf
from PIL import Image

from portal.extensions import db
from portal.services import Ctx, api_keys
from tests import factories


def make_key(user, name="test key", rate_limit=None) -> str:
    _row, key = api_keys.create(Ctx(user=None, ip="test"), user, name, rate_limit=rate_limit)
    db.session.commit()
    return key


def auth(key: str, **extra) -> dict:
    return {"Authorization": f"Bearer {key}", **extra}


def api_body(**overrides) -> dict:
    """A valid POST /api/v1/referrals body (nested, as the contract has it)."""
    flat = factories.intake()
    body = {
        "product": flat["product"],
        "buyer": {"name": flat["buyer_name"], "national_id": flat["national_id"],
                  "mobile": flat["mobile"], "employer": flat["employer"],
                  "industry": flat["industry"], "monthly_income": 25000},
        "amount": 700000,
        "term_months": 240,
        "asset": {"description": flat["asset_description"], "price": 1200000,
                  "down_payment": 400000},
        "consent": {"obtained": True, "notice_version": "2026-01",
                    "obtained_at": "2026-01-05T10:00:00+08:00"},
    }
    for key, value in overrides.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            body[outer] = {**body[outer], inner: value}
        else:
            body[key] = value
    return body


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_bytes(title: str | None = None) -> bytes:
    """A real one-page PDF, as a scanner or phone would send (uploads are parsed, not sniffed);
    a title makes it a different file."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    if title:
        pdf.docinfo["/Title"] = title
    buffer = io.BytesIO()
    pdf.save(buffer, deterministic_id=True)
    return buffer.getvalue()
