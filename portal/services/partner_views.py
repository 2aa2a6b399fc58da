"""Read-side queries for the partner pages: dashboard counts, lists, timeline, CSV export.

Everything here is limited to one organisation and shaped for a partner's eyes: no bank-internal
notes, no other partner, no staff identities, masked ID numbers and mobiles only. Free text comes
through services/disclosure.py, the one place that decides what a partner may read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload

from models import Document, Product, Referral, ReferralEvent, ReferralTally, User

from ..extensions import db
from . import Ctx, audit, conditions, disclosure, referral_counts, referrals
from .errors import NotFound
from .lifecycle import State

# The status filter a partner can choose. A pending conflict and one resolved against the
# partner look the same to them ("buyer already registered"), so they are one choice.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    State.submitted.value: (State.submitted.value,),
    State.documents_requested.value: (State.documents_requested.value,),
    State.under_review.value: (State.under_review.value,),
    State.approved.value: (State.approved.value,),
    State.contract_signed.value: (State.contract_signed.value,),
    State.disbursed.value: (State.disbursed.value,),
    State.declined.value: (State.declined.value,),
    State.withdrawn.value: (State.withdrawn.value,),
    State.expired.value: (State.expired.value,),
    State.conflict.value: (State.conflict.value, State.rejected_duplicate.value),
    State.held.value: (State.held.value,),
    State.refused.value: (State.refused.value,),
}
GROUP_OF = {code: group for group, codes in STATUS_GROUPS.items() for code in codes}


def products() -> list[Product]:
    return list(db.session.scalars(select(Product).order_by(Product.code)))


def product_names(locale: str) -> dict[str, str]:
    return {p.code: p.display_name(locale) for p in products()}


def org_referrals(org_id: int, *, q: str | None = None, status: str | None = None,
                  product: str | None = None) -> Select:
    """The organisation's referrals, filtered like the list page; newest first."""
    query = select(Referral).where(Referral.org_id == org_id)
    query = referrals.search(query, q=(q or "").strip()[:100] or None,
                             product=product or None)
    if status:
        query = query.where(Referral.status.in_(STATUS_GROUPS.get(status, (status,))))
    return query.order_by(Referral.submitted_at.desc(), Referral.id.desc())


def status_counts(org_id: int) -> dict[str, int]:
    """Referrals per partner-visible status group, only groups that have any."""
    counts: dict[str, int] = {}
    for status, count in referral_counts.by_status(ReferralTally.org_id == org_id).items():
        group = GROUP_OF.get(status, status)
        counts[group] = counts.get(group, 0) + count
    return {g: counts[g] for g in STATUS_GROUPS if g in counts}


def outstanding(referral: Referral) -> list:
    """The items still waiting on the partner: asked for and not sent, or rejected by the bank
    (never the product's checklist lines nobody asked for)."""
    return conditions.outstanding(referral)


def waiting_on_partner(org_id: int, limit: int = 50) -> list[dict]:
    """Referrals where the bank asked for documents, the longest waiting first."""
    rows = list(db.session.scalars(
        select(Referral)
        .where(Referral.org_id == org_id, Referral.status == State.documents_requested.value)
        .options(selectinload(Referral.stipulations))
        .order_by(Referral.status_changed_at, Referral.id)
        .limit(limit)
    ))
    # Each one's latest request for documents (its note to the partner), not its whole history.
    last_request = {}
    for event in db.session.scalars(
            select(ReferralEvent).where(
                ReferralEvent.referral_id.in_([r.id for r in rows]),
                ReferralEvent.to_state == State.documents_requested.value)
            .order_by(ReferralEvent.id)):
        last_request[event.referral_id] = event
    out = []
    for referral in rows:
        request_event = last_request.get(referral.id)
        out.append({
            "referral": referral,
            "since": referral.status_changed_at,
            "kinds": [s.kind for s in outstanding(referral)],
            "asked": [disclosure.item_notice(s) for s in outstanding(referral)],
            "partner_note": (disclosure.event(request_event, org_id, by=False)["partner_note"]
                             if request_event else None),
        })
    return out


def timeline(referral: Referral) -> list[dict]:
    return disclosure.timeline(referral)


def loan_terms(referral: Referral) -> dict:
    return disclosure.loan_terms(referral)


def checklist(referral: Referral) -> list[dict]:
    return disclosure.checklist(referral)


def uploads(referral: Referral) -> list[dict]:
    return disclosure.uploads(referral)


def recent_activity(org_id: int, limit: int = 10) -> list[dict]:
    """The organisation's latest moves, newest first.

    Every move sets its referral's `status_changed_at` to the move's time, so the latest `limit`
    moves are among the moves of the `limit` referrals that changed last: those come off
    ix_referral_org_changed, their events by referral — never a sort of all the partner's moves
    (a large partner has a hundred thousand)."""
    latest = (select(Referral.id).where(Referral.org_id == org_id)
              .order_by(Referral.status_changed_at.desc(), Referral.id.desc()).limit(limit))
    events = db.session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id.in_(list(db.session.scalars(latest))))
        .options(joinedload(ReferralEvent.referral), joinedload(ReferralEvent.actor))
        .order_by(ReferralEvent.at.desc(), ReferralEvent.id.desc())
        .limit(limit)
    )
    return [{**disclosure.event(e, org_id), "referral": e.referral} for e in events]


def document_of(referral: Referral, document_id: int) -> Document:
    """A document of this referral (already checked to be the user's), else not found."""
    document = db.session.get(Document, document_id)
    if document is None or document.referral_id != referral.id:
        raise NotFound()
    return document


def record_download(ctx: Ctx, document: Document) -> None:
    audit.record(ctx, "document.download", document, referral=document.referral_id)


def org_users(org_id: int) -> Select:
    return select(User).where(User.org_id == org_id).order_by(User.active.desc(), User.email)


def org_user(org_id: int, user_id: int) -> User:
    """A user of this organisation; anyone else's is simply not found."""
    user = db.session.get(User, user_id)
    if user is None or user.org_id != org_id:
        raise NotFound()
    return user


# --- CSV export -----------------------------------------------------------------------------

CSV_COLUMNS = ("id", "external_ref", "product", "buyer_name", "national_id_masked",
               "mobile_masked", "amount", "term_months", "status", "submitted_at",
               "status_changed_at")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """A cell as text that a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_lines(query: Select) -> Iterator[str]:
    """The referrals of `query` as CSV lines (masked data only), starting with a UTF-8 BOM."""
    columns = query.with_only_columns(
        Referral.id, Referral.external_ref, Referral.product_code, Referral.buyer_name,
        Referral.national_id_masked, Referral.mobile_masked, Referral.amount,
        Referral.term_months, Referral.status, Referral.submitted_at, Referral.status_changed_at,
    )
    rows = db.session.execute(columns).all()
    return _render_csv(rows)


def _render_csv(rows: Iterable) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        yield flush()
