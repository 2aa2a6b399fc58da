"""History imports (docs/contract.md): referrals with their status history, and loan performance.

Both read a UTF-8 CSV with a header row. The whole file is checked first: a file that is not
UTF-8, has a wrong header, or a line with the wrong number of fields is refused and nothing is
written. Then every row is validated on its own, and each valid row is written atomically (a
savepoint): a row that fails is reported with its line number and the reason, the others are
kept. Rows are keyed — referrals by (organisation, external_ref), statements by (loan, as_of) —
so running the same file again skips what is already there.

History predates the portal: referrals are not gated by cooperation agreements
(`referrals.submit(gate=False)`), but every move is checked against the lifecycle's transition
table by the system actor, as any other move.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from pydantic import ValidationError
from sqlalchemy import select

from models import (
    ImportBatch,
    LoanPerformance,
    Organization,
    Product,
    Referral,
    utcnow,
)

from ..bank_time import bank_date
from ..extensions import db
from . import Ctx, audit, referrals
from .errors import DomainError, ValidationFailed
from .import_rows import LOAN_STATUSES as LOAN_STATUSES
from .import_rows import LoanStatementRow, ReferralHistoryRow
from .lifecycle import State
from .referral_intake import faces
from .scoring import staleness
from .validation import first_error

SYSTEM = Ctx(user=None, ip="import")
REFERRAL_COLUMNS = ("org_code", "external_ref", "product", "buyer_name", "national_id", "mobile",
                    "industry", "monthly_income", "amount", "term_months", "submitted_at",
                    "status_history")
# Beyond the contract: filled in when present, else the history carries no such detail.
REFERRAL_OPTIONAL = ("employer", "asset_description", "asset_price", "down_payment",
                     "decline_reason")
# The intake schema's fields a history row may carry (the consent is the history's own).
INTAKE_COLUMNS = tuple(name for name, face in faces().items()
                       if face.kind not in ("consent", "version", "time"))
LOAN_COLUMNS = ("org_code", "external_ref", "as_of", "outstanding", "days_past_due", "status")
MAX_STORED_REJECTS = 1000
HISTORY_NOTE = "Imported history"
# validate_intake wants these for property and vehicle loans; history files seldom have them.
PLACEHOLDER_EMPLOYER = "—"


class Malformed(Exception):
    """The file as a whole cannot be read: nothing is written."""


@dataclass
class ImportReport:
    kind: str
    filename: str | None = None
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)
    malformed: str | None = None
    org_ids: set[int] = field(default_factory=set)
    batch_id: int | None = None

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def reject(self, line: int, reason) -> None:
        self.rejects.append((line, str(reason)))

    def summary(self) -> str:
        if self.malformed:
            return f"refused: {self.malformed}"
        return (f"{self.rows} rows: {self.created} created, {self.updated} updated, "
                f"{self.skipped} skipped, {self.rejected} rejected")


# --- reading ------------------------------------------------------------------------------------

def read_csv(data: bytes, required: tuple, optional: tuple = ()) -> list[tuple[int, dict]]:
    """[(line number, {column: value})] or Malformed with the reason."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Malformed(str(_l("The file is not UTF-8 text (byte %(at)d).", at=exc.start))) \
            from None
    if not text.strip():
        raise Malformed(str(_l("The file is empty.")))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
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
        rows = []
        for values in reader:
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            if len(values) != len(header):
                raise Malformed(str(_l("Line %(line)d has %(got)d fields; the header has "
                                       "%(want)d.", line=reader.line_num, got=len(values),
                                       want=len(header))))
            cells = zip(header, values, strict=True)
            rows.append((reader.line_num, {h: v.strip() for h, v in cells}))
    except csv.Error as exc:
        raise Malformed(str(_l("The file is not valid CSV (line %(line)d: %(error)s).",
                               line=reader.line_num, error=str(exc)))) from None
    return rows


def _errors_text(err: DomainError) -> str:
    if err.fields:
        return "; ".join(f"{k}: {v}" for k, v in err.fields.items())
    return str(err.message)


def _orgs() -> dict[str, Organization]:
    return {o.code: o for o in db.session.scalars(
        select(Organization).where(Organization.is_partner))}


def _finish(ctx: Ctx, report: ImportReport, data: bytes) -> ImportReport:
    batch = ImportBatch(kind=report.kind, filename=(report.filename or "")[:200] or None,
                        sha256=hashlib.sha256(data).hexdigest(), rows=report.rows,
                        created=report.created, updated=report.updated, skipped=report.skipped,
                        rejected=report.rejected, malformed=report.malformed,
                        rejects=[list(r) for r in report.rejects[:MAX_STORED_REJECTS]] or None,
                        user_id=ctx.user.id if ctx.user else None)
    db.session.add(batch)
    db.session.flush()
    report.batch_id = batch.id
    audit.record(ctx, f"import.{report.kind}", batch, summary=report.summary())
    return report


