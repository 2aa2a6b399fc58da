"""Uploads are read by real parsers (issue 10): each test is an attack that passed a check of the
first bytes, or answered 500. The hostile files are made with pikepdf and Pillow, as an attacker
would make them; only the decompression bomb's header is written by hand (a real 30000 × 30000
image would need gigabytes to draw)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pikepdf
import pytest
from PIL import Image
from sqlalchemy import select

from models import AuditEntry, Document
from portal.extensions import db
from portal.services import Ctx, documents
from portal.services.errors import ValidationFailed
from tests import factories
from tests.conftest import login
from tests.integration_helpers import auth, make_key, pdf_bytes, png_bytes

PAGE = b"<html><body><script>alert(document.cookie)</script></body></html>"


def _saved(pdf: pikepdf.Pdf, **options) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, **options)
    return buffer.getvalue()


def _pdf() -> pikepdf.Pdf:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    return pdf


def _javascript_open_action() -> bytes:
    pdf = _pdf()
    pdf.Root.OpenAction = pdf.make_indirect(pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")))
    return _saved(pdf)


def _launch_open_action() -> bytes:
    pdf = _pdf()
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.Launch,
                                             F=pikepdf.String("cmd.exe"))
    return _saved(pdf)


def _launch_in_a_link() -> bytes:
    """A link annotation whose action (/A, a direct dictionary in the annotation) starts a
    program when clicked: nothing at the top level of any object says so."""
    pdf = _pdf()
    link = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link,
                              Rect=[0, 0, 595, 842],
                              A=pikepdf.Dictionary(S=pikepdf.Name.Launch,
                                                   F=pikepdf.String("calc.exe")))
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(link)]))
    return _saved(pdf)


def _launch_on_page_open() -> bytes:
    """The page's additional actions (/AA /O: when the page is opened)."""
    pdf = _pdf()
    pdf.pages[0].AA = pikepdf.Dictionary(O=pikepdf.Dictionary(S=pikepdf.Name.Launch,
                                                              F=pikepdf.String("calc.exe")))
    return _saved(pdf)


def _embedded_file() -> bytes:
    pdf = _pdf()
    pdf.attachments["payload.html"] = pikepdf.AttachedFileSpec(pdf, PAGE, mime_type="text/html")
    return _saved(pdf)


def _file_attachment_annotation() -> bytes:
    pdf = _pdf()
    spec = pikepdf.AttachedFileSpec(pdf, PAGE, filename="payload.html")
    annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment,
                               Rect=[10, 10, 30, 30], FS=spec.obj)
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(annot)]))
    return _saved(pdf)


