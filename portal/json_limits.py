"""Limits on a JSON body, checked before it is parsed.

The standard parser recurses once per level of nesting: a body of 100,000 `[` exhausts the
stack (RecursionError, a 500) before any schema sees it. Bodies are measured and their nesting
counted first, in one linear scan that skips over strings; the app's JSON provider and the API's
body parser both go through `loads` here.
"""

from __future__ import annotations

import json
import re

from flask.json.provider import DefaultJSONProvider

# The API's bodies are a referral or a move: a few KiB and four levels deep.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32

# A JSON string (escapes included; possessive so a long unterminated one costs one pass) or a
# bracket: what is left between the strings is what nests.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*+"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")


class JSONRefused(ValueError):
    """A body over a limit; `too_large` says which one."""

    def __init__(self, message: str, *, too_large: bool):
        super().__init__(message)
        self.too_large = too_large


def check(raw: bytes | str) -> None:
    """Refuse a body over MAX_BYTES or nested more than MAX_DEPTH levels; otherwise nothing."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > MAX_BYTES:
        raise JSONRefused(f"The JSON body is larger than {MAX_BYTES} bytes.", too_large=True)
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return  # cannot nest deeper than it has brackets
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token[0] in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise JSONRefused(f"The JSON body is nested more than {MAX_DEPTH} levels deep.",
                                  too_large=False)
        else:
            depth -= 1


def loads(raw: bytes | str):
    """json.loads after `check`; JSONRefused (a ValueError) over a limit."""
    check(raw)
    return json.loads(raw)


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with the limits: `request.get_json()` refuses deep or large bodies
    with a 400 instead of recursing."""

    def loads(self, s, **kwargs):
        check(s)
        return super().loads(s, **kwargs)