# --- referral history ---------------------------------------------------------------------------

@dataclass
class _ReferralRow:
    line: int
    org: Organization
    submitted_at: datetime
    initial: str  # submitted | conflict: the state the history says the intake ended in
    moves: list  # [(state, at)]
    intake: dict
    decline_reason: str
    placeholders: set


def _validate_referral(line: int, raw: dict, orgs: dict, now: datetime) -> _ReferralRow:
    try:
        row = ReferralHistoryRow.model_validate(raw, context={"orgs": orgs, "now": now})
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    submitted_at = row.submitted_at
    initial, moves = row.status_history
    product = db.session.get(Product, raw["product"])
    placeholders = set()
    intake = {name: raw.get(name) or "" for name in INTAKE_COLUMNS}
    intake.update(consent=True, consent_notice_version="history-import",
                  consent_obtained_at=submitted_at, external_ref=row.external_ref)
    if not intake["employer"]:
        intake["employer"] = PLACEHOLDER_EMPLOYER
        placeholders.add("employer")
    if product is not None and product.asset_kind in ("property", "vehicle") and not (
            intake["asset_description"] or intake["asset_price"] or intake["down_payment"]):
        # No asset details in the history: satisfy the intake rules, then clear them again.
        intake.update(asset_description="—", asset_price=raw["amount"], down_payment="0")
        placeholders.add("asset")
    try:
        referrals.validate_intake(intake, today=submitted_at.date())
    except ValidationFailed as err:
        raise ValueError(_errors_text(err)) from None
    return _ReferralRow(line, row.org_code, submitted_at, initial, moves, intake,
                        row.decline_reason, placeholders)


def _too_many(rows: list, max_rows: int | None) -> None:
    if max_rows is not None and len(rows) > max_rows:
        raise Malformed(str(_l("More than %(n)d rows: import this file with the command line "
                               "(flask --app wsgi referrals import / loans import) or split it.",
                               n=max_rows)))


def import_referrals(ctx: Ctx, data: bytes, filename: str | None = None,
                     now: datetime | None = None, max_rows: int | None = None) -> ImportReport:
    """Import referral history (see the module's docstring). Flushes; the caller commits."""
    report = ImportReport("referrals", filename)
    now = now or utcnow()
    try:
        raw_rows = read_csv(data, REFERRAL_COLUMNS, REFERRAL_OPTIONAL)
        _too_many(raw_rows, max_rows)
    except Malformed as exc:
        report.malformed = str(exc)
        return _finish(ctx, report, data)
    report.rows = len(raw_rows)
    orgs = _orgs()
    valid: list[_ReferralRow] = []
    seen: dict[tuple, int] = {}
    for line, raw in raw_rows:
        try:
            row = _validate_referral(line, raw, orgs, now)
        except ValueError as exc:
            report.reject(line, exc)
            continue
        key = (row.org.id, row.intake["external_ref"])
        if key in seen:
            report.reject(line, _l("external_ref %(r)s repeats line %(l)d.",
                                   r=key[1], l=seen[key]))
            continue
        seen[key] = line
        valid.append(row)
    existing = _existing_refs({r.org.id for r in valid})
    # Oldest first, so attribution sees the buyers in the order they were registered.
    for row in sorted(valid, key=lambda r: (r.submitted_at, r.line)):
        if (row.org.id, row.intake["external_ref"]) in existing:
            report.skipped += 1
            continue
        try:
            with db.session.begin_nested():
                _write_referral(row)
        except (DomainError, ValueError) as exc:
            report.reject(row.line, _errors_text(exc) if isinstance(exc, DomainError) else exc)
            continue
        report.created += 1
        report.org_ids.add(row.org.id)
    report.rejects.sort()
    return _finish(ctx, report, data)


def _existing_refs(org_ids: set[int]) -> set[tuple]:
    if not org_ids:
        return set()
    return set(db.session.execute(select(Referral.org_id, Referral.external_ref).where(
        Referral.org_id.in_(org_ids), Referral.external_ref.is_not(None))).all())


def _write_referral(row: _ReferralRow) -> Referral:
    result = referrals.submit(SYSTEM, row.org, row.intake, gate=False, at=row.submitted_at)
    referral = result.referral
    if referral.status != row.initial:
        if referral.status == State.conflict.value:
            raise ValueError(str(_l("Another partner had registered this buyer for this product "
                                    "within the protection window: the history must start in "
                                    "conflict.")))
        raise ValueError(str(_l("The history starts in conflict, but no other partner held the "
                                "buyer at that time.")))
    for state, at in row.moves:
        referrals.transition(SYSTEM, referral, state, at=at, note=HISTORY_NOTE,
                             reason_code=row.decline_reason if state == "declined" else None)
    if "asset" in row.placeholders:
        referral.asset_description = referral.asset_price = referral.down_payment = None
    db.session.flush()
    return referral


