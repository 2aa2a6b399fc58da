"""Retention: closed referrals lose the buyer's personal data RETENTION_YEARS after closing.

Kept, because scorecards, the portfolio and loan performance read them: dates, states and the
timeline's moves, amounts, term, product, industry and customer class, income, the organisation,
the partner's reference (loan statements match on it) and loan performance. Removed: the buyer's
name, national ID (encrypted value, keyed hash and masked form), mobile, employer, the asset's
description, free-text notes on the timeline and in the follow-up pool, the text of the messages
between the partner and the bank (who wrote when stays), and the documents with
their files. The audit trail is not rewritten: each batch appends one entry naming the referrals
and the counts (the entries never held the buyer's data).

Customers the bank referred to partners (customer_lead) lose their name, mobile and every note
RETENTION_YEARS after their last move, closed or not: the status, need, consent's method and
time, and dates stay for the balance of the exchange.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import delete, exists, select, update

from models import (
    BuyerRegistration,
    CustomerLead,
    Document,
    FollowUp,
    FollowUpNote,
    Referral,
    ReferralEvent,
    ReferralMessage,
    utcnow,
)

from ..extensions import db
from . import Ctx, audit, documents
from .lifecycle import TERMINAL

GONE = "—"


def cutoff(now: datetime | None = None) -> datetime | None:
    """Referrals closed before this lose their personal data; None when retention is off."""
    years = current_app.config["RETENTION_YEARS"]
    if not years:
        return None
    now = now or utcnow()
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def due(now: datetime | None = None, limit: int = 500) -> list[int]:
    before = cutoff(now)
    if before is None:
        return []
    return list(db.session.scalars(
        select(Referral.id).where(Referral.status.in_([s.value for s in TERMINAL]),
                                  Referral.closed_at < before, Referral.anonymised_at.is_(None))
        .order_by(Referral.closed_at, Referral.id).limit(limit)))


def anonymise_leads(ctx: Ctx, now: datetime | None = None) -> int:
    """The bank's customers referred to partners whose last move is older than the retention
    period lose their personal data; the number done (one audit entry when any)."""
    now = now or utcnow()
    before = cutoff(now)
    if before is None:
        return 0
    due_ids = list(db.session.scalars(select(CustomerLead.id).where(
        CustomerLead.status_changed_at < before, CustomerLead.mobile_enc != "")))
    if not due_ids:
        return 0
    db.session.execute(update(CustomerLead).where(CustomerLead.id.in_(due_ids)).values(
        customer_name=GONE, mobile_enc="", mobile_hash=None, mobile_masked=GONE,
        need_detail=None, internal_note=None, decline_reason=None, outcome_note=None
    ).execution_options(synchronize_session=False))
    audit.record(ctx, "retention.anonymise", None, leads=len(due_ids), lead_ids=due_ids,
                 moved_before=before.isoformat(),
                 retention_years=current_app.config["RETENTION_YEARS"])
    db.session.flush()
    return len(due_ids)


def anonymise_batch(ctx: Ctx, now: datetime | None = None, limit: int = 500) -> int:
    """Anonymise up to `limit` referrals that are due; the number done."""
    now = now or utcnow()
    ids = due(now, limit)
    if not ids:
        return 0
    hashes = set(db.session.execute(
        select(Referral.national_id_hash, Referral.product_code).where(Referral.id.in_(ids))))
    files = [documents.path_of(d) for d in db.session.scalars(
        select(Document).where(Document.referral_id.in_(ids)))]
    removed = db.session.execute(delete(Document).where(Document.referral_id.in_(ids))).rowcount
    db.session.execute(update(Referral).where(Referral.id.in_(ids)).values(
        buyer_name=GONE, buyer_name_key=None, national_id_hash="", national_id_enc="",
        national_id_masked=GONE, mobile_enc="", mobile_masked=GONE, mobile_hash=None,
        employer="", asset_description=None, anonymised_at=now
    ).execution_options(synchronize_session=False))
    db.session.execute(update(ReferralEvent).where(ReferralEvent.referral_id.in_(ids))
                       .values(note=None, partner_note=None))
    db.session.execute(update(ReferralMessage).where(ReferralMessage.referral_id.in_(ids))
                       .values(body=""))
    db.session.execute(update(FollowUpNote).where(FollowUpNote.follow_up_id.in_(
        select(FollowUp.id).where(FollowUp.referral_id.in_(ids)))).values(body=""))
    for id_hash, product in hashes:  # the lock row of a buyer no one else still holds
        held = exists().where(Referral.national_id_hash == id_hash,
                              Referral.product_code == product)
        db.session.execute(delete(BuyerRegistration).where(
            BuyerRegistration.national_id_hash == id_hash,
            BuyerRegistration.product_code == product, ~held))
    audit.record(ctx, "retention.anonymise", None, referrals=len(ids), referral_ids=ids,
                 documents_removed=removed,
                 closed_before=cutoff(now).isoformat(),
                 retention_years=current_app.config["RETENTION_YEARS"])
    db.session.flush()
    # Files last, once the rows are gone in this transaction. Should it still roll back, the
    # rows remain without their files: they were due for removal anyway.
    for path in files:
        path.unlink(missing_ok=True)
    return len(ids)


def housekeeping(ctx: Ctx, now: datetime | None = None, *, batches: int = 4,
                 limit: int = 500) -> int:
    """The worker's share, bounded per round (the CLI does any backlog at once)."""
    anonymise_leads(ctx, now)
    done = 0
    for _ in range(batches):
        count = anonymise_batch(ctx, now, limit)
        done += count
        if count < limit:
            break
    return done
