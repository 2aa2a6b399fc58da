"""The referral lifecycle: states, whose clock runs in each, and the one transition table."""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    submitted = "submitted"
    documents_requested = "documents_requested"
    under_review = "under_review"
    approved = "approved"
    contract_signed = "contract_signed"
    disbursed = "disbursed"
    declined = "declined"
    withdrawn = "withdrawn"
    conflict = "conflict"
    rejected_duplicate = "rejected_duplicate"
    expired = "expired"
    # A submission of a partner that probed the attribution answer (docs/attribution.md): it
    # waits for a channel manager, who releases it to the queue or refuses it.
    held = "held"
    refused = "refused"


class Actor(str, enum.Enum):
    """Who may make a move: mapped onto roles by ACTOR_ROLES."""

    officer = "officer"  # credit officers (and admins)
    manager = "manager"  # channel managers (and admins)
    partner = "partner"  # the referring organisation's users
    system = "system"  # imports and scheduled jobs


ACTOR_ROLES: dict[Actor, frozenset[str]] = {
    Actor.officer: frozenset({"credit_officer", "admin"}),
    Actor.manager: frozenset({"channel_manager", "admin"}),
    Actor.partner: frozenset({"partner_agent", "partner_admin"}),
    Actor.system: frozenset(),
}

S = State
CLOCK: dict[State, str | None] = {
    S.submitted: "bank",
    S.documents_requested: "partner",
    S.under_review: "bank",
    S.approved: "bank",
    S.contract_signed: "bank",
    S.conflict: "bank",
    S.held: "bank",
    S.disbursed: None,
    S.declined: None,
    S.withdrawn: None,
    S.rejected_duplicate: None,
    S.expired: None,
    S.refused: None,
}

TERMINAL = frozenset(s for s, c in CLOCK.items() if c is None)
DECIDED = frozenset({S.approved, S.contract_signed, S.disbursed, S.declined})

OFF, MGR, PTN, SYS = Actor.officer, Actor.manager, Actor.partner, Actor.system

# (from, to) -> who may make the move. Anything not listed is refused.
TRANSITIONS: dict[tuple[State, State], frozenset[Actor]] = {
    (S.submitted, S.under_review): frozenset({OFF, SYS}),
    (S.submitted, S.documents_requested): frozenset({OFF, SYS}),
    (S.submitted, S.declined): frozenset({OFF, SYS}),
    (S.submitted, S.withdrawn): frozenset({OFF, PTN, SYS}),
    (S.documents_requested, S.under_review): frozenset({OFF, PTN, SYS}),
    (S.documents_requested, S.declined): frozenset({OFF, SYS}),
    (S.documents_requested, S.withdrawn): frozenset({OFF, PTN, SYS}),
    (S.documents_requested, S.expired): frozenset({OFF, SYS}),
    (S.under_review, S.documents_requested): frozenset({OFF, SYS}),
    (S.under_review, S.approved): frozenset({OFF, SYS}),
    (S.under_review, S.declined): frozenset({OFF, SYS}),
    (S.under_review, S.withdrawn): frozenset({OFF, PTN, SYS}),
    (S.approved, S.contract_signed): frozenset({OFF, SYS}),
    (S.approved, S.withdrawn): frozenset({OFF, PTN, SYS}),
    (S.contract_signed, S.disbursed): frozenset({OFF, SYS}),
    (S.contract_signed, S.withdrawn): frozenset({OFF, SYS}),
    (S.conflict, S.submitted): frozenset({MGR, SYS}),
    (S.conflict, S.rejected_duplicate): frozenset({MGR, SYS}),
    (S.conflict, S.withdrawn): frozenset({PTN, SYS}),
    # A held submission is released (to submitted, or to conflict when another partner
    # registered the buyer first: the attribution check runs again) or refused.
    (S.held, S.submitted): frozenset({MGR, SYS}),
    (S.held, S.conflict): frozenset({MGR, SYS}),
    (S.held, S.refused): frozenset({MGR, SYS}),
    (S.held, S.withdrawn): frozenset({PTN, SYS}),
}

# Moves that need a written note (the bank's reason) before they are made.
NOTE_REQUIRED = frozenset(
    {
        (S.conflict, S.submitted),
        (S.conflict, S.rejected_duplicate),
        (S.submitted, S.documents_requested),
        (S.under_review, S.documents_requested),
        (S.held, S.submitted),
        (S.held, S.conflict),
        (S.held, S.refused),
    }
)

# Moves out of `held` happen only through the held-submission review (services/holds.py),
# which re-runs the attribution check.
HOLD_REVIEW = frozenset({(S.held, S.submitted), (S.held, S.conflict), (S.held, S.refused)})

# Live states in which a referral does not (yet) hold the buyer for its partner: a conflict
# waits on the earlier holder, a held submission on the channel manager.
AWAITING_ATTRIBUTION = frozenset({S.conflict.value, S.held.value})

# Partner-safe decline categories: the only reason a partner ever sees for a decline.
DECLINE_REASONS = (
    "credit_policy",
    "income_insufficient",
    "documents_unverifiable",
    "collateral_insufficient",
    "other",
)

# The states whose reason code a partner may read (the decline category); every other reason
# code on the timeline is the bank's own.
PARTNER_REASON_STATES = frozenset({S.declined.value})


def actors_for_role(role: str | None) -> set[Actor]:
    if role is None:
        return {Actor.system}
    return {a for a, roles in ACTOR_ROLES.items() if role in roles}


def allowed(from_state: str, to_state: str, role: str | None) -> bool:
    try:
        key = (State(from_state), State(to_state))
    except ValueError:
        return False
    who = TRANSITIONS.get(key)
    return bool(who and who & actors_for_role(role))


def may_ever_move_to(to_state: str, role: str | None) -> bool:
    """Whether this role may move a referral to `to_state` from some state: when not, asking is
    forbidden (403) whatever the referral's state; when so but not from the state it is in, the
    lifecycle refuses it now (409)."""
    try:
        target = State(to_state)
    except ValueError:
        return False
    actors = actors_for_role(role)
    return any(to == target and who & actors for (_from, to), who in TRANSITIONS.items())


def next_states(from_state: str, role: str | None) -> list[State]:
    return [to for (fr, to) in TRANSITIONS if fr.value == from_state and allowed(fr, to, role)]


def is_decided(state: str) -> bool:
    return State(state) in DECIDED
