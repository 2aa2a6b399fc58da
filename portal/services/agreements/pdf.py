"""Agreement PDFs with WeasyPrint: A4, Chinese in a real CJK font, nothing fetched from outside.

The PDF depends only on the agreement's content (a JSON-able dict), the PDF template and
stylesheet, and the WeasyPrint version; its dates and identifier come from the content, so the
same content renders to the same bytes. Renderings are cached on disk under PDF_CACHE_DIR
(see portal/config.py), keyed by the SHA-256 of those inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pydyf
import weasyprint
from flask import current_app
from markupsafe import Markup
from weasyprint.urls import URLFetcher

PDF_TEMPLATE = "pdf/agreement.html"
# Files under the static folder the PDF template uses; their contents are part of the cache key.
STATIC_ASSETS = ("pdf/agreement.css", "pdf/bank-mark.svg")


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    sha256: str
    cached: bool


class StaticOnlyFetcher(URLFetcher):
    """Serve files from the app's static folder and refuse every other URL (no network)."""

    def __init__(self, static_folder: str):
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.root = Path(static_folder).resolve()

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"refused to fetch {url!r}: only the app's static files are allowed")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise ValueError(f"refused to fetch {url!r}: not a file in the static folder")
        mime = {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}.get(
            path.suffix.lower(), "application/octet-stream")
        return weasyprint.urls.URLFetcherResponse(
            path.as_uri(), path.read_bytes(), headers={"Content-Type": mime})


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str).encode("utf-8")


def content_hash(content: dict) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_stamp(path: Path) -> tuple:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (str(path), None, None)
    return (str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _fingerprint(stamps: tuple) -> str:
    digest = hashlib.sha256(f"weasyprint {weasyprint.__version__} pydyf {pydyf.__version__}"
                            .encode())
    for name, mtime, _size in stamps:
        digest.update(name.encode())
        if mtime is not None:
            digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def renderer_fingerprint() -> str:
    """What, besides the content, decides the PDF's bytes: the library versions, the PDF
    template and its static files (re-read only when a file changes)."""
    static = Path(current_app.static_folder)
    template = Path(current_app.template_folder) / PDF_TEMPLATE
    return _fingerprint(tuple(_file_stamp(p) for p in
                              [template, *(static / a for a in STATIC_ASSETS)]))


def cache_dir() -> Path:
    return Path(current_app.config["PDF_CACHE_DIR"])


def cache_key(content: dict) -> str:
    return hashlib.sha256(f"{renderer_fingerprint()}:{content_hash(content)}".encode()).hexdigest()


def css_string(value) -> Markup:
    """A quoted CSS string for the template's <style> block (which is raw text, not HTML)."""
    text = str(value)
    escaped = "".join(
        ch if ch.isalnum() or ch in " -_.:/·（）()" or ord(ch) > 0x2000 else f"\\{ord(ch):x} "
        for ch in text)
    return Markup(f'"{escaped}"')  # noqa: S704  # nosec B704  # all but a safe set escaped


def render_html(content: dict) -> str:
    template = current_app.jinja_env.get_template(PDF_TEMPLATE)
    return template.render(c=content, content_sha256=content_hash(content), css_string=css_string)


def layout(content: dict) -> weasyprint.Document:
    """The laid-out document (its `pages`), before it is written as a PDF."""
    static = Path(current_app.static_folder).resolve()
    html = weasyprint.HTML(string=render_html(content), base_url=static.as_uri() + "/",
                           url_fetcher=StaticOnlyFetcher(str(static)))
    return html.render()


def _write_pdf(content: dict) -> bytes:
    # A fixed identifier (from the content) instead of a random one: same content, same bytes.
    return layout(content).write_pdf(pdf_identifier=content_hash(content)[:32].encode())


def render(content: dict, *, use_cache: bool = True) -> RenderedPdf:
    """The agreement PDF for `content`, from the disk cache when it was rendered before."""
    key = cache_key(content)
    path = cache_dir() / key[:2] / f"{key}.pdf"
    if use_cache and path.is_file():
        data = path.read_bytes()
        _touch(path)  # in use: kept by prune_cache
        return RenderedPdf(data, sha256(data), cached=True)
    data = _write_pdf(content)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file, two writers leave one whole one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return RenderedPdf(data, sha256(data), cached=False)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # pruned meanwhile, or a read-only cache: the bytes are in hand anyway
        pass


def prune_cache(unused_since: datetime) -> int:
    """Delete cached renderings not used since `unused_since` (and temporary files a crash left).
    Nothing is lost: the same content renders to the same bytes again."""
    root = cache_dir()
    if not root.is_dir():
        return 0
    cutoff = unused_since.timestamp()
    removed = 0
    for path in [*root.glob("*/*.pdf"), *root.glob("*/*.tmp")]:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                if path.suffix == ".pdf":
                    removed += 1
        except FileNotFoundError:  # another worker pruned it first
            continue
    return removed
