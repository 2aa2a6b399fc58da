"""The annual review (年审) of each active partner: due a year after its admission or its last
review, shown as due for the month before and overdue after; a channel manager of the partner's
branch records one with its outcome and an internal note.

A few hundred partners: the schedule is worked out per partner in Python from one grouped query,
and paged by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from models import AnnualReview, Branch, Organization, OrgStatus, ReviewOutcome, User
from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_date, bank_today, day_start
from ..extensions import db
from . import Ctx, audit, branches, partners
from .errors import Forbidden, StateConflict, ValidationFailed

DUE_WINDOW_DAYS = 30  # a review shows as due this long before its day
NOTE_MAX = 4000
OUTCOMES = tuple(o.value for o in ReviewOutcome)


def _years_on(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def a_year_after(day: date) -> date:
    return _years_on(day, 1)


def state_of(due_on: date, today: date) -> str:
    if today >= due_on:
        return "overdue"
    if (due_on - today).days <= DUE_WINDOW_DAYS:
        return "due"
    return "ok"


@dataclass
class Due:
    org: Organization
    last_reviewed_on: date | None
    due_on: date
    state: str
    days: int  # days until the due day (negative: overdue by)


def schedule(user: User | None, *, branch: Branch | None = None, q: str | None = None,
             states: tuple[str, ...] = ("overdue", "due"), today: date | None = None) -> list[Due]:
    """The active partners the user may see whose review is in `states`, most urgent first."""
    today = today or bank_today()
    # The branch comes with each partner (the lists name it): one statement, not one a row.
    query = select(Organization).options(selectinload(Organization.branch)).where(
        Organization.is_partner, Organization.status == OrgStatus.active.value,
        branches.in_scope(user, Organization.id), branches.in_branch(branch, Organization.id))
    text = (q or "").strip()[:100]
    if text:
        query = query.where(partners.named(text))
    orgs = list(db.session.scalars(query))
    last = dict(db.session.execute(
        select(AnnualReview.org_id, func.max(AnnualReview.reviewed_on))
        .where(AnnualReview.org_id.in_([o.id for o in orgs]))
        .group_by(AnnualReview.org_id)).all()) if orgs else {}
    rows = []
    for org in orgs:
        reviewed = last.get(org.id)
        due_on = a_year_after(reviewed or bank_date(org.created_at))
        state = state_of(due_on, today)
        if state in states:
            rows.append(Due(org, reviewed, due_on, state, (due_on - today).days))
    return sorted(rows, key=lambda r: (r.due_on, r.org.name))


def due_summary(user: User | None, *, branch: Branch | None = None, limit: int = 10,
                today: date | None = None) -> tuple[list[Due], dict[str, int]]:
    """The most urgent `limit` reviews due or overdue and how many of each (the cockpit's
    panel): one grouped statement of ids and days, then only the partners shown are loaded.
    Loading every partner for ten lines was a sixth of the cockpit's time (issue 15)."""
    today = today or bank_today()
    # A review falls due a year after its base day, shown DUE_WINDOW_DAYS before: only a base
    # day on or before `latest` can be due. The database keeps those (two days' margin for
    # 29 February and the bank's time zone); the states are worked out below, exactly.
    latest = _years_on(today + timedelta(days=DUE_WINDOW_DAYS + 2), -1)
    last_review = func.max(AnnualReview.reviewed_on)
    query = (select(Organization.id, Organization.name, Organization.created_at, last_review)
             .outerjoin(AnnualReview, AnnualReview.org_id == Organization.id)
             .where(Organization.is_partner, Organization.status == OrgStatus.active.value,
                    branches.in_scope(user, Organization.id),
                    branches.in_branch(branch, Organization.id))
             .group_by(Organization.id, Organization.name, Organization.created_at)
             .having(or_(last_review <= latest, and_(
                 last_review.is_(None), Organization.created_at < day_start(latest)
                 + timedelta(days=1)))))
    due = []
    for org_id, name, created_at, reviewed in db.session.execute(query):
        due_on = a_year_after(reviewed or bank_date(created_at))
        state = state_of(due_on, today)
        if state in ("overdue", "due"):
            due.append((due_on, name, org_id, reviewed, state))
    due.sort()
    shown = due[:limit]
    orgs = {o.id: o for o in db.session.scalars(
        select(Organization).options(selectinload(Organization.branch))
        .where(Organization.id.in_([d[2] for d in shown])))} if shown else {}
    rows = [Due(orgs[org_id], reviewed, due_on, state, (due_on - today).days)
            for due_on, _name, org_id, reviewed, state in shown]
    return rows, {s: sum(1 for d in due if d[4] == s) for s in ("overdue", "due")}


def counts(rows: list[Due]) -> dict[str, int]:
    return {s: sum(1 for r in rows if r.state == s) for s in ("overdue", "due")}


def history(org: Organization) -> list[AnnualReview]:
    return list(db.session.scalars(select(AnnualReview).where(AnnualReview.org_id == org.id)
                                   .order_by(AnnualReview.reviewed_on.desc(),
                                             AnnualReview.id.desc())))


def due_for(org: Organization, today: date | None = None) -> Due:
    today = today or bank_today()
    reviewed = db.session.scalar(select(func.max(AnnualReview.reviewed_on))
                                 .where(AnnualReview.org_id == org.id))
    due_on = a_year_after(reviewed or bank_date(org.created_at))
    return Due(org, reviewed, due_on, state_of(due_on, today), (due_on - today).days)


def record(ctx: Ctx, org: Organization, *, outcome: str, note: str | None,
           reviewed_on: date | None = None) -> AnnualReview:
    """A review of `org`; the next one falls due a year after `reviewed_on` (today)."""
    user = ctx.user
    if user is not None and (user.role not in ("channel_manager", "admin")
                             or not branches.may_see_org(user, org)):
        raise Forbidden(_l("Only the channel managers of the partner's branch record its "
                           "annual review."))
    if org.is_bank or org.status != OrgStatus.active.value:
        raise StateConflict(_l("Only an active partner has an annual review."))
    today = bank_today()
    errors = {}
    if outcome not in OUTCOMES:
        errors["outcome"] = _l("Choose the outcome of the review.")
    text = (note or "").strip()
    if len(text) < 5:
        errors["note"] = _l("Write what was reviewed and found.")
    elif len(text) > NOTE_MAX:
        errors["note"] = _l("At most %(n)d characters.", n=NOTE_MAX)
    day = reviewed_on or today
    if day > today:
        errors["reviewed_on"] = _l("The review date cannot be in the future.")
    if errors:
        raise ValidationFailed(errors)
    review = AnnualReview(org_id=org.id, reviewed_on=day, outcome=outcome, note=text,
                          reviewed_by_id=user.id if user else None)
    db.session.add(review)
    db.session.flush()
    audit.record(ctx, "annual_review.record", review, org=org.code, outcome=outcome,
                 reviewed_on=day.isoformat())
    return review
