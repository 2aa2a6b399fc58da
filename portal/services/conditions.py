"""The items the bank asks a partner for, and what each one's status truly is.

A referral carries its product's checklist from intake (`Stipulation.requested` False): the
officer's guide to what the product usually needs. Only what the officer picks — a line of the
checklist, another document type or an item in the officer's own words — is asked of the partner
(`requested` True). The partner sees, is told about and must answer exactly those items, plus any
item the bank rejected a file of; an upload the partner made unasked shows as its own item.

Pure functions of loaded objects: the pages, the API, notices and the lifecycle's send-back rule
all read the same answer.
"""

from __future__ import annotations

from models import Document, Referral, Stipulation

from .lifecycle import TERMINAL, State

# File statuses that no longer count towards an item: replaced, or never looked at.
SETTLED_UNREVIEWED = ("superseded", "not_reviewed")


def closed(referral: Referral) -> bool:
    return State(referral.status) in TERMINAL


def waiting_on_partner(item: Stipulation) -> bool:
    """Asked for and not yet answered, or answered with a file the bank rejected."""
    return item.status == "rejected" or (item.requested and item.status == "missing")


def outstanding(referral: Referral) -> list[Stipulation]:
    """What the partner must still provide before sending the referral back (nothing once the
    referral is closed)."""
    if closed(referral):
        return []
    return [s for s in referral.stipulations if waiting_on_partner(s)]


def files_of(item: Stipulation) -> list[Document]:
    return list(item.documents)


def visible(referral: Referral) -> list[Stipulation]:
    """The items a partner sees: those the bank asked for, and those with files."""
    return [s for s in referral.stipulations if s.requested or s.documents]


def item_status(item: Stipulation, referral: Referral) -> str:
    """The item's status as it is true now: once the referral is closed an item still waiting
    for a file is no longer needed, and one whose files were never reviewed says so."""
    if closed(referral):
        if item.status == "uploaded":
            return "not_reviewed"
        if item.status in ("missing", "rejected"):
            return "not_needed"
    return item.status


def current_files(item: Stipulation) -> list[Document]:
    """The item's files that still count: not replaced, not left unreviewed."""
    return [d for d in item.documents if d.status not in SETTLED_UNREVIEWED]


def pending_files(item: Stipulation) -> list[Document]:
    return [d for d in item.documents if d.status == "pending"]


def latest_review(item: Stipulation) -> Document | None:
    """The file that carries the item's last decision (its reason for the partner)."""
    reviewed = [d for d in item.documents if d.reviewed_at is not None]
    return max(reviewed, key=lambda d: (d.reviewed_at, d.id)) if reviewed else None


def settle_on_close(referral: Referral) -> None:
    """The referral closed: files nobody reviewed say so, rather than wait for review forever."""
    for document in referral.documents:
        if document.status == "pending":
            document.status = "not_reviewed"
