"""What crosses to a partner: the one rule, in one place.

Every text a partner can read — the referral page and dashboard, notices in the portal and by
e-mail, webhook payloads, the API's JSON, the CSV export, the agreement pages — is shaped here,
from columns declared for partners (`info=PARTNER_TEXT` on the model). The bank's own notes are
declared `INTERNAL_TEXT` and `partner_text` refuses to read one: asking for an internal column on
the way to a partner is a programming error, raised at once rather than shown.

Faces never hand a partner a model object to read free text from; they hand this module's views.
tests/test_confidentiality.py writes a marker into every INTERNAL column through the pages and
the API, then crawls everything a partner can reach.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import bindparam, select

from models import Agreement, Document, Referral, ReferralEvent, ReferralMessage, Stipulation, User
from models.base import audience
from portal.extensions import db

from . import conditions
from .lifecycle import PARTNER_REASON_STATES, State


class InternalField(LookupError):
    """An internal column was asked for on the way to a partner."""


def partner_text(obj, name: str) -> str | None:
    """The value of `obj.name` for a partner's eyes; an INTERNAL column is refused."""
    column = type(obj).__table__.columns[name]
    if audience(column) == "internal":
        raise InternalField(f"{column.table.name}.{name} is internal to the bank")
    return getattr(obj, name)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- referrals ---------------------------------------------------------------------------------

def by_whom(event: ReferralEvent, org_id: int) -> str:
    """Who made a move, as a partner may know it: their own organisation, or the bank."""
    actor = event.actor
    return "partner" if actor is not None and actor.org_id == org_id else "bank"


def event(event: ReferralEvent, org_id: int, *, by: bool = True) -> dict:
    """One timeline line: states, the decline category, the note written for the partner; never
    the internal note nor the name of whoever made the move. `by=False` leaves out which side
    made it (it loads the actor), for a reader that does not show it (the API's timeline)."""
    reason = event.reason_code if event.to_state in PARTNER_REASON_STATES else None
    line = {
        "at": event.at,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason_code": reason,
        "partner_note": partner_text(event, "partner_note"),
    }
    if by:
        line["by"] = by_whom(event, org_id)
    return line


def timeline(referral: Referral, *, by: bool = True) -> list[dict]:
    return [event(e, referral.org_id, by=by) for e in referral.events]


def bank_note(note: str | None, partner_note: str | None) -> str | None:
    """A timeline line's note as the bank reads it: the internal note, else the partner's."""
    return note or partner_note


def _timeline_rows(*notes):
    E = ReferralEvent
    return (select(E.referral_id, E.at, E.from_state, E.to_state, *notes)
            .where(E.referral_id.in_(bindparam("ids", expanding=True)))
            .order_by(E.referral_id, E.id))


# Built once: building them per list was a part of its time (issue 15).
_PARTNER_LINES = _timeline_rows(ReferralEvent.partner_note)
_BANK_LINES = _timeline_rows(ReferralEvent.note, ReferralEvent.partner_note)


def timelines(referral_ids: list[int], *, for_partner: bool) -> dict[int, list[dict]]:
    """The timelines of a list's referrals, as the API gives them (at, from, to, note), read as
    plain rows: a page of 25 referrals holds a hundred events or more, and loading each as a
    model object was a third of the list's time (issue 15). A partner's lines carry the note
    written for the partner, and the internal note is not even read; the bank's the internal
    note, else the partner's."""
    out: dict[int, list[dict]] = {i: [] for i in referral_ids}
    if not referral_ids:
        return out
    for row in db.session.execute(_PARTNER_LINES if for_partner else _BANK_LINES,
                                  {"ids": referral_ids}):
        out[row[0]].append({"at": row[1], "from": row[2], "to": row[3],
                            "note": row[4] if for_partner else bank_note(row[4], row[5])})
    return out


