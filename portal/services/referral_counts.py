"""How many referrals, per partner and status, read from `referral_tally` instead of counted.

The tally (migration 0022) is kept by triggers on `referral` in the writing transaction, so these
answers are exactly `count(*)` over the same referrals, at the cost of one row per partner and
status rather than one per referral (issue 15: at a million referrals a bank-wide count read
every row). Only counts that depend on nothing but the partner and the status can come from
here; anything narrower (a reference, a search, a product) still counts the referrals.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, select, text

from models import ReferralTally

from ..extensions import db


def total(*where: ColumnElement[bool], statuses: Iterable[str] | None = None) -> int:
    """Referrals of the partners `where` keeps (conditions on ReferralTally.org_id), in
    `statuses` if given."""
    return int(db.session.scalar(total_statement(*where, statuses=statuses)) or 0)


def total_statement(*where: ColumnElement[bool], statuses: Iterable[str] | None = None):
    query = select(func.sum(ReferralTally.n)).where(*where)
    if statuses is not None:
        query = query.where(ReferralTally.status.in_(tuple(statuses)))
    return query


def by_status(*where: ColumnElement[bool]) -> dict[str, int]:
    """Referrals per status of the partners `where` keeps; only statuses that have any."""
    counted = func.sum(ReferralTally.n)
    rows = db.session.execute(select(ReferralTally.status, counted).where(*where)
                              .group_by(ReferralTally.status).having(counted > 0))
    return {status: int(n) for status, n in rows}


def compact() -> None:
    """Rewrite the tally compact (PostgreSQL; SQLite updates in place). A bulk load updates its
    rows many times between two vacuums and leaves the table many times its size, and every
    bank-wide total reads all of it (migration 0023). A few thousand rows: milliseconds, under
    a lock that holds back writers of referrals for as long."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("CLUSTER referral_tally"))
