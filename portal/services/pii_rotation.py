"""Moving buyers' data to new keys without downtime (`flask --app wsgi pii rotate-key`).

With ID_HASH_KEY_NEXT / PII_KEY_NEXT set everywhere, the portal already writes new data under the
next keys and reads and matches under both (services/pii.py). This moves what was written before,
a batch at a time, each batch its own unit of work (the command owns them): national IDs and
mobiles re-encrypted, national-ID hashes recomputed, the buyer lock rows re-keyed, webhook secrets
re-encrypted, the mobiles of customers the bank referred to partners re-encrypted and
hashed again. Running it again redoes nothing harmful. `leftovers` says whether the old keys are
still needed by any row. The procedure: docs/operations.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models import BuyerRegistration, CustomerLead, Referral, WebhookEndpoint, utcnow

from ..extensions import db
from . import Ctx, audit, pii

_REFERRAL = Referral.__table__
_REGISTRATION = BuyerRegistration.__table__
_ENDPOINT = WebhookEndpoint.__table__
_LEAD = CustomerLead.__table__


@dataclass
class Progress:
    referrals: int = 0
    rehashed: int = 0
    webhook_secrets: int = 0
    customer_leads: int = 0


def referral_batch(after_id: int, limit: int = 500) -> tuple[int | None, Progress]:
    """Move the referrals after `after_id` (up to `limit`); returns the last id done (None when
    there were none) and what changed."""
    rows = db.session.execute(
        select(_REFERRAL.c.id, _REFERRAL.c.national_id_enc, _REFERRAL.c.mobile_enc,
               _REFERRAL.c.national_id_hash, _REFERRAL.c.product_code)
        .where(_REFERRAL.c.id > after_id, _REFERRAL.c.anonymised_at.is_(None))
        .order_by(_REFERRAL.c.id).limit(limit)).all()
    if not rows:
        return None, Progress()
    progress, changes, moved = Progress(referrals=len(rows)), [], set()
    for row in rows:
        new_hash = pii.id_hash(pii.decrypt(row.national_id_enc))
        if new_hash != row.national_id_hash:
            progress.rehashed += 1
            moved.add((row.national_id_hash, new_hash, row.product_code))
        changes.append({"row_id": row.id, "nid": pii.reencrypt(row.national_id_enc),
                        "mob": pii.reencrypt(row.mobile_enc), "h": new_hash,
                        "mh": pii.mobile_hash(pii.decrypt(row.mobile_enc))})
    # Core statements: the optimistic version of a referral an officer holds open stays as it is
    # (only these columns change, and no one else writes them).
    db.session.execute(update(_REFERRAL).where(_REFERRAL.c.id == bindparam("row_id")).values(
        national_id_enc=bindparam("nid"), mobile_enc=bindparam("mob"),
        national_id_hash=bindparam("h"), mobile_hash=bindparam("mh")), changes)
    _rekey_locks(moved)
    return rows[-1].id, progress


def _rekey_locks(moved: set[tuple[str, str, str]]) -> None:
    """The buyer lock rows follow the hashes (they are only locks: a missing one is made again)."""
    if not moved:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(_REGISTRATION).on_conflict_do_nothing(), [
        {"national_id_hash": new, "product_code": product, "touched_at": utcnow()}
        for _old, new, product in moved])
    for old, _new, product in moved:
        db.session.execute(delete(_REGISTRATION).where(
            _REGISTRATION.c.national_id_hash == old, _REGISTRATION.c.product_code == product))


def webhook_secrets() -> int:
    rows = db.session.execute(select(_ENDPOINT.c.id, _ENDPOINT.c.secret_enc)).all()
    if rows:
        db.session.execute(
            update(_ENDPOINT).where(_ENDPOINT.c.id == bindparam("row_id"))
            .values(secret_enc=bindparam("enc")),
            [{"row_id": r.id, "enc": pii.reencrypt(r.secret_enc)} for r in rows])
    return len(rows)


def customer_leads() -> int:
    """The mobiles of the bank's customers referred to partners: re-encrypted and hashed again
    (those emptied under retention have nothing to move)."""
    rows = db.session.execute(select(_LEAD.c.id, _LEAD.c.mobile_enc)
                              .where(_LEAD.c.mobile_enc != "")).all()
    if rows:
        db.session.execute(
            update(_LEAD).where(_LEAD.c.id == bindparam("row_id"))
            .values(mobile_enc=bindparam("enc"), mobile_hash=bindparam("mh")),
            [{"row_id": r.id, "enc": pii.reencrypt(r.mobile_enc),
              "mh": pii.mobile_hash(pii.decrypt(r.mobile_enc))} for r in rows])
    return len(rows)


def leftovers(limit: int = 2000) -> dict[str, int]:
    """Rows that still need the old keys: must all be 0 before the old keys are dropped."""
    left = {"referrals": 0, "webhook_secrets": 0, "customer_leads": 0}
    after = 0
    while True:
        rows = db.session.execute(
            select(_REFERRAL.c.id, _REFERRAL.c.national_id_enc, _REFERRAL.c.mobile_enc,
                   _REFERRAL.c.national_id_hash, _REFERRAL.c.mobile_hash)
            .where(_REFERRAL.c.id > after, _REFERRAL.c.anonymised_at.is_(None))
            .order_by(_REFERRAL.c.id).limit(limit)).all()
        if not rows:
            break
        for row in rows:
            # The mobile's hash too: one left under the old hash key is a buyer the search box
            # stops finding by mobile the day that key is dropped.
            if not (pii.under_newest_key(row.national_id_enc)
                    and pii.under_newest_key(row.mobile_enc)
                    and pii.id_hash(pii.decrypt(row.national_id_enc)) == row.national_id_hash
                    and pii.mobile_hash(pii.decrypt(row.mobile_enc)) == row.mobile_hash):
                left["referrals"] += 1
        after = rows[-1].id
    for (secret,) in db.session.execute(select(_ENDPOINT.c.secret_enc)):
        if not pii.under_newest_key(secret):
            left["webhook_secrets"] += 1
    for token, hashed in db.session.execute(select(_LEAD.c.mobile_enc, _LEAD.c.mobile_hash)
                                            .where(_LEAD.c.mobile_enc != "")):
        if not (pii.under_newest_key(token) and pii.mobile_hash(pii.decrypt(token)) == hashed):
            left["customer_leads"] += 1
    return left


def record(ctx: Ctx, progress: Progress, left: dict) -> None:
    config = current_app.config
    audit.record(ctx, "pii.rotate_key", None, referrals=progress.referrals,
                 rehashed=progress.rehashed, webhook_secrets=progress.webhook_secrets,
                 customer_leads=progress.customer_leads,
                 new_encryption_key=bool(config["PII_KEY_NEXT"]),
                 new_hash_key=bool(config["ID_HASH_KEY_NEXT"]), left_on_old_keys=left)
