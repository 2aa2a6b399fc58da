"""How every scorecard page writes a KPI's figure and its interval: the card, the partner's
card, the drill page (the templates' globals kpi_value and kpi_interval) and the cockpit's cells.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from portal.i18n import gettext

from ...formatting import money

NO_FIGURE = Markup('<span class="text-muted">—</span>')


def kpi_text(kind: str, value) -> str | None:
    """A KPI's figure as every scorecard page writes it: a rate in per cent, hours, an amount
    in yuan, a count; None when there is none."""
    if value is None:
        return None
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:.1f} {gettext('h')}"
    if kind == "amount":
        return money(value)
    return str(int(value))


def kpi_value(kpi, value) -> Markup:
    """The templates' figure of a KPI (a dash when there is none). A function, not a macro:
    the card page writes forty-five of them."""
    text = kpi_text(kpi.kind, value)
    return NO_FIGURE if text is None else escape(text)


def kpi_interval(kpi, interval) -> Markup:
    """A rate's credible interval, in per cent; nothing for other KPIs."""
    if not interval or kpi.kind != "rate":
        return Markup("")
    return Markup('<span class="text-muted small">{}–{}%</span>').format(
        f"{interval[0] * 100:.1f}", f"{interval[1] * 100:.1f}")
