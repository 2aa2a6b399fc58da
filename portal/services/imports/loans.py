"""Loan performance statements (docs/contract.md), one batch at a time, written set-based.

A batch reads what it needs in a few statements (the loans its rows name, the statements those
loans already have), decides each row in memory, and writes with one INSERT and one UPDATE for
the whole batch. Statements are keyed by (loan, as_of): a row already there with the same
figures is skipped; with different figures it replaces them (a correction) and counts as
updated. Each loan's is_latest and month_latest flags are worked out from all its statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, update

from models import LoanPerformance, Referral, utcnow
from portal.i18n import lazy_gettext as _l

from ...bank_time import bank_date
from ...extensions import db
from ..import_rows import LoanStatementRow
from ..validation import first_error
from .outcome import BatchOutcome

LOAN_COLUMNS = ("org_code", "external_ref", "as_of", "outstanding", "days_past_due", "status")
_TABLE = LoanPerformance.__table__
_FIGURES = ("outstanding", "days_past_due", "status")


@dataclass
class _Statement:
    """One statement of a loan, there already (id) or new (id None)."""
    id: int | None
    as_of: date
    is_latest: bool
    month_latest: bool


def _loans(rows: list[tuple[int, dict]], orgs: dict) -> dict[tuple[int, str], Referral]:
    by_org: dict[int, set[str]] = {}
    for _line, raw in rows:
        if org := orgs.get(raw["org_code"].strip().upper()):
            by_org.setdefault(org.id, set()).add(raw["external_ref"])
    found = {}
    # Per organisation, so the (org_id, external_ref) index answers (not a row-value IN list,
    # which SQLite answers by scanning the table).
    for org_id, ref_set in by_org.items():
        refs = sorted(ref_set)
        for i in range(0, len(refs), 500):
            for referral in db.session.scalars(select(Referral).where(
                    Referral.org_id == org_id, Referral.external_ref.in_(refs[i:i + 500]))):
                found[(referral.org_id, referral.external_ref)] = referral
    return found


def _statements(referral_ids: list[int]) -> dict[int, dict[date, dict]]:
    found: dict[int, dict[date, dict]] = {}
    for i in range(0, len(referral_ids), 500):
        for row in db.session.execute(select(
                _TABLE.c.id, _TABLE.c.referral_id, _TABLE.c.as_of, _TABLE.c.outstanding,
                _TABLE.c.days_past_due, _TABLE.c.status, _TABLE.c.is_latest,
                _TABLE.c.month_latest).where(
                _TABLE.c.referral_id.in_(referral_ids[i:i + 500]))).mappings():
            found.setdefault(row["referral_id"], {})[row["as_of"]] = dict(row)
    return found


def _flags(statements: list[_Statement]) -> None:
    latest = max(s.as_of for s in statements)
    month_last: dict[tuple[int, int], date] = {}
    for s in statements:
        month = (s.as_of.year, s.as_of.month)
        month_last[month] = max(month_last.get(month, s.as_of), s.as_of)
    for s in statements:
        s.is_latest = s.as_of == latest
        s.month_latest = s.as_of == month_last[(s.as_of.year, s.as_of.month)]


def write_batch(rows: list[tuple[int, dict]], orgs: dict, today: date,
                out: BatchOutcome) -> None:
    """Validate and write one batch of statement rows. Flushes (statements only)."""
    loans = _loans(rows, orgs)
    context = {"orgs": orgs, "referral_ids": loans, "today": today}
    valid: dict[tuple[int, date], tuple[int, LoanStatementRow]] = {}
    for line, raw in rows:
        try:
            row = LoanStatementRow.model_validate(raw, context=context)
        except ValidationError as exc:
            out.reject(line, first_error(exc))
            continue
        key = (row.referral.id, row.as_of)
        if key in valid:
            out.reject(line, _l("The same loan and as_of as line %(l)d.", l=valid[key][0]))
            continue
        valid[key] = (line, row)
    if not valid:
        return
    referrals = {row.referral.id: row.referral for _line, row in valid.values()}
    existing = _statements(sorted(referrals))
    now = utcnow()
    new_rows, changed = [], []
    for (referral_id, as_of), (_line, row) in valid.items():
        there = existing.get(referral_id, {}).get(as_of)
        figures = (row.outstanding, row.days_past_due, row.status)
        if there is not None:
            if (Decimal(there["outstanding"]), there["days_past_due"], there["status"]) \
                    == figures:
                out.skipped += 1
                continue
            changed.append({"b_id": there["id"], "outstanding": row.outstanding,
                            "days_past_due": row.days_past_due, "status": row.status,
                            "imported_at": now})
            out.updated += 1
        else:
            referral = row.referral
            new_rows.append({"referral_id": referral_id, "org_id": referral.org_id,
                             "as_of": as_of,
                             "days_on_book": (as_of - bank_date(referral.disbursed_at)).days,
                             "outstanding": row.outstanding, "days_past_due": row.days_past_due,
                             "status": row.status, "imported_at": now})
            out.created += 1
        out.org_ids.add(row.referral.org_id)
    flag_changes = _work_out_flags(referrals, existing, new_rows)
    if new_rows:
        db.session.execute(insert(_TABLE), new_rows)
    if changed:
        db.session.execute(update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
                           .values({k: bindparam(k) for k in (*_FIGURES, "imported_at")}),
                           changed)
    if flag_changes:
        db.session.execute(update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
                           .values(is_latest=bindparam("is_latest"),
                                   month_latest=bindparam("month_latest")), flag_changes)


def _work_out_flags(referrals: dict, existing: dict, new_rows: list[dict]) -> list[dict]:
    """Set the flags on the new rows; return the flag updates the existing rows need."""
    new_by_loan: dict[int, list[dict]] = {}
    for new in new_rows:
        new_by_loan.setdefault(new["referral_id"], []).append(new)
    changes = []
    for referral_id in referrals:
        if referral_id not in new_by_loan:
            continue  # only new statements can move a loan's flags
        there = [_Statement(r["id"], r["as_of"], r["is_latest"], r["month_latest"])
                 for r in existing.get(referral_id, {}).values()]
        fresh = [(new, _Statement(None, new["as_of"], False, False))
                 for new in new_by_loan[referral_id]]
        _flags(there + [s for _new, s in fresh])
        for new, s in fresh:
            new["is_latest"], new["month_latest"] = s.is_latest, s.month_latest
        old = {r["id"]: (r["is_latest"], r["month_latest"])
               for r in existing.get(referral_id, {}).values()}
        changes += [{"b_id": s.id, "is_latest": s.is_latest, "month_latest": s.month_latest}
                    for s in there if old[s.id] != (s.is_latest, s.month_latest)]
    return changes