# --- loan performance ---------------------------------------------------------------------------

@dataclass
class _LoanRow:
    line: int
    referral: Referral
    as_of: date
    outstanding: Decimal
    days_past_due: int
    status: str


def _validate_loan(line: int, raw: dict, orgs: dict, referral_ids: dict, today: date
                   ) -> _LoanRow:
    try:
        row = LoanStatementRow.model_validate(raw, context={
            "orgs": orgs, "referral_ids": referral_ids, "today": today})
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    return _LoanRow(line, row.referral, row.as_of, row.outstanding, row.days_past_due,
                    row.status)


def import_loans(ctx: Ctx, data: bytes, filename: str | None = None,
                 now: datetime | None = None, max_rows: int | None = None) -> ImportReport:
    """Import loan statements (see the module's docstring). A row for a (loan, as_of) already
    there with the same figures is skipped; with different figures it replaces them (a
    correction) and counts as updated. Flushes; the caller commits."""
    report = ImportReport("loans", filename)
    today = bank_date(now or utcnow())
    try:
        raw_rows = read_csv(data, LOAN_COLUMNS)
        _too_many(raw_rows, max_rows)
    except Malformed as exc:
        report.malformed = str(exc)
        return _finish(ctx, report, data)
    report.rows = len(raw_rows)
    orgs = _orgs()
    refs = {(o.id, r["external_ref"]) for line, r in raw_rows
            if (o := orgs.get(r["org_code"].strip().upper()))}
    referral_ids = {}
    by_org: dict[int, set] = {}
    for org_id, ref in refs:
        by_org.setdefault(org_id, set()).add(ref)
    for org_id, ref_set in by_org.items():
        ref_list = sorted(ref_set)
        for i in range(0, len(ref_list), 500):
            for referral in db.session.scalars(select(Referral).where(
                    Referral.org_id == org_id, Referral.external_ref.in_(ref_list[i:i + 500]))):
                referral_ids[(org_id, referral.external_ref)] = referral
    seen: dict[tuple, int] = {}
    valid: list[_LoanRow] = []
    for line, raw in raw_rows:
        try:
            row = _validate_loan(line, raw, orgs, referral_ids, today)
        except ValueError as exc:
            report.reject(line, exc)
            continue
        key = (row.referral.id, row.as_of)
        if key in seen:
            report.reject(line, _l("The same loan and as_of as line %(l)d.", l=seen[key]))
            continue
        seen[key] = line
        valid.append(row)
    for row in sorted(valid, key=lambda r: (r.referral.id, r.as_of)):
        try:
            with db.session.begin_nested():
                outcome = _write_statement(row)
        except DomainError as exc:
            report.reject(row.line, _errors_text(exc))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome != "skipped":
            report.org_ids.add(row.referral.org_id)
    for org_id in report.org_ids:
        staleness.mark_stale(org_id)
    report.rejects.sort()
    return _finish(ctx, report, data)


def _write_statement(row: _LoanRow) -> str:
    """Insert or correct one statement and keep the loan's month_latest / is_latest flags."""
    referral = row.referral
    statements = list(db.session.scalars(select(LoanPerformance).where(
        LoanPerformance.referral_id == referral.id)))
    mine = next((s for s in statements if s.as_of == row.as_of), None)
    if mine is not None:
        if (mine.outstanding, mine.days_past_due, mine.status) == (
                row.outstanding, row.days_past_due, row.status):
            return "skipped"
        mine.outstanding, mine.days_past_due, mine.status = (row.outstanding, row.days_past_due,
                                                             row.status)
        mine.imported_at = utcnow()
        outcome = "updated"
    else:
        disbursed_on = bank_date(referral.disbursed_at)
        mine = LoanPerformance(referral_id=referral.id, org_id=referral.org_id, as_of=row.as_of,
                               days_on_book=(row.as_of - disbursed_on).days,
                               outstanding=row.outstanding, days_past_due=row.days_past_due,
                               status=row.status)
        db.session.add(mine)
        statements.append(mine)
        outcome = "created"
    latest = max(statements, key=lambda s: s.as_of)
    for s in statements:
        s.is_latest = s is latest
        same_month = [t for t in statements if (t.as_of.year, t.as_of.month) ==
                      (s.as_of.year, s.as_of.month)]
        s.month_latest = s is max(same_month, key=lambda t: t.as_of)
    db.session.flush()
    return outcome
