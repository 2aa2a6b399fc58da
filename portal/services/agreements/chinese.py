"""Chinese numerals and dates as the agreement document writes them (pure functions)."""

from __future__ import annotations

from datetime import date

CN_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 20 -> 二十, 35 -> 三十五 (clause numbers up to 99)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    text = ("" if tens == 1 else CN_DIGITS[tens]) + "十" if tens else ""
    return text + (CN_DIGITS[ones] if ones else "")


def chinese_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def clause_number(n: int) -> str:
    """The heading number of the n-th clause: 第一条, 第二条, ..."""
    return f"第{chinese_number(n)}条"
