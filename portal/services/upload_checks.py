"""What an uploaded file really is: a PDF, JPEG or PNG whole, and nothing riding along.

The first bytes are not enough: HTML behind a `%PDF-1.4` header, a PDF that runs JavaScript when
opened, a PNG with a page appended, or a PNG that claims 30000 × 30000 pixels all passed a check of
the signature. Each file is read by a real parser (pikepdf, which is qpdf; Pillow), with no
repair, and refused if it carries active content or bytes past its end.
"""

from __future__ import annotations

import io

import filetype
import pikepdf
from PIL import Image, UnidentifiedImageError

ALLOWED_TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}
MAX_PIXELS = 50_000_000  # a 50-megapixel photo of a document is plenty
PNG_END = b"IEND\xaeB`\x82"  # the last chunk and its fixed CRC
JPEG_END = b"\xff\xd9"
# Names that make a PDF act when it is opened or viewed.
ACTIVE_PDF_KEYS = ("/OpenAction", "/AA", "/JavaScript", "/JS", "/Launch", "/EmbeddedFile",
                   "/RichMedia", "/SubmitForm", "/ImportData")


def sniff(data: bytes) -> str | None:
    """The content type of an acceptable file, judged by its content; None if it is refused."""
    kind = filetype.guess(data[:8192])
    if kind is None or kind.mime not in ALLOWED_TYPES:
        return None
    if kind.mime == "application/pdf":
        return kind.mime if _plain_pdf(data) else None
    return kind.mime if _plain_image(data, kind.mime) else None


def _plain_pdf(data: bytes) -> bool:
    if b"%%EOF" not in data[-2048:]:
        return False
    try:
        with pikepdf.open(io.BytesIO(data), attempt_recovery=False) as pdf:
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream) and any(
                        key in obj for key in ACTIVE_PDF_KEYS):
                    return False
    except (pikepdf.PdfError, ValueError, OSError):
        return False
    return True


def _plain_image(data: bytes, mime: str) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                return False
            image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError):
        return False
    if mime == "image/png":
        return data.endswith(PNG_END)
    # Some cameras write a trailer after the image; a page or script there is not a photo.
    trailer = data[data.rfind(JPEG_END) + 2:] if JPEG_END in data else b""
    return b"<" not in trailer
