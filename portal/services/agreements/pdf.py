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
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pydyf
import weasyprint
from flask import current_app
from markupsafe import Markup
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from . import fonts

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

    def __init__(self, static_folder: str, also: tuple[Path, ...] = ()):
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.root = Path(static_folder).resolve()
        # The cut fonts (fonts.py), named one by one: nothing else outside the static folder.
        self.also = frozenset(p.resolve() for p in also)

    def fetch(self, url, headers=None):
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"refused to fetch {url!r}: only the app's static files are allowed")
        path = Path(unquote(parts.path)).resolve()
        if not (path.is_relative_to(self.root) or path in self.also) or not path.is_file():
            raise ValueError(f"refused to fetch {url!r}: not a file in the static folder")
        mime = {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
                ".otf": "font/otf"}.get(
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
    # The cut fonts' names are their key (source font, HarfBuzz, characters): not re-read.
    cut = ("|".join(f.path.name for f in fonts.faces(cache_dir())), None, None)
    return _fingerprint(tuple(_file_stamp(p) for p in
                              [template, *(static / a for a in STATIC_ASSETS)]) + (cut,))


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


# One font configuration a process (and one rendering at a time through it): the cut faces are
# registered with fontconfig once, not written out and parsed again for every PDF.
_render_lock = threading.Lock()
_font_config: dict[int, FontConfiguration] = {}


def _shared_font_config() -> FontConfiguration:
    pid = os.getpid()  # not one inherited across a fork
    if pid not in _font_config:
        _font_config.clear()
        _font_config[pid] = FontConfiguration()
    return _font_config[pid]


def _layout(content: dict) -> weasyprint.Document:
    static = Path(current_app.static_folder).resolve()
    cut = fonts.faces(cache_dir())
    fetcher = StaticOnlyFetcher(str(static), also=tuple(f.path for f in cut))
    font_config = _shared_font_config()
    stylesheets = [weasyprint.CSS(string=fonts.font_face_css(cut), font_config=font_config,
                                  url_fetcher=fetcher)] if cut else []
    html = weasyprint.HTML(string=render_html(content), base_url=static.as_uri() + "/",
                           url_fetcher=fetcher)
    return html.render(stylesheets=stylesheets, font_config=font_config)


def layout(content: dict) -> weasyprint.Document:
    """The laid-out document (its `pages`), before it is written as a PDF."""
    with _render_lock:
        return _layout(content)


def _write_pdf(content: dict) -> bytes:
    # A fixed identifier (from the content) instead of a random one: same content, same bytes.
    with _render_lock:
        return _layout(content).write_pdf(pdf_identifier=content_hash(content)[:32].encode())


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
