"""Import rejection reasons in the reader's language.

The worker writes a rejected row's reason once, in English (it runs with no request and no
locale), and that text is what the rejects CSV and the stored row keep: the column names in it
("external_ref: …") are the file's own codes. On screen the message part is translated: the
stored English is a catalog msgid, as is or with its %(…)s values filled in, so it is looked up
directly or matched against the msgids that take values."""

from __future__ import annotations

import re
from functools import lru_cache

from flask_babel import get_locale, get_translations

# "field: message" pieces joined by "; " (services/imports/outcome.py: errors_text); a field is
# a CSV column or a dotted path into one.
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_PLACEHOLDER = re.compile(r"%\\\((\w+)\\\)[sd]")


@lru_cache(maxsize=8)
def _patterns(locale: str) -> tuple[tuple[re.Pattern, str], ...]:
    catalog = getattr(get_translations(), "_catalog", {})
    patterns = []
    for msgid, msgstr in catalog.items():
        if not isinstance(msgid, str) or "%(" not in msgid or not msgstr:
            continue
        patterns.append((re.compile(_regex(msgid) + r"\Z"), msgstr))
    return tuple(patterns)


def _regex(msgid: str) -> str:
    """The msgid as a pattern: each %(name)s a group, the same name again the same text."""
    seen: set[str] = set()

    def group(match: re.Match) -> str:
        name = match.group(1)
        if name in seen:
            return f"(?P={name})"
        seen.add(name)
        return f"(?P<{name}>.+?)"

    return _PLACEHOLDER.sub(group, re.escape(msgid))


# pydantic puts this before the message of a ValueError a row model raises.
_VALUE_ERROR = "Value error, "


def _message(text: str, locale: str) -> str:
    if text.startswith(_VALUE_ERROR):
        text = text[len(_VALUE_ERROR):]
    catalog = getattr(get_translations(), "_catalog", {})
    if catalog.get(text):
        return catalog[text]
    for pattern, msgstr in _patterns(locale):
        found = pattern.match(text)
        if found:
            out = msgstr
            for name, value in found.groupdict().items():
                out = re.sub(r"%\(" + name + r"\)[sd]", lambda _m, v=value: v, out)
            return out
    return text


def translated_reason(text: str | None) -> str:
    """A stored rejection reason, its messages in the current language (field codes kept)."""
    if not text:
        return text or ""
    locale = str(get_locale() or "en")
    if locale.startswith("en"):
        return text
    pieces = []
    for piece in text.split("; "):
        field, sep, message = piece.partition(": ")
        if sep and _FIELD.fullmatch(field):
            pieces.append(f"{field}: {_message(message, locale)}")
        else:
            pieces.append(_message(piece, locale))
    return "; ".join(pieces)
