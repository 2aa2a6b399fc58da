"""The bulk path of a history batch: rows that cannot meet any other referral are written a
batch at a time.

A history row is normally written through the intake and the lifecycle, one savepoint each
(`history._write`): some twenty statements a row. Most rows of a history file are a buyer and
product seen nowhere else — not in the database, not elsewhere in the batch — and with every
move older than `events.HISTORY_AFTER` (so nothing is announced). For those the outcome of
attribution is known (the referral is simply submitted), so the batch builds them in memory with
the lifecycle's own move (`referrals.replay`) and inserts referrals, timeline events, document
checklists and buyer registrations with one statement each, and one audit entry per referral
(`referral.import`, with the history it came with). Every other row goes the one-by-one way.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from flask import current_app
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from models import BuyerRegistration, Product, Referral, ReferralEvent, Stipulation, utcnow

from ...extensions import db
from .. import audit, pii, referral_intake, referral_search, referrals, sites, sql
from ..events import HISTORY_AFTER
from ..lifecycle import CLOCK, State
from ..validation import field_errors
from .outcome import BatchOutcome

SUBMITTED = State.submitted
_REFERRALS = Referral.__table__


class Prepared(SimpleNamespace):
    """A row whose intake is checked: the columns of its referral, its id hash and product."""


def prepare(rows: list, out: BatchOutcome) -> list[tuple]:
    """Check each row's intake as the intake would; reject those that fail. [(row, Prepared)]"""
    products: dict[str, Product | None] = {}
    notice = current_app.config["CONSENT_NOTICE_VERSION"]
    ready = []
    for row in rows:
        code = row.intake.get("product") or ""
        if code not in products:
            products[code] = db.session.scalars(referrals._PRODUCT, {"code": code}).unique() \
                .first()
        product = products[code]
        try:
            clean = referral_intake.check(row.intake, {
                "product": product, "today": row.submitted_at.date(), "notice_version": notice,
                "find_site": sites.finder(row.org.id)})
        except ValidationError as exc:
            out.reject(row.line, "; ".join(f"{k}: {v}" for k, v in field_errors(exc).items()))
            continue
        ready.append((row, Prepared(product=product, clean=clean,
                                    id_hash=pii.id_hash(clean.national_id))))
    return ready


def split(ready: list[tuple]) -> tuple[list[tuple], list]:
    """(rows for the bulk path, rows for the one-by-one path)."""
    pairs = Counter((p.id_hash, p.product.code) for _row, p in ready)
    known = set()
    # By the hash alone, which leads the buyer index: SQLite scans the whole table for a
    # row-value IN list.
    hashes = sorted({id_hash for id_hash, _product in pairs})
    for i in range(0, len(hashes), 500):
        known |= set(db.session.execute(
            select(Referral.national_id_hash, Referral.product_code)
            .where(Referral.national_id_hash.in_(hashes[i:i + 500]))).all())
    recent = utcnow() - HISTORY_AFTER
    bulk, single = [], []
    for row, p in ready:
        pair = (p.id_hash, p.product.code)
        alone = pairs[pair] == 1 and pair not in known
        old = all(at < recent for _state, at in row.moves)
        if alone and old and row.initial == SUBMITTED.value and row.org.can_submit:
            bulk.append((row, p))
        else:
            single.append(row)
    return bulk, single


def _register(registrations: list[dict]) -> None:
    """The buyers' lock rows (each pair is alone in the batch, see `split`): on PostgreSQL
    staged by COPY and upserted with one INSERT ... SELECT, elsewhere one executemany."""
    table = BuyerRegistration.__table__
    stage = sql.staged(table, registrations, "import")
    if stage is None:
        db.session.execute(referrals._lock_statement(), registrations)
        return
    statement = postgresql.insert(table).from_select(
        ["national_id_hash", "product_code", "touched_at"],
        select(stage.c.national_id_hash, stage.c.product_code, stage.c.touched_at))
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["national_id_hash", "product_code"],
        set_={"touched_at": statement.excluded.touched_at}))


