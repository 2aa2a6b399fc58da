"""What the portfolio page and its CSV show: one list of formatted cells per row, built once, so
the export is the page's table cell for cell; and the chart that makes the study's point."""

from __future__ import annotations

import csv
import io

from portal.i18n import lazy_gettext as _l

from .portfolio import Group, Portfolio

# (column, heading, the loans a cell of the column opens)
COLUMNS = [
    ("label", None, None),
    ("borrowers", _l("Borrowers"), "all"),
    ("borrower_share", _l("Share of borrowers"), "all"),
    ("balance", _l("Balance outstanding"), "all"),
    ("balance_share", _l("Share of balance"), "all"),
    ("disbursed_amount", _l("Amount disbursed"), "all"),
    ("loans_with_performance", _l("Loans with statements"), "performing"),
    ("delinquency_rate", _l("30+ days past due"), "delinquent"),
    ("npl_rate", _l("NPL rate"), "npl"),
    ("npl_interval", _l("NPL interval"), "npl"),
]


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def amount(value: float) -> str:
    return f"{value:,.0f}"


def cells(g: Group) -> dict[str, str]:
    """A row's cells as shown (and exported): shares and rates as percentages with one decimal,
    each rate followed by its count."""
    return {
        "label": g.label,
        "borrowers": str(g.borrowers),
        "borrower_share": pct(g.borrower_share),
        "balance": amount(g.balance),
        "balance_share": pct(g.balance_share),
        "disbursed_amount": amount(g.disbursed_amount),
        "loans_with_performance": str(g.loans_with_performance),
        "delinquency_rate": (f"{pct(g.delinquency_rate)} ({g.delinquent_loans} / "
                             f"{g.loans_with_performance})" if g.loans_with_performance else "—"),
        "npl_rate": (f"{pct(g.npl_rate)} ({g.npl_loans} / {g.loans_with_performance})"
                     if g.loans_with_performance else "—"),
        "npl_interval": (f"{g.npl_interval[0] * 100:.1f}–{g.npl_interval[1] * 100:.1f}%"
                         if g.npl_interval else "—"),
    }


def headings(result: Portfolio, group_label) -> list[str]:
    return [str(group_label) if name == "label" else str(title) for name, title, _m in COLUMNS]


def table(result: Portfolio) -> list[tuple[Group, dict[str, str]]]:
    return [(g, cells(g)) for g in [*result.groups, result.total]]


def csv_text(result: Portfolio, group_label) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", *headings(result, group_label)])
    for g, row in table(result):
        writer.writerow([g.key, *[row[name] for name, _t, _m in COLUMNS]])
    return out.getvalue()


def chart(result: Portfolio) -> dict | None:
    """Share of borrowers and share of balance (bars, left axis) beside the NPL rate (bars on the
    right axis), per group: class 3's quarter of the borrowers, its smaller share of the balance
    and its NPL several times the others' side by side."""
    if not result.groups:
        return None
    labels = [g.label for g in result.groups]

    def series(values):
        return [None if v is None else round(v * 100, 1) for v in values]

    return {"type": "bar", "data": {"labels": labels, "datasets": [
        {"label": str(_l("Share of borrowers (%)")), "yAxisID": "y", "backgroundColor": "#0d6efd",
         "data": series([g.borrower_share for g in result.groups])},
        {"label": str(_l("Share of balance (%)")), "yAxisID": "y", "backgroundColor": "#6c757d",
         "data": series([g.balance_share for g in result.groups])},
        {"label": str(_l("NPL rate (%)")), "yAxisID": "y1", "backgroundColor": "#dc3545",
         "data": series([g.npl_rate for g in result.groups])},
    ]}, "options": {
        "responsive": True, "maintainAspectRatio": False,
        "layout": {"padding": {"left": 4, "right": 4}},
        "plugins": {"legend": {"position": "bottom"}},
        "scales": {
            "x": {"ticks": {"autoSkip": False, "maxRotation": 45}},
            "y": {"beginAtZero": True, "position": "left",
                  "title": {"display": True, "text": str(_l("Share (%)"))}},
            "y1": {"beginAtZero": True, "position": "right", "grid": {"drawOnChartArea": False},
                   "title": {"display": True, "text": str(_l("NPL rate (%)"))}}}}}
