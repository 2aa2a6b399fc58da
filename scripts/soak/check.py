"""After the soak: what the clients were told, against what the database holds.

- lost: an acknowledged (201) referral that is not there under its id, its organisation and its
  external reference, or whose Idempotency-Key does not replay that same referral; an
  acknowledged (200) transition that is not in the referral's timeline;
- duplicated: a reference stored more than once, a key answered with two referrals, a transition
  applied twice;
- broken timelines: events out of order, a from-state that is not the previous to-state, or a
  referral whose state is not its last event's to-state.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import psycopg


def check(database_url: str, submissions: list[dict], transitions: list[dict]) -> dict:
    with psycopg.connect(database_url) as conn:
        referrals = {row[0]: {"org": row[1], "ref": row[2], "status": row[3]}
                     for row in conn.execute(
                         "SELECT r.id, o.code, r.external_ref, r.status FROM referral r "
                         "JOIN organization o ON o.id = r.org_id "
                         "WHERE r.external_ref LIKE 'SOAK-%'")}
        events = defaultdict(list)
        for referral_id, event_id, at, from_state, to_state in conn.execute(
                "SELECT referral_id, id, at, from_state, to_state FROM referral_event "
                "ORDER BY referral_id, id"):
            events[referral_id].append((event_id, at, from_state, to_state))
        replays = {(row[0], row[1]): row[2] for row in conn.execute(
            "SELECT o.code, i.key, i.response_body FROM idempotency_record i "
            "JOIN api_key k ON k.id = i.api_key_id JOIN organization o ON o.id = k.org_id "
            "WHERE i.status_code = 201")}

    acknowledged = [s for s in submissions if s["status"] == 201]
    lost = []
    for s in acknowledged:
        row = referrals.get(s["id"])
        stored = replays.get((s["org"], s["key"]))
        if (row is None or (row["org"], row["ref"]) != (s["org"], s["external_ref"])
                or stored is None or json.loads(stored)["id"] != s["id"]):
            lost.append(s)
    by_ref = Counter((r["org"], r["ref"]) for r in referrals.values())
    duplicated = [ref for ref, n in by_ref.items() if n > 1]
    ids_by_key = defaultdict(set)
    for s in acknowledged:
        ids_by_key[s["key"]].add(s["id"])
    duplicated += [key for key, ids in ids_by_key.items() if len(ids) > 1]

    broken = []
    for referral_id, row in referrals.items():
        timeline = events.get(referral_id, [])
        previous, last_at = None, None
        ok = bool(timeline)
        for _id, at, from_state, to_state in timeline:
            if from_state != previous or (last_at is not None and at < last_at):
                ok = False
            previous, last_at = to_state, at
        if not ok or previous != row["status"]:
            broken.append(referral_id)

    lost_transitions, doubled_transitions = [], []
    for t in transitions:
        moves = [(e[2], e[3]) for e in events.get(t["id"], [])]
        n = moves.count((t["from"], t["to"]))
        if n == 0:
            lost_transitions.append(t)
        elif n > 1:
            doubled_transitions.append(t)
    unacknowledged_stored = len(referrals) - len({s["id"] for s in acknowledged})
    return {
        "referrals_acknowledged": len(acknowledged),
        "referrals_given_up": sum(1 for s in submissions if s["status"] is None),
        "referrals_refused": sum(1 for s in submissions if s["status"] not in (None, 201)),
        "referrals_stored": len(referrals),
        "stored_without_acknowledgement": unacknowledged_stored,
        "replayed_acknowledgements": sum(1 for s in acknowledged if s.get("replayed")),
        "transitions_acknowledged": len(transitions),
        "lost": len(lost) + len(lost_transitions),
        "lost_referrals": lost[:10],
        "lost_transitions": lost_transitions[:10],
        "duplicated": len(duplicated) + len(doubled_transitions),
        "duplicated_examples": (duplicated + doubled_transitions)[:10],
        "broken_timelines": len(broken),
        "broken_examples": broken[:10],
        "states": dict(Counter(r["status"] for r in referrals.values())),
    }
