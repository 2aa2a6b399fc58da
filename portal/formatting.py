"""How the portal writes amounts of money: one Jinja filter, `money`, for every page.

Every amount the portal holds is in yuan (CNY), so the symbol is always ¥; the digits follow the
language of the page through Babel.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale
from babel.numbers import parse_pattern

from .i18n import page_locale

WAN = Decimal(10_000)
FEN = Decimal("0.01")


def _locale() -> Locale:
    return page_locale() or Locale.parse("zh_CN")


@lru_cache(maxsize=8)
def _pattern(fmt: str):
    return parse_pattern(fmt)


def format_decimal(amount, format: str, locale: Locale) -> str:  # noqa: A002 — Babel's name
    """babel.numbers.format_decimal with the page's Locale object and a pattern parsed once:
    Babel's own parses both from strings on every call, a tenth of a long list's rendering."""
    return _pattern(format).apply(amount, locale)


def money(value, short: bool = False) -> str:
    """An amount of yuan as the page's language writes it, or "—" when there is none.

    The rule:
    - by default, in both languages, the exact amount to the fen with the yuan sign and
      grouped digits: "¥1,200,000.00" (a negative amount "-¥500.00");
    - `short=True` is for summaries and headings, never for a figure someone must check to the
      fen. It never rounds: an amount it cannot write exactly is written in full. In Chinese,
      an amount of at least 10,000 yuan that is a whole number of hundreds is written in 万元
      ("120万元", "123.45万元"); below 10,000, or not a whole number of hundreds, "¥…" as
      above. In English, a whole number of yuan drops the fen ("¥1,200,000").
    """
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    locale = _locale()
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if short and locale.language == "zh" and amount >= WAN and amount % 100 == 0:
        wan = format_decimal(amount / WAN, format="#,##0.##", locale=locale)
        return f"{sign}{wan}万元"
    if short and amount == amount.to_integral_value():
        return f"{sign}¥{format_decimal(amount, format='#,##0', locale=locale)}"
    if _western_digits(str(locale)):
        # What Babel writes for these locales, by Python's own grouping of the exact Decimal:
        # Babel's pattern cost 36 µs an amount, a sixth of a list row (issue 15).
        return f"{sign}¥{amount.quantize(FEN):,.2f}"
    return f"{sign}¥{format_decimal(amount.quantize(FEN), format='#,##0.00', locale=locale)}"


@lru_cache(maxsize=16)
def _western_digits(name: str) -> bool:
    """Whether the locale writes 1,234,567.89 as Python's format does: groups of three split by
    ",", "." before the fen, Latin digits (zh_CN and en both do)."""
    locale = Locale.parse(name)
    symbols = locale.number_symbols.get("latn", locale.number_symbols)
    pattern = locale.decimal_formats.get(None)
    return (symbols.get("group") == "," and symbols.get("decimal") == "."
            and locale.default_numbering_system == "latn"
            and pattern is not None and pattern.grouping == (3, 3))


def percent(value, digits: int = 2) -> str:
    """An annual rate held in percent (4.9 for 4.9 %), to `digits` decimals: "4.90%"."""
    if value is None:
        return "—"
    pattern = "0." + "0" * digits if digits else "0"
    return f"{format_decimal(Decimal(str(value)), format=pattern, locale=_locale())}%"


def register(app) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(percent, "percent")
