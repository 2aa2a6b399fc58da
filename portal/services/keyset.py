"""Keyset ("seek") paging for the big lists: a page past the first few is read after the last row
of the page before, not by skipping rows (issue 15).

`OFFSET 9,000` reads and throws away 9,000 rows through the index before the 25 it shows, so
a late page of "all referrals" at a million rows costs what all the pages before it cost. A
cursor names the row a page starts after (or ends before): the list's sort key and id, which the
index the list is read through can seek to, whatever page it is.

A cursor is opaque to the user but stable: it names a place in the order, not a state of the
database, so a bookmarked "next" link still shows the rows after that place. It carries a
fingerprint of the order it was made for; a cursor of another order (the queue sorted another
way, an edited link) is ignored rather than misread.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Select, and_, literal, or_, tuple_
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression


@dataclass(frozen=True)
class Key:
    column: object
    descending: bool


def order_keys(query: Select) -> list[Key] | None:
    """The query's ORDER BY as (column, direction) pairs, or None when it is not plain columns
    (an expression cannot be sought to through an index)."""
    keys = []
    for clause in query._order_by_clauses:
        descending = False
        if isinstance(clause, UnaryExpression):
            if clause.modifier not in (operators.desc_op, operators.asc_op):
                return None
            descending = clause.modifier is operators.desc_op
            clause = clause.element
        if getattr(clause, "table", None) is None or not hasattr(clause, "name"):
            return None
        keys.append(Key(clause, descending))
    return keys or None


def _fingerprint(keys: list[Key]) -> str:
    text = "|".join(f"{k.column.table.name}.{k.column.name}:{'d' if k.descending else 'a'}"
                    for k in keys)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _tagged(value) -> list:
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"no cursor for a {type(value).__name__}")
    return ["i" if isinstance(value, int) else "s", value]


_READ = {"t": datetime.fromisoformat, "d": date.fromisoformat, "n": Decimal, "i": int, "s": str}


def encode(keys: list[Key], values) -> str | None:
    """The cursor of a row whose sort-key values are `values`; None when one of them is NULL
    (no seek can place a NULL: such a list pages by number)."""
    if any(v is None for v in values):
        return None
    payload = json.dumps([_fingerprint(keys), [_tagged(v) for v in values]],
                         separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(keys: list[Key], token: str | None) -> list | None:
    """The values a cursor holds, or None when it is missing, damaged or of another order."""
    if not token or len(token) > 400:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fingerprint, tagged = json.loads(raw)
        if fingerprint != _fingerprint(keys) or len(tagged) != len(keys):
            return None
        return [_READ[tag](value) for tag, value in tagged]
    except (ValueError, TypeError, KeyError):
        return None


def beyond(keys: list[Key], values: list, *, forward: bool):
    """The rows after (`forward`) or before the row with `values` in the keys' order.

    All keys one way: a row-value comparison, which both databases answer as one index range.
    Mixed directions (the queue by amount, then longest wait): the expanded form, led by an
    inclusive range on the first key so the index still bounds the scan."""
    def smaller(key: Key) -> bool:
        # Forward along a descending key, or backward along an ascending one.
        return key.descending == forward

    if len({k.descending for k in keys}) == 1:
        left = tuple_(*(k.column for k in keys))
        right = tuple_(*(literal(v, type_=k.column.type)
                         for k, v in zip(keys, values, strict=True)))
        return left < right if smaller(keys[0]) else left > right
    terms = []
    for i, key in enumerate(keys):
        equal = [keys[j].column == values[j] for j in range(i)]
        step = key.column < values[i] if smaller(key) else key.column > values[i]
        terms.append(and_(*equal, step))
    first = keys[0]
    bound = first.column <= values[0] if smaller(first) else first.column >= values[0]
    return and_(bound, or_(*terms))


def reversed_order(keys: list[Key]) -> list:
    return [k.column.asc() if k.descending else k.column.desc() for k in keys]
