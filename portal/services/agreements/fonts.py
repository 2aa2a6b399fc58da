"""The agreement PDF's fonts, cut down once to the characters an agreement uses (issue 15).

Noto Serif CJK SC holds some 65,000 glyphs. WeasyPrint keeps glyph ids when it subsets a font
for a PDF, so every PDF carried an outline table as long as the highest id used (a 1.7 MB
uncompressed file for three pages), and compressing and writing it was half of a cold
rendering. Here each face (regular, bold) is cut once to ASCII and Latin-1, the CJK and
full-width punctuation, the 6,763 characters of GB2312 and every character of the PDF template
and the clause texts: ids become small, and so does each PDF. A character outside that set (a
rare one in a partner's name) is drawn from the whole system font, which the stylesheet names
next.

HarfBuzz's own subsetter (the library WeasyPrint already loads) cuts a face in about 0.2 s of
CPU (fontTools took 40–150 s on the same set). The cut faces are written once under
PDF_CACHE_DIR/fonts, named by a key of the source font file (path, size, time), its face, the
HarfBuzz version and the character set: any change makes new files and, through the renderer's
fingerprint, new cached PDFs. Without the library or the font, nothing is cut and the PDF uses
the system font as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cffi import FFI

log = logging.getLogger(__name__)

# The family the stylesheet names first (static/pdf/agreement.css); "Noto Serif CJK SC" after it.
FAMILY = "Agreement Serif CJK"
SOURCE = "Noto Serif CJK SC"
FACES = (("normal", f"{SOURCE}:style=Regular"), ("bold", f"{SOURCE}:style=Bold"))
# Whose characters must all be in the cut: the PDF template and the clause texts.
_TEXT_SOURCES = ("templates/pdf/agreement.html", "portal/services/agreements")
_ROOT = Path(__file__).resolve().parents[3]

_ffi = FFI()
_ffi.cdef("""
typedef struct hb_blob_t hb_blob_t; typedef struct hb_face_t hb_face_t;
typedef struct hb_set_t hb_set_t; typedef struct hb_subset_input_t hb_subset_input_t;
typedef struct _FcPattern FcPattern; typedef struct _FcConfig FcConfig;
hb_blob_t *hb_blob_create_from_file_or_fail(const char *file_name);
hb_face_t *hb_face_create(hb_blob_t *blob, unsigned int index);
void hb_blob_destroy(hb_blob_t *blob);
void hb_face_destroy(hb_face_t *face);
hb_blob_t *hb_face_reference_blob(hb_face_t *face);
const char *hb_blob_get_data(hb_blob_t *blob, unsigned int *length);
void hb_set_add(hb_set_t *set, uint32_t codepoint);
void hb_version(unsigned int *major, unsigned int *minor, unsigned int *micro);
hb_subset_input_t *hb_subset_input_create_or_fail(void);
void hb_subset_input_destroy(hb_subset_input_t *input);
hb_set_t *hb_subset_input_unicode_set(hb_subset_input_t *input);
hb_face_t *hb_subset_or_fail(hb_face_t *source, const hb_subset_input_t *input);
FcPattern *FcNameParse(const unsigned char *name);
int FcConfigSubstitute(FcConfig *config, FcPattern *p, int kind);
void FcDefaultSubstitute(FcPattern *pattern);
FcPattern *FcFontMatch(FcConfig *config, FcPattern *p, int *result);
int FcPatternGetString(const FcPattern *p, const char *object, int n, unsigned char **s);
int FcPatternGetInteger(const FcPattern *p, const char *object, int n, int *i);
void FcPatternDestroy(FcPattern *p);
""")


@dataclass(frozen=True)
class Face:
    weight: str
    path: Path


@lru_cache(maxsize=1)
def _libraries():
    return (_ffi.dlopen("libharfbuzz.so.0"), _ffi.dlopen("libharfbuzz-subset.so.0"),
            _ffi.dlopen("libfontconfig.so.1"))


def _source_file(fc, name: str) -> tuple[str, int] | None:
    """The file and face index fontconfig gives for `name`, if it is the font asked for."""
    pattern = fc.FcNameParse(name.encode())
    fc.FcConfigSubstitute(_ffi.NULL, pattern, 0)
    fc.FcDefaultSubstitute(pattern)
    result = _ffi.new("int *")
    match = fc.FcFontMatch(_ffi.NULL, pattern, result)
    fc.FcPatternDestroy(pattern)
    if match == _ffi.NULL:
        return None
    try:
        text, index = _ffi.new("unsigned char **"), _ffi.new("int *")
        fc.FcPatternGetString(match, b"family", 0, text)
        families = _ffi.string(text[0]).decode() if text[0] != _ffi.NULL else ""
        if fc.FcPatternGetString(match, b"file", 0, text) != 0 or SOURCE not in families:
            return None  # fontconfig substituted another family: nothing to cut
        path = _ffi.string(text[0]).decode()
        fc.FcPatternGetInteger(match, b"index", 0, index)
        return path, index[0]
    finally:
        fc.FcPatternDestroy(match)


@lru_cache(maxsize=1)
def charset() -> tuple[int, ...]:
    """Every character the cut keeps."""
    chars = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100)) | set(range(0x2000, 0x2070))
    chars |= set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0))
    chars |= {0x2460 + i for i in range(20)} | {0x25A0, 0x25A1, 0x2610, 0x2611, 0x2612}
    for high in range(0xB0, 0xF8):  # GB2312's hanzi rows
        row = bytes(b for low in range(0xA1, 0xFF) for b in (high, low))
        chars |= {ord(ch) for ch in row.decode("gb2312", errors="ignore")}
    for source in _TEXT_SOURCES:
        path = _ROOT / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            chars |= {ord(ch) for ch in file.read_text(encoding="utf-8") if ord(ch) >= 0x20}
    return tuple(sorted(chars))


def _cut(hb, hbs, path: str, index: int) -> bytes:
    blob = hb.hb_blob_create_from_file_or_fail(path.encode())
    if blob == _ffi.NULL:
        raise OSError(f"cannot read {path}")
    face = hb.hb_face_create(blob, index)
    keep = hbs.hb_subset_input_create_or_fail()
    try:
        unicodes = hbs.hb_subset_input_unicode_set(keep)
        for codepoint in charset():
            hb.hb_set_add(unicodes, codepoint)
        cut = hbs.hb_subset_or_fail(face, keep)
        if cut == _ffi.NULL:
            raise OSError(f"HarfBuzz could not cut {path}")
        out = hb.hb_face_reference_blob(cut)
        length = _ffi.new("unsigned int *")
        data = _ffi.buffer(hb.hb_blob_get_data(out, length), length[0])[:]
        hb.hb_blob_destroy(out)
        hb.hb_face_destroy(cut)
        return data
    finally:
        hbs.hb_subset_input_destroy(keep)
        hb.hb_face_destroy(face)
        hb.hb_blob_destroy(blob)


def _key(hb, path: str, index: int) -> str:
    stat = os.stat(path)
    version = [_ffi.new("unsigned int *") for _ in range(3)]
    hb.hb_version(*version)
    digest = hashlib.sha256(
        f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{index}:"
        f"{'.'.join(str(v[0]) for v in version)}".encode())
    digest.update(_charset_digest().encode())
    return digest.hexdigest()[:24]


@lru_cache(maxsize=1)
def _charset_digest() -> str:
    return hashlib.sha256(",".join(map(str, charset())).encode()).hexdigest()


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)  # two workers cutting at once leave one whole file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_lock = threading.Lock()
# Per process: the source faces fontconfig named, and the cut files already made or found (by
# key: a cut is the same file whatever cache folder asked for it).
_sources: dict[str, tuple[str, int] | None] = {}
_made: dict[str, Path] = {}


def faces(cache_dir: Path) -> tuple[Face, ...]:
    """The cut faces, from `cache_dir`/fonts or cut now into it; () when they cannot be made."""
    with _lock:
        try:
            hb, hbs, fc = _libraries()
            made = []
            for weight, name in FACES:
                if name not in _sources:
                    _sources[name] = _source_file(fc, name)
                if _sources[name] is None:
                    log.warning("agreement PDF: %s not found; the PDF uses the system font", name)
                    return ()
                key = f"{_key(hb, *_sources[name])}-{weight}"
                target = _made.get(key)
                if target is None or not target.is_file():
                    target = cache_dir / "fonts" / f"{key}.otf"
                    if not target.is_file():
                        _write(target, _cut(hb, hbs, *_sources[name]))
                    _made[key] = target
                made.append(Face(weight, target))
        except OSError as error:
            log.warning("agreement PDF: fonts not cut (%s); the PDF uses the system font", error)
            return ()
        return tuple(made)


def font_face_css(cut: tuple[Face, ...]) -> str:
    return "\n".join(
        f'@font-face {{ font-family: "{FAMILY}"; font-weight: {face.weight}; '
        f'src: url("{face.path.resolve().as_uri()}"); }}' for face in cut)