def document(doc: Document) -> dict:
    return {
        "id": doc.id, "kind": doc.kind, "filename": doc.filename, "status": doc.status,
        "uploaded_at": doc.uploaded_at,
        "reason": partner_text(doc, "review_reason") if doc.status == "rejected" else None,
    }


def checklist(referral: Referral) -> list[dict]:
    """The items the partner sees (what the bank asked for, and what the partner sent), each
    with its files and its status as it is true now; never the product's whole checklist."""
    return [item(s, referral) for s in conditions.visible(referral)]


def item(entry: Stipulation, referral: Referral) -> dict:
    """One item as a partner reads it: its name, the bank's request note, the reason of a
    rejection (never the officer's internal note), every file with its status."""
    decided = conditions.latest_review(entry)
    status = conditions.item_status(entry, referral)
    return {
        "id": entry.id, "kind": entry.kind, "label": partner_text(entry, "label"),
        "status": status, "requested": entry.requested,
        "request_note": partner_text(entry, "note"),
        "reason": (partner_text(decided, "review_reason")
                   if decided is not None and entry.status == "rejected" else None),
        "waiting_on_partner": conditions.waiting_on_partner(entry)
        and not conditions.closed(referral),
        "files": [document(d) for d in entry.documents],
        "document": document(entry.documents[-1]) if entry.documents else None,
    }


def item_notice(entry: Stipulation) -> dict:
    """An item as a notice, an e-mail or a webhook names it."""
    return {"kind": entry.kind, "label": partner_text(entry, "label"),
            "note": partner_text(entry, "note")}


def uploads(referral: Referral) -> list[dict]:
    return [document(d) for d in referral.documents]


# --- decisions and their terms ------------------------------------------------------------------

def decision(referral: Referral) -> dict | None:
    """The bank's decision as the partner may tell the buyer (None until there is one): the
    outcome, and for an approval its terms — the amount, term and annual rate approved, the
    conditions (written for the partner) and whether it is a counter-offer (less than asked,
    or another term), beside what was asked. Terms are None where the decision recorded none
    (made over the API without them, or history from before terms were recorded)."""
    if referral.decided_at is None:
        return None
    row = referral.decision
    declined = referral.status == State.declined.value
    has_terms = not declined and row is not None and row.approved_amount is not None
    amount = row.approved_amount if has_terms else None
    term = row.approved_term_months if has_terms else None
    return {
        "outcome": "declined" if declined else "approved",
        "decided_at": referral.decided_at,
        "reason_code": referral.decline_reason if declined else None,
        "amount": amount,
        "term_months": term,
        "rate_percent": row.rate_percent if has_terms else None,
        "conditions": _lines(partner_text(row, "conditions")) if has_terms else [],
        "counter_offer": bool(has_terms and (amount < referral.amount
                                             or term != referral.term_months)),
        "requested_amount": referral.amount,
        "requested_term_months": referral.term_months,
    }


