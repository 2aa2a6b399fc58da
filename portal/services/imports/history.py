"""Referral history rows (docs/contract.md), one batch at a time.

Each row is validated on its own and written through the intake and the lifecycle
(`referrals.submit(gate=False)` and `referrals.transition` by the system actor): history predates
the portal, so it is not gated by cooperation agreements, but every move is checked against the
transition table. A row is written atomically (a savepoint); a row that fails is rejected with its
line and reason, the others are kept. Rows are keyed by (organisation, external_ref): a row whose
key is there already is skipped, so running the same file again skips what is done.

Within a batch the rows are written oldest first, so attribution sees buyers in the order they
were registered; across batches the file's own order holds (history files run in submission
order: a row that predates a later one already written may then be refused by attribution, and
says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select

from models import Organization, Product, Referral
from portal.i18n import lazy_gettext as _l

from ...extensions import db
from .. import Ctx, referrals
from ..errors import DomainError
from ..import_rows import ReferralHistoryRow
from ..lifecycle import State
from ..referral_intake import faces
from ..scoring import staleness
from ..validation import first_error
from . import history_bulk
from .outcome import BatchOutcome, errors_text

SYSTEM = Ctx(user=None, ip="import")
REFERRAL_COLUMNS = ("org_code", "external_ref", "product", "buyer_name", "national_id", "mobile",
                    "industry", "monthly_income", "amount", "term_months", "submitted_at",
                    "status_history")
# Beyond the contract: filled in when present, else the history carries no such detail.
REFERRAL_OPTIONAL = ("employer", "asset_description", "asset_price", "down_payment",
                     "decline_reason", "site")
# The intake schema's fields a history row may carry (the consent is the history's own).
INTAKE_COLUMNS = tuple(name for name, face in faces().items()
                       if face.kind not in ("consent", "version", "time"))
HISTORY_NOTE = "Imported history"
# validate_intake wants these for property and vehicle loans; history files seldom have them.
PLACEHOLDER_EMPLOYER = "—"


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


def _validate(line: int, raw: dict, orgs: dict, now: datetime, products: dict) -> _ReferralRow:
    """The row's own columns; the intake columns are checked when it is written. `products`
    holds the products met so far (the session's identity map keeps no object alive)."""
    try:
        row = ReferralHistoryRow.model_validate(raw, context={"orgs": orgs, "now": now})
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    initial, moves = row.status_history
    if raw["product"] not in products:
        products[raw["product"]] = db.session.get(Product, raw["product"])
    product = products[raw["product"]]
    placeholders = set()
    intake = {name: raw.get(name) or "" for name in INTAKE_COLUMNS}
    intake.update(consent=True, consent_notice_version="history-import",
                  consent_obtained_at=row.submitted_at, external_ref=row.external_ref)
    if not intake["employer"]:
        intake["employer"] = PLACEHOLDER_EMPLOYER
        placeholders.add("employer")
    if product is not None and product.asset_kind in ("property", "vehicle") and not (
            intake["asset_description"] or intake["asset_price"] or intake["down_payment"]):
        # No asset details in the history: satisfy the intake rules, then clear them again.
        intake.update(asset_description="—", asset_price=raw["amount"], down_payment="0")
        placeholders.add("asset")
    return _ReferralRow(line, row.org_code, row.submitted_at, initial, moves, intake,
                        row.decline_reason, placeholders)


def _existing(keys: set[tuple[int, str]]) -> dict[tuple[int, str], int | None]:
    """{(org id, external_ref): the import job that wrote it} for the keys already there."""
    orgs = sorted({org_id for org_id, _ref in keys})
    refs = sorted({ref for _org_id, ref in keys})
    found = {}
    # One statement a batch: `org_id IN (...) AND external_ref IN (...)` is a set of lookups
    # in the (org_id, external_ref) index on both databases (a row-value IN list is not, on
    # SQLite); the pairs no row of the batch has are dropped here.
    for i in range(0, len(refs), 500):
        for org_id, ref, job_id in db.session.execute(
                select(Referral.org_id, Referral.external_ref, Referral.import_batch_id)
                .where(Referral.org_id.in_(orgs), Referral.external_ref.in_(refs[i:i + 500]))):
            if (org_id, ref) in keys:
                found[(org_id, ref)] = job_id
    return found


def write_batch(job_id: int, rows: list[tuple[int, dict]], orgs: dict, now: datetime,
                out: BatchOutcome) -> None:
    """Validate and write one batch of history rows for job `job_id`. Flushes."""
    valid: list[_ReferralRow] = []
    seen: dict[tuple, int] = {}
    products: dict = {}
    for line, raw in rows:
        try:
            row = _validate(line, raw, orgs, now, products)
        except ValueError as exc:
            out.reject(line, exc)
            continue
        key = (row.org.id, row.intake["external_ref"])
        if key in seen:
            out.reject(line, _l("external_ref %(r)s repeats line %(l)d.", r=key[1], l=seen[key]))
            continue
        seen[key] = line
        valid.append(row)
    existing = _existing(set(seen))
    fresh = []
    for row in sorted(valid, key=lambda r: (r.submitted_at, r.line)):
        key = (row.org.id, row.intake["external_ref"])
        if key in existing:
            if existing[key] == job_id:  # written by an earlier batch of this same file
                out.reject(row.line, _l("external_ref %(r)s repeats an earlier line.", r=key[1]))
            else:
                out.skipped += 1
            continue
        fresh.append(row)
    bulk, single = history_bulk.split(history_bulk.prepare(fresh, out))
    for org_id in history_bulk.write(bulk, job_id, SYSTEM, HISTORY_NOTE):
        out.created += 1
        out.org_ids.add(org_id)
    # The rest one by one, oldest first: a buyer met again, a history still moving lately.
    for row in single:
        try:
            with db.session.begin_nested():
                _write(row, job_id)
        except (DomainError, ValueError) as exc:
            out.reject(row.line, errors_text(exc) if isinstance(exc, DomainError) else exc)
            continue
        out.created += 1
        out.org_ids.add(row.org.id)
    for org_id in out.org_ids:
        staleness.mark_stale(org_id)  # the one-by-one path marks its own; once more is cheap


def _write(row: _ReferralRow, job_id: int) -> Referral:
    result = referrals.submit(SYSTEM, row.org, row.intake, gate=False, at=row.submitted_at,
                              import_batch_id=job_id)
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
