"""Uploads are read by real parsers: what only looks like a PDF or an image is refused (issue 10).

Each case was accepted (or answered 500) when only the first bytes were checked."""

from __future__ import annotations

import io
import struct
import zlib

import pikepdf
import pytest
from PIL import Image

from portal.extensions import db
from portal.services import Ctx, documents
from portal.services.errors import ValidationFailed
from tests import factories
from tests.integration_helpers import auth, make_key, pdf_bytes, png_bytes


def _pdf_with(**root_entries) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    for key, value in root_entries.items():
        pdf.Root[f"/{key}"] = value
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims a huge image (a decompression bomb's first chunk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 64)
    data_chunk = b"IDAT" + idat
    body += struct.pack(">I", len(idat)) + data_chunk + struct.pack(">I", zlib.crc32(data_chunk))
    body += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + body


def _javascript_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    action = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                                  JS=pikepdf.String("app.alert('x')")))
    pdf.Root.OpenAction = action
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def _jpeg_with_page() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "JPEG")
    return buffer.getvalue() + b"<html><script>alert(1)</script></html>"


HOSTILE = {
    "HTML behind a PDF header": b"%PDF-1.4\n<html><script>alert(1)</script></html>\n%%EOF\n",
    "a PDF that runs JavaScript when opened": _javascript_pdf(),
    "a PDF with an automatic action": _pdf_with(AA=pikepdf.Dictionary()),
    "a PNG with a page appended": png_bytes() + b"<html><script>alert(1)</script></html>",
    "a JPEG with a page appended": _jpeg_with_page(),
    "a PNG claiming 30000 x 30000 pixels": _png_claiming(30000, 30000),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_disguised_file_is_refused(world, case):
    referral = factories.submit(world.partner_a)
    with pytest.raises(ValidationFailed) as err:
        documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "x.pdf",
                         HOSTILE[case])
    assert "file" in err.value.fields


def test_real_documents_still_go_through(world):
    referral = factories.submit(world.partner_a)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, "JPEG")
    for name, data in (("scan.pdf", pdf_bytes()), ("photo.png", png_bytes()),
                       ("photo.jpg", buffer.getvalue())):
        assert documents.upload(Ctx(user=world.partner_a), referral, "income_proof", name, data)


def test_a_decompression_bomb_is_a_clear_refusal_not_a_server_error(client, world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(make_key(world.partner_a)),
                           data={"kind": "income_proof",
                                 "file": (io.BytesIO(_png_claiming(30000, 30000)), "x.png")})
    assert response.status_code == 422
    assert "file" in response.json["error"]["fields"]
