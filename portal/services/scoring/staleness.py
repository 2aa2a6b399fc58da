"""Which partners' cards are out of date. A referral change marks its organisation stale; the
recompute answers for the marks it saw. This is the only part of scoring intake needs."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from models import ScoreChange, utcnow

from ...extensions import db

_MARK_STALE = insert(ScoreChange.__table__)


def mark_stale(org_id: int | None) -> None:
    """A referral of this organisation changed: its cards need a recompute (cheap append)."""
    if org_id is not None:
        db.session.execute(_MARK_STALE, {"org_id": org_id, "at": utcnow()})


def stale_org_ids() -> list[int]:
    return list(db.session.scalars(select(ScoreChange.org_id).distinct()))


def marks_for(org_ids: list[int] | None) -> list[int]:
    """The marks of these organisations (None: of all) committed so far: those a computation
    starting now answers for. Marks committed meanwhile stay for the next run."""
    marks = select(ScoreChange.id)
    if org_ids is not None:
        marks = marks.where(ScoreChange.org_id.in_(org_ids))
    return list(db.session.scalars(marks))


def clear(mark_ids: list[int]) -> None:
    for i in range(0, len(mark_ids), 1000):
        db.session.execute(delete(ScoreChange).where(ScoreChange.id.in_(mark_ids[i:i + 1000])))
