"""What an uploaded file really is: a PDF, JPEG or PNG whole, and nothing riding along.

The first bytes are not enough: HTML behind a `%PDF-1.4` header, a PDF that runs JavaScript or
launches a program when opened, a PNG with a page appended, or a PNG that claims 30000 × 30000
pixels all passed a check of the signature. So each file is read by a real parser:

- a PDF by pikepdf (qpdf), with no repair: refused when it does not parse, when any object in it
  is JavaScript, a launch action or another action that reaches outside the document, an embedded
  file or a file-attachment annotation, or when anything but whitespace follows its last `%%EOF`.
  The PDF is stored as it came (rewriting it would break the digital signature of an e-statement).
- an image by Pillow, under a pixel limit checked before any pixel is decoded, and drawn again
  into a fresh JPEG or PNG of the same pixels, turned upright as its EXIF orientation says. What
  is stored is that new image: appended bytes, EXIF, comments, ICC profiles and text chunks are
  not copied, so nothing hidden in them reaches the bank's staff.

`check()` returns what to store, or raises `Refused` with a message for the person uploading.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import filetype
import pikepdf
from PIL import Image, ImageOps

from portal.i18n import lazy_gettext as _l

ALLOWED_TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
JPEG_QUALITY = 92  # a re-drawn scan stays legible; the original's quality is not known
JPEG_END = b"\xff\xd9"

# Keys whose presence makes a PDF active or carry another file.
ACTIVE_KEYS = frozenset({"/JS", "/JavaScript", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia",
                         "/XFA"})
# Action types (/S) that run code, start programs, send data or open other files.
ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR",
                            "/GoToE", "/Rendition", "/RichMediaExecute"})
ACTIVE_SUBTYPES = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound"})
PDF_WHITESPACE = b"\x00\t\n\x0c\r "
# Where the last revision of a PDF ends: `startxref <offset> %%EOF`.
_TRAILER_END = re.compile(rb"startxref\s+(\d+)\s+%%EOF$")
# What may follow an earlier revision's %%EOF: the next revision's objects or its xref table.
_REVISION_START = re.compile(rb"\d+\s+\d+\s+obj\b|xref\b")


class Refused(Exception):
    """The file is not accepted; `message` says why, to the person uploading it."""

    def __init__(self, message):
        self.message = message
        super().__init__(str(message))


@dataclass(frozen=True)
class Checked:
    content_type: str
    data: bytes  # what is stored: the PDF as sent, an image drawn again


def check(data: bytes, *, max_pixels: int) -> Checked:
    kind = filetype.guess(data[:8192])
    mime = kind.mime if kind is not None else None
    if mime == "application/pdf":
        _check_pdf(data)
        return Checked(mime, data)
    if mime in PIL_FORMATS:
        return Checked(mime, _redraw(data, mime, max_pixels))
    raise Refused(_l("Only PDF, JPEG and PNG files are accepted."))


# --- PDF -----------------------------------------------------------------------------------------

def _check_pdf(data: bytes) -> None:
    if not data.startswith(b"%PDF-"):
        # Readers accept junk before the header; a file that starts with something else is
        # something else (HTML, say) wearing a PDF inside it.
        raise Refused(_l("This file is not a readable PDF."))
    _check_revisions(data)
    try:
        with pikepdf.open(io.BytesIO(data), attempt_recovery=False) as pdf:
            reason = _active_content(pdf)
    except pikepdf.PasswordError:
        raise Refused(_l("Password-protected PDFs are not accepted. Save the PDF without a "
                         "password and upload it again.")) from None
    except Exception:  # noqa: BLE001 — whatever a parser of hostile bytes raises is a refusal
        raise Refused(_l("This file is not a readable PDF.")) from None
    if reason is not None:
        raise Refused(reason)


def _check_revisions(data: bytes) -> None:
    """Nothing after the last %%EOF, which ends a real trailer, and nothing but a PDF revision
    after any earlier one: HTML appended to a PDF (with or without a forged trailer) is refused."""
    body = data.rstrip(PDF_WHITESPACE)
    if not _TRAILER_END.search(body[-64:]):
        raise Refused(_l("This PDF has content after its end. Save it again as a PDF (for "
                         "example with \"Print to PDF\") and upload that."))
    start = 0
    while (end := body.find(b"%%EOF", start)) != -1 and end + 5 < len(body):
        rest = body[end + 5:].lstrip(PDF_WHITESPACE)
        if not _REVISION_START.match(rest[:64]):
            raise Refused(_l("This PDF has content after its end. Save it again as a PDF (for "
                             "example with \"Print to PDF\") and upload that."))
        start = end + 5


def _active_content(pdf: pikepdf.Pdf):
    """Why the PDF is refused, or None: every object is walked, with its nested dictionaries and
    arrays (an annotation's /A or /AA action is a direct dictionary inside it)."""
    stack = list(pdf.objects)
    seen: set[tuple[int, int]] = set()
    while stack:
        obj = stack.pop()
        if isinstance(obj, pikepdf.Stream | pikepdf.Dictionary):
            if obj.is_indirect:
                if obj.objgen in seen:
                    continue
                seen.add(obj.objgen)
            keys = set(obj.keys())
            if keys & {"/JS", "/JavaScript"} or obj.get("/S") == pikepdf.Name.JavaScript:
                return _l("PDFs with JavaScript are not accepted.")
            if obj.get("/S") == pikepdf.Name.Launch or "/Launch" in keys:
                return _l("PDFs that launch programs are not accepted.")
            if (keys & {"/EmbeddedFile", "/EmbeddedFiles"}
                    or obj.get("/Subtype") == pikepdf.Name.FileAttachment
                    or obj.get("/Type") == pikepdf.Name.EmbeddedFile):
                return _l("PDFs with attached or embedded files are not accepted.")
            if (keys & ACTIVE_KEYS or str(obj.get("/S", "")) in ACTIVE_ACTIONS
                    or str(obj.get("/Subtype", "")) in ACTIVE_SUBTYPES):
                return _l("PDFs with active content (forms that send data, media, links to "
                          "other files) are not accepted.")
            stack.extend(_direct(obj.values()))
        elif isinstance(obj, pikepdf.Array):
            stack.extend(_direct(obj))
    return None


def _direct(values):
    # Indirect objects are walked on their own (pdf.objects has them all); numbers and booleans
    # come back as Python values and hold nothing.
    return [v for v in values if isinstance(v, pikepdf.Dictionary | pikepdf.Stream | pikepdf.Array)
            and not v.is_indirect]


# --- images --------------------------------------------------------------------------------------

def _redraw(data: bytes, mime: str, max_pixels: int) -> bytes:
    too_large = _l("The image has more than %(mp)d megapixels. Take the photo or scan at a lower "
                   "resolution and upload it again.", mp=max_pixels // 1_000_000)
    damaged = _l("This image is damaged or not really a %(kind)s file.",
                 kind=PIL_FORMATS[mime])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[mime]]) as image:
                # The header's size, before a pixel is decoded: a bomb stops here.
                if image.width * image.height > max_pixels:
                    raise Refused(too_large)
                _whole(data, mime)
                image.load()
                upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(too_large) from None
    except Refused:
        raise
    except Exception:  # noqa: BLE001 — whatever a parser of hostile bytes raises is a refusal
        raise Refused(damaged) from None
    return _encode(upright, mime)


def _whole(data: bytes, mime: str) -> None:
    """Raise if the image is cut short. WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES for the
    whole process when it is imported, so load() alone would pad a half-sent photo with grey."""
    if mime == "image/png":
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.verify()  # every chunk's CRC, up to IEND
    elif JPEG_END not in data[2:]:
        raise OSError("no end of image")


def _encode(image: Image.Image, mime: str) -> bytes:
    if mime == "image/jpeg":
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
    elif image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    # Pillow writes some of `info` back (a JPEG's comment, an ICC profile): nothing of the
    # original's metadata is to be copied.
    image.info = {}
    out = io.BytesIO()
    if mime == "image/jpeg":
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()