def _png_claiming(width: int, height: int) -> bytes:
    """A decompression bomb's first chunk: a PNG header claiming a huge image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((200, 200), 60).save(buffer, "PNG")
    return buffer.getvalue()


REFUSED = {
    "HTML behind a PDF header": b"%PDF-1.4\n" + PAGE + b"\n%%EOF\n",
    "a PDF whose OpenAction runs JavaScript": _javascript_open_action(),
    "a PDF whose OpenAction launches a program": _launch_open_action(),
    "a PDF with a link that launches a program": _launch_in_a_link(),
    "a PDF page that launches a program when opened": _launch_on_page_open(),
    "a PDF with an embedded file": _embedded_file(),
    "a PDF with a file attachment annotation": _file_attachment_annotation(),
    "a valid PDF with HTML appended after %%EOF": pdf_bytes() + PAGE,
    "a valid PDF with HTML and a forged trailer appended":
        pdf_bytes() + PAGE + b"\nstartxref\n9\n%%EOF\n",
    "HTML before a valid PDF": PAGE + pdf_bytes(),
    "a PDF cut short": pdf_bytes()[:-40],
    "a PNG claiming 30000 x 30000 pixels": _png_claiming(30000, 30000),
    "a PNG cut in half": _noise_png()[:len(_noise_png()) // 2],
    "a page with no disguise": PAGE,
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_disguised_or_active_file_is_refused(world, case):
    referral = factories.submit(world.partner_a)
    with pytest.raises(ValidationFailed) as err:
        documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "x.pdf",
                         REFUSED[case])
    assert err.value.fields["file"]  # says why, to the person uploading
    assert db.session.scalar(select(Document)) is None


def test_the_refusal_says_what_is_wrong(world):
    referral = factories.submit(world.partner_a)
    for data, words in ((_javascript_open_action(), "JavaScript"),
                        (_launch_in_a_link(), "launch programs"),
                        (_embedded_file(), "embedded files"),
                        (pdf_bytes() + PAGE, "content after its end"),
                        (_png_claiming(30000, 30000), "megapixels")):
        with pytest.raises(ValidationFailed) as err:
            documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "x", data)
        assert words in str(err.value.fields["file"])


def _upload(world, data, name="scan") -> tuple[Document, bytes]:
    referral = factories.submit(world.partner_a)
    document = documents.upload(Ctx(user=world.partner_a), referral, "income_proof", name, data)
    stored = documents.path_of(document).read_bytes()
    assert document.sha256 == hashlib.sha256(stored).hexdigest()
    assert document.size == len(stored)
    return document, stored


def test_a_png_with_a_page_appended_is_stored_without_it(world):
    # Accepted, because what is stored is a new PNG drawn from the pixels: the page appended after
    # IEND is not in it (refusing would also be safe, but phones and editors leave harmless trailing
    # bytes too, and the re-drawn file is clean either way).
    original = Image.new("RGB", (40, 30), "navy")
    buffer = io.BytesIO()
    original.save(buffer, "PNG")
    document, stored = _upload(world, buffer.getvalue() + PAGE, "photo.png")
    assert document.content_type == "image/png"
    assert b"<html" not in stored and b"script" not in stored
    assert stored.endswith(b"IEND\xaeB`\x82")
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "PNG" and image.size == (40, 30)
        assert image.tobytes() == original.tobytes()
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "document.upload"))
    assert audit.detail["received_sha256"] == hashlib.sha256(buffer.getvalue() + PAGE).hexdigest()
    assert audit.detail["sha256"] == document.sha256


def test_a_jpeg_with_a_large_exif_and_comment_payload_is_stored_without_them(world):
    exif = Image.Exif()
    exif[0x010E] = "<html>" + "A" * 30_000 + "</html>"  # ImageDescription
    exif[0x0112] = 6  # Orientation: the camera was turned; the image is drawn upright
    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), "white").save(buffer, "JPEG", exif=exif,
                                             comment=b"<script>alert(1)</script>" * 500)
    sent = buffer.getvalue()
    assert b"AAAA" in sent and b"<script>" in sent
    document, stored = _upload(world, sent, "photo.jpg")
    assert document.content_type == "image/jpeg"
    assert b"AAAA" not in stored and b"<script>" not in stored and b"<html>" not in stored
    assert len(stored) < len(sent) // 4
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert image.size == (32, 64)  # turned as the orientation said
        assert not image.getexif() and "comment" not in image.info


def test_a_png_with_text_chunks_is_stored_without_them(world):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", PAGE.decode())
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "B" * 5000 + "</x:xmpmeta>")
    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 128, 0, 128)).save(buffer, "PNG", pnginfo=info)
    _document, stored = _upload(world, buffer.getvalue())
    assert b"<script>" not in stored and b"BBBB" not in stored and b"xmpmeta" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.mode == "RGBA" and not image.text


def test_real_documents_still_go_through(world):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, "JPEG")
    linearized = _saved(_pdf(), linearize=True)
    updated = pikepdf.open(io.BytesIO(pdf_bytes()))
    updated.docinfo["/Title"] = "Salary statement"
    revised = _saved(updated)  # qpdf writes it whole; an incremental update is checked below
    with pikepdf.open(io.BytesIO(pdf_bytes())) as pdf:
        pdf.Root.OpenAction = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
        opens_at_page_one = _saved(pdf)
    for name, data in (("scan.pdf", pdf_bytes()), ("photo.png", png_bytes()),
                       ("photo.jpg", buffer.getvalue()), ("web.pdf", linearized),
                       ("revised.pdf", revised), ("opens.pdf", opens_at_page_one),
                       ("incremental.pdf", _incremental_update(pdf_bytes())),
                       ("trailing-newlines.pdf", pdf_bytes() + b"\r\n\r\n")):
        document, stored = _upload(world, data, name)
        if document.content_type == "application/pdf":
            assert stored == data  # a PDF is kept as it came (signatures stay valid)


def _incremental_update(data: bytes) -> bytes:
    """An incremental update as a signing tool appends it: a new Info object, an xref section
    and a trailer pointing back to the first revision."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        size = len(pdf.objects) + 1
        root = pdf.Root.objgen[0]
    prev = int(data[data.rindex(b"startxref") + 9:].split()[0])
    obj = f"{size} 0 obj\n<< /Title (Signed) >>\nendobj\n".encode()
    offset = len(data)
    xref_at = offset + len(obj)
    xref = (f"xref\n0 1\n0000000000 65535 f \n{size} 1\n{offset:010d} 00000 n \n"
            f"trailer\n<< /Size {size + 1} /Root {root} 0 R /Info {size} 0 R /Prev {prev} >>\n"
            f"startxref\n{xref_at}\n%%EOF\n").encode()
    return data + obj + xref


def test_a_decompression_bomb_is_a_clear_refusal_on_the_api(client, world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    response = client.post(f"/api/v1/referrals/{referral.id}/documents",
                           headers=auth(make_key(world.partner_a)),
                           data={"kind": "income_proof",
                                 "file": (io.BytesIO(_png_claiming(30000, 30000)), "x.png")})
    assert response.status_code == 422
    assert "megapixels" in response.json["error"]["fields"]["file"]


def test_a_decompression_bomb_is_a_clear_refusal_on_the_web_form(client, world):
    referral = factories.submit(world.partner_a)
    db.session.commit()
    login(client, world.partner_a)
    response = client.post(f"/partner/referrals/{referral.id}/documents",
                           data={"kind": "income_proof",
                                 "file": (io.BytesIO(_png_claiming(30000, 30000)), "x.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "megapixels" in response.get_data(as_text=True)
    assert db.session.scalar(select(Document)) is None


def test_the_pixel_limit_is_a_setting(world, app, monkeypatch):
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buffer, "PNG")
    monkeypatch.setitem(app.config, "UPLOAD_MAX_PIXELS", 19_999)
    referral = factories.submit(world.partner_a)
    with pytest.raises(ValidationFailed):
        documents.upload(Ctx(user=world.partner_a), referral, "id_card", "x.png",
                         buffer.getvalue())
    monkeypatch.setitem(app.config, "UPLOAD_MAX_PIXELS", 20_000)
    assert documents.upload(Ctx(user=world.partner_a), referral, "id_card", "x.png",
                            buffer.getvalue())