def _lines(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


def contract(referral: Referral) -> dict | None:
    row = referral.decision
    if row is None or row.contract_number is None:
        return None
    return {"number": row.contract_number, "amount": row.contract_amount,
            "date": row.contract_signed_on}


def disbursement(referral: Referral) -> dict | None:
    row = referral.decision
    if row is None or row.disbursed_amount is None:
        return None
    return {"number": row.loan_number, "amount": row.disbursed_amount, "date": row.disbursed_on}


def loan_terms(referral: Referral) -> dict:
    """The decision, contract and disbursement, for a page (each None until recorded)."""
    return {"decision": decision(referral), "contract": contract(referral),
            "disbursement": disbursement(referral)}


def _plain(value):
    """A value as JSON carries it: amounts and rates as numbers, days and times in ISO."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def loan_terms_json(referral: Referral) -> dict:
    return _plain(loan_terms(referral))


def webhook_referral(referral: Referral) -> dict:
    """The referral as a webhook's receiver may see it (masked data only, no notes), with the
    decision's terms, the contract and the disbursement once recorded."""
    return {
        "id": referral.id,
        "external_ref": referral.external_ref,
        "product": referral.product_code,
        "status": referral.status,
        "clock": referral.clock,
        "status_changed_at": _iso(referral.status_changed_at),
        **loan_terms_json(referral),
    }


def transition_notice(referral: Referral, moved: ReferralEvent) -> dict:
    """What a partner is told of one move (webhook `data` and the notification's words)."""
    line = event(moved, referral.org_id)
    return {
        "referral": webhook_referral(referral),
        "from": line["from_state"],
        "to": line["to_state"],
        "at": _iso(line["at"]),
        "by": line["by"],
        "note": line["partner_note"],
        "reason_code": line["reason_code"],
    }


# --- agreements --------------------------------------------------------------------------------

def agreement_terms(agreement: Agreement) -> SimpleNamespace:
    """The agreement's terms as the partner's pages show them (the same names as the model, so
    one template macro draws both faces); the termination notice, not the bank's reason."""
    return SimpleNamespace(
        id=agreement.id, number=agreement.number, version=agreement.version,
        status=agreement.status, products=list(agreement.products or []),
        projects=list(agreement.projects or []), brands=list(agreement.brands or []),
        stage_guarantee=partner_text(agreement, "stage_guarantee"),
        onsite_staff=partner_text(agreement, "onsite_staff"),
        bank_sla_hours=agreement.bank_sla_hours, partner_doc_days=agreement.partner_doc_days,
        effective_from=agreement.effective_from, expires_on=agreement.expires_on,
        issued_at=agreement.issued_at, issued_by=None,
        terminated_at=agreement.terminated_at,
        termination_notice=partner_text(agreement, "termination_notice"),
        pdf_sha256=agreement.pdf_sha256, content_sha256=agreement.content_sha256,
        acceptances=agreement.acceptances,
    )


# --- messages on a referral --------------------------------------------------------------------

def message(item: ReferralMessage, org_id: int, *, iso: bool = False) -> dict:
    """One message of a referral's thread: written for both sides, signed with its author's
    name (the partner knows the bank's people it deals with, never more of them)."""
    author = item.author
    return {
        "id": item.id,
        "referral_id": item.referral_id,
        "at": _iso(item.created_at) if iso else item.created_at,
        "by": item.side,
        "author": author.name if author is not None else None,
        "body": partner_text(item, "body"),
        "read_at": _iso(item.read_at) if iso else item.read_at,
    }


def messages(items: list[ReferralMessage], org_id: int) -> list[dict]:
    return [message(m, org_id) for m in items]


def staff_contact(user: User | None) -> dict | None:
    """A bank employee as a partner may know them: the name and the work e-mail, nothing else
    (no phone, no role history, no login details)."""
    if user is None:
        return None
    return {"name": user.name, "email": user.email}


# --- partners' sites --------------------------------------------------------------------------

def site(entry) -> SimpleNamespace:
    """A partner's own site as its users read it (models/site.py): all of it is theirs."""
    return SimpleNamespace(
        id=entry.id, code=entry.code, kind=entry.kind, active=entry.active,
        name=partner_text(entry, "name"), address=partner_text(entry, "address"),
        presale_permit=entry.presale_permit, quota_amount=entry.quota_amount,
        staged_guarantee=entry.staged_guarantee,
        guarantee_contract_number=entry.guarantee_contract_number,
        guarantee_expected_end=entry.guarantee_expected_end)


def onsite_contact(placed) -> dict:
    """A bank employee on site at a partner's site, as the partner may know them: the name, the
    work e-mail and the site's work telephone, the days and the site; nothing internal (no
    role, no branch, no login details)."""
    return {**staff_contact(placed.user), "work_phone": placed.work_phone,
            "days": placed.weekdays, "site_id": placed.site_id,
            "site_name": partner_text(placed.site, "name")}
