"""What the rest of the portal calls when something happens that partners should hear about.

Each hook runs inside the caller's transaction: the outbox event (for webhooks) and the in-app
notifications are written with the change itself, or not at all.
"""

from __future__ import annotations

from datetime import timedelta

from models import Referral, ReferralEvent, utcnow

from . import Ctx, conditions, disclosure, notifications, webhooks
from .lifecycle import State

# Moves recorded with a time further back than this are history (imports, demo data): they
# are kept, not announced.
HISTORY_AFTER = timedelta(minutes=10)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def referral_transitioned(ctx: Ctx, referral: Referral, event: ReferralEvent) -> None:
    """Called by referrals.transition after every move. Everything said goes through
    services/disclosure.py: the partner's note, never the bank's."""
    if utcnow() - event.at > HISTORY_AFTER:
        return
    data = disclosure.transition_notice(referral, event)
    webhooks.emit(referral.org_id, "referral.status_changed", data, at=event.at)
    # The person who made the move does not need telling.
    me = ctx.user.id if ctx.user is not None else None
    common = {"referral_id": referral.id, "external_ref": referral.external_ref}
    if event.to_state == State.documents_requested.value:
        # Exactly the items the partner must answer, never the product's whole checklist.
        asked = conditions.outstanding(referral)
        kinds = [s.kind for s in asked]
        items = [disclosure.item_notice(s) for s in asked]
        webhooks.emit(referral.org_id, "referral.documents_requested",
                      {"referral": data["referral"], "documents": kinds, "items": items,
                       "note": data["note"], "at": data["at"]}, at=event.at)
        notifications.notify_org(referral.org_id, "documents_requested",
                                 {**common, "documents": kinds, "items": items,
                                  "note": data["note"]},
                                 exclude_user_id=me)
    else:
        params = {**common, "from": data["from"], "to": data["to"], "note": data["note"],
                  "reason_code": data["reason_code"]}
        decision = data["referral"].get("decision")
        if (event.to_state == State.approved.value and decision
                and decision.get("amount") is not None):
            # What the partner tells the buyer: the terms approved, a counter-offer as such.
            params["terms"] = {k: decision[k] for k in (
                "amount", "term_months", "rate_percent", "counter_offer", "requested_amount")}
        notifications.notify_org(referral.org_id, "referral_status", params,
                                 exclude_user_id=me)


def item_rejected(ctx: Ctx, referral: Referral, item, decided) -> None:
    """Called when the bank rejects an item: the partner is asked for a new upload, with the
    reason meant for it (never the officer's internal note)."""
    notifications.notify_org(
        referral.org_id, "item_rejected",
        {"referral_id": referral.id, "external_ref": referral.external_ref,
         "item": {"kind": item.kind, "label": disclosure.partner_text(item, "label")},
         "reason": disclosure.partner_text(decided, "review_reason")},
        exclude_user_id=ctx.user.id if ctx.user is not None else None)


def agreement_issued(ctx: Ctx, agreement) -> None:
    """Called by the agreements service when an agreement is issued to a partner."""
    if agreement.issued_at is not None and utcnow() - agreement.issued_at > HISTORY_AFTER:
        return
    data = {
        "agreement": {
            "id": agreement.id,
            "number": agreement.number,
            "version": agreement.version,
            "status": agreement.status,
            "products": list(agreement.products or []),
            "effective_from": agreement.effective_from.isoformat()
            if agreement.effective_from else None,
            "expires_on": agreement.expires_on.isoformat() if agreement.expires_on else None,
        },
        "at": _iso(agreement.issued_at or utcnow()),
    }
    webhooks.emit(agreement.org_id, "agreement.issued", data)
    notifications.notify_org(agreement.org_id, "agreement_issued",
                             {"agreement_id": agreement.id, "number": agreement.number,
                              "version": agreement.version,
                              "effective_from": data["agreement"]["effective_from"],
                              "expires_on": data["agreement"]["expires_on"]},
                             exclude_user_id=ctx.user.id if ctx.user is not None else None)
