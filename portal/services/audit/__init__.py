"""The audit trail: who did what, append-only and hash-chained (docs/audit.md).

`record` writes an entry in the caller's unit of work (it goes if the work is refused);
`denied.record_denied` writes one in a transaction of its own, for refusals whose own work rolls
back; `chain` links entries as they commit and verifies the chain.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models import AuditEntry, utcnow

from ... import extensions, unit_of_work
from .. import Ctx, sql
from . import (
    chain,
    guard,  # noqa: F401  (the SQLite side of the append-only triggers)
)
from .chain import UNSEALED

_INSERT = insert(AuditEntry.__table__)

# What the admin page offers to filter by: fixed lists, so the page never asks the table for
# its distinct values (tests/test_audit_chain.py checks every action the code records is here).
ACTIONS = (
    "access.denied", "access.denied_dropped", "agreement.accepted", "agreement.active",
    "agreement.draft", "agreement.expired", "agreement.issued", "agreement.renew",
    "agreement.superseded", "agreement.terminated", "agreement.update_draft",
    "annual_review.record", "application.add_info", "application.approve",
    "application.decline", "application.licence_download", "application.request_info",
    "application.submit",
    "agreement_template.create", "agreement_template.edit", "api_key.create", "api_key.revoke",
    "audit.anchor", "branch.create", "branch.update", "contact.log", "dispute.answer",
    "dispute.open", "document.accept",
    "document.download", "document.reject", "document.upload", "followup.add", "followup.assign",
    "followup.close", "followup.note", "import.cancel", "import.loans", "import.loans.queued",
    "import.referrals", "import.referrals.queued", "lead.accept", "lead.create",
    "lead.decline", "lead.outcome", "loan.correct", "login", "login.failed",
    "login.refused_locked", "logout", "mfa.disabled", "mfa.enabled", "mfa.enrolment_started",
    "mfa.recovery_code_used", "mfa.recovery_codes_renewed", "org.create", "org.reassign",
    "org.activate", "org.update", "pii.rotate_key", "product.rates", "reauthenticate",
    "referral.assign", "referral.batch", "referral.hold", "referral.hold_refuse",
    "referral.hold_release", "referral.import",
    "referral.release", "referral.reveal", "referral.reveal_refused", "referral.submit",
    "referral.take", "referral.transition", "retention.anonymise", "reveal.approve",
    "reveal.request", "scoring.cadence", "scoring.weights", "session.end", "session.end_others",
    "site.create", "site.quota_warning", "site.staff_assign", "site.staff_remove", "site.update",
    "user.activate", "user.branch", "user.create", "user.deactivate", "user.invite",
    "user.password_change",
    "user.password_reset", "webhook.create", "webhook.deactivate", "webhook.resend",
)
TARGET_TYPES = (
    "agreement", "agreementtemplate", "annualreview", "apikey", "branch", "contactlog",
    "customerlead", "dispute", "document", "followup", "importbatch", "loanperformance",
    "organization", "partnerapplication", "partnersite", "product", "referral", "reveal",
    "revealrequest", "scoringweights", "user", "webhookdelivery", "webhookendpoint",
)


def values(ctx: Ctx, action: str, target=None, *, email: str | None = None,
           target_type: str | None = None, target_id=None, detail: dict | None = None) -> dict:
    if target is not None:
        target_type, target_id = type(target).__name__.lower(), target.id
    return {
        "at": utcnow(),
        "actor_id": ctx.user.id if ctx.user else None,
        "actor_email": email or (ctx.user.email if ctx.user else None),
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "ip": ctx.ip,
        "detail": detail or None,
    }


def insert_entry(session: Session, row: dict) -> None:
    insert_entries(session, [row])


def insert_entries(session: Session, rows: list[dict]) -> None:
    # A plain INSERT: nothing reads the entries back, and the unit of work would cost more.
    # Their place in the chain is given when the transaction commits (chain.seal).
    session.execute(_INSERT, rows)
    session.info[UNSEALED] = True


def record(ctx: Ctx, action: str, target=None, *, email: str | None = None, **detail) -> None:
    if target is not None and target.id is None:
        extensions.db.session.flush()
    insert_entry(extensions.db.session, values(ctx, action, target, email=email, detail=detail))


def record_many(ctx: Ctx, action: str, target_type: str,
                entries: list[tuple[object, dict]]) -> None:
    """One entry per (target id, detail), written with one statement: a bulk path (an import
    batch) must not pay a round trip per entry. Each is chained at commit like any other."""
    if not entries:
        return
    rows = [values(ctx, action, target_type=target_type, target_id=target_id, detail=detail)
            for target_id, detail in entries]
    session = extensions.db.session
    if len(rows) >= chain.STAGE_FROM and session.get_bind().dialect.name == "postgresql":
        sql.bulk_insert(AuditEntry.__table__, rows)  # COPY: an import batch's entries
        session.info[UNSEALED] = True
    else:
        insert_entries(session, rows)


def record_refusal(ctx: Ctx, action: str, target=None, **detail) -> None:
    """Audit a refusal the caller is about to raise (a reveal without a reason, over its limit):
    the raise rolls back the request's work, so the entry is written in a transaction of its own
    once the request's has ended (unit_of_work.apart), and linked into the chain as it commits."""
    row = values(ctx, action, target, detail=detail)
    unit_of_work.apart(lambda session: insert_entry(session, row))