def write(bulk: list[tuple], job_id: int, ctx, note: str) -> list[int]:
    """Insert the bulk rows' referrals with their timelines, checklists and registrations;
    return the organisations of the referrals written, one per referral."""
    if not bulk:
        return []
    referral_rows, timelines = [], []
    for row, p in bulk:
        c, at = p.clean, row.submitted_at
        state = SimpleNamespace(status=SUBMITTED.value, clock=CLOCK[SUBMITTED],
                                status_changed_at=at, bank_clock_origin=at,
                                bank_seconds=0, partner_seconds=0,
                                ever_documents_requested=False, decided_at=None,
                                decline_reason=None, disbursed_at=None, closed_at=None,
                                events=[])
        for target, when in row.moves:
            referrals.replay(ctx, state, State(target), when, note=note,
                             reason_code=row.decline_reason if target == "declined" else None)
        asset = "asset" not in row.placeholders
        referral_rows.append({
            "org_id": row.org.id, "submitted_by_id": None, "product_code": p.product.code,
            "external_ref": c.external_ref, "buyer_name": c.buyer_name,
            "national_id_hash": p.id_hash, "national_id_enc": pii.encrypt(c.national_id),
            "national_id_masked": pii.mask_national_id(c.national_id),
            "mobile_enc": pii.encrypt(c.mobile), "mobile_masked": pii.mask_mobile(c.mobile),
            **referral_search.stored_keys(buyer_name=c.buyer_name, external_ref=c.external_ref,
                                          mobile=c.mobile),
            "employer": c.employer, "industry": c.industry, "customer_class": c.customer_class,
            "monthly_income": c.monthly_income, "amount": c.amount, "term_months": c.term_months,
            "asset_description": c.asset_description if asset else None,
            "asset_price": c.asset_price if asset else None,
            "down_payment": c.down_payment if asset else None,
            "consent_notice_version": c.consent_notice_version,
            "consent_obtained_at": c.consent_obtained_at, "status": state.status,
            "clock": state.clock, "status_changed_at": state.status_changed_at,
            "bank_clock_origin": state.bank_clock_origin,
            "bank_seconds": state.bank_seconds, "partner_seconds": state.partner_seconds,
            "ever_documents_requested": state.ever_documents_requested,
            "decline_reason": state.decline_reason, "submitted_at": at,
            "decided_at": state.decided_at, "disbursed_at": state.disbursed_at,
            "closed_at": state.closed_at, "version": 1 + len(row.moves),
            "import_batch_id": job_id, "site_id": c.site})
        timelines.append((p.product, at, state.events))
    ids = sql.bulk_insert(_REFERRALS, referral_rows, ids=True)
    events, checklists, registrations = [], [], []
    for referral_id, values, (product, at, moves) in zip(ids, referral_rows, timelines,
                                                         strict=True):
        events.append({"referral_id": referral_id, "at": at, "actor_id": None,
                       "from_state": None, "to_state": SUBMITTED.value,
                       "clock": CLOCK[SUBMITTED], "reason_code": None, "note": None,
                       "partner_note": None})
        events += [{"referral_id": referral_id, "at": e.at, "actor_id": None,
                    "from_state": e.from_state, "to_state": e.to_state, "clock": e.clock,
                    "reason_code": e.reason_code, "note": e.note, "partner_note": None}
                   for e in moves]
        checklists += [{"referral_id": referral_id, "kind": doc.kind, "requested_at": at}
                       for doc in product.required_documents]
        registrations.append({"national_id_hash": values["national_id_hash"],
                              "product_code": values["product_code"], "touched_at": at})
    sql.bulk_insert(ReferralEvent.__table__, events)
    sql.bulk_insert(Stipulation.__table__, checklists)
    _register(registrations)
    # One entry a referral, naming the history it came with: these moves were not made in the
    # portal (the import job's own entry says who brought the file in).
    audit.record_many(ctx, "referral.import", "referral", [
        (referral_id, {"status": values["status"], "job": job_id,
                       "history": [SUBMITTED.value, *(event.to_state for event in moves)]})
        for referral_id, values, (_product, _at, moves) in zip(ids, referral_rows, timelines,
                                                                strict=True)])
    return [values["org_id"] for values in referral_rows]
