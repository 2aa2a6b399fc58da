"""Reading an import file as a stream: UTF-8 CSV with a header row, plain or gzip-compressed.

A file is read twice and never held whole. First `scan` checks all of it — UTF-8, the header,
every line's number of fields, CSV quoting — and counts its rows: a file that fails is refused
and nothing is written. Then `rows` yields the rows one at a time, each with its line number and
the byte just after it, from the start or from where a stopped job left off.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from portal.i18n import lazy_gettext as _l

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"


class Malformed(Exception):
    """The file as a whole cannot be read: nothing is written."""


def open_binary(path) -> BinaryIO:
    """The file's content as bytes, decompressed if it is gzip (seekable either way)."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def as_binary(data: bytes) -> BinaryIO:
    import io

    return gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == GZIP_MAGIC else io.BytesIO(data)


class _Lines:
    """Physical lines as text, counting lines and bytes as they go (csv pulls them one by one,
    so after a row the counters stand just after it)."""

    def __init__(self, source: BinaryIO, line: int = 0, offset: int = 0, digest=None):
        self.source, self.line, self.offset, self.digest = source, line, offset, digest

    def __iter__(self) -> Iterator[str]:
        for raw in self.source:
            start = self.offset
            self.offset += len(raw)
            self.line += 1
            if self.digest is not None:
                self.digest.update(raw)
            if start == 0 and raw.startswith(BOM):
                raw = raw[len(BOM):]
                start += len(BOM)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Malformed(str(_l("The file is not UTF-8 text (byte %(at)d).",
                                       at=start + exc.start))) from None


def _header(reader, required: tuple, optional: tuple) -> list[str]:
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise Malformed(str(_l("The file is empty."))) from None
    if not any(header):
        raise Malformed(str(_l("The file is empty.")))
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or duplicated:
        parts = []
        if missing:
            parts.append(str(_l("missing column(s): %(c)s", c=", ".join(missing))))
        if unknown:
            parts.append(str(_l("unknown column(s): %(c)s", c=", ".join(unknown))))
        if duplicated:
            parts.append(str(_l("repeated column(s): %(c)s", c=", ".join(duplicated))))
        raise Malformed(str(_l("Bad header (%(parts)s). Expected: %(cols)s.",
                               parts="; ".join(parts), cols=",".join(required))))
    return header


def _blank(values: list[str]) -> bool:
    return not values or (len(values) == 1 and not values[0].strip())


@dataclass
class Scan:
    total_rows: int
    sha256: str


def scan(source: BinaryIO, required: tuple, optional: tuple = ()) -> Scan:
    """Check the whole file and count its rows, or raise Malformed with the reason."""
    lines = _Lines(source, digest=hashlib.sha256())
    reader = csv.reader(lines)
    total = 0
    try:
        header = _header(reader, required, optional)
        for values in reader:
            if _blank(values):
                continue
            if len(values) != len(header):
                raise Malformed(str(_l("Line %(line)d has %(got)d fields; the header has "
                                       "%(want)d.", line=lines.line, got=len(values),
                                       want=len(header))))
            total += 1
    except csv.Error as exc:
        raise Malformed(str(_l("The file is not valid CSV (line %(line)d: %(error)s).",
                               line=lines.line, error=str(exc)))) from None
    return Scan(total, lines.digest.hexdigest())


def rows(source: BinaryIO, required: tuple, optional: tuple = (), *, after_line: int = 1,
         after_offset: int = 0) -> Iterator[tuple[int, int, dict]]:
    """(line, byte after the row, {column: value}) for each row of a file `scan` accepted,
    from the start or after `after_line`, which ends at byte `after_offset`."""
    lines = _Lines(source)
    header = _header(csv.reader(lines), required, optional)
    if after_offset > lines.offset:
        source.seek(after_offset)
        lines.line, lines.offset = after_line, after_offset
    for values in csv.reader(lines):
        if _blank(values):
            continue
        yield lines.line, lines.offset, {h: v.strip() for h, v in zip(header, values,
                                                                         strict=True)}
