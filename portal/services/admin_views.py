"""Read-side queries for the admin face: dashboard counts, organisation, user and audit lists."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from models import AuditEntry, Organization, Referral, Role, User

from ..extensions import db
from . import audit, branches
from .audit import checks as audit_checks


def _counts(column, query: Select) -> dict[str, int]:
    return {key: n for key, n in db.session.execute(query.group_by(column)).all()}


def dashboard(recent: int = 10, viewer: User | None = None) -> dict:
    """Counts for the admin's home page; partners and referrals of the viewer's branch only."""
    return {
        "orgs_by_status": _counts(
            Organization.status,
            select(Organization.status, func.count(Organization.id))
            .where(Organization.is_partner, branches.in_scope(viewer, Organization.id))),
        "users_by_role": _counts(User.role, select(User.role, func.count(User.id))),
        "referrals_by_status": _counts(Referral.status,
                                       select(Referral.status, func.count(Referral.id))
                                       .where(branches.in_scope(viewer, Referral.org_id))),
        "recent_audit": list(db.session.scalars(
            select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(recent))),
    }


def org_search(*, q: str | None = None, kind: str | None = None,
               status: str | None = None, viewer: User | None = None) -> Select:
    query = select(Organization).where(
        Organization.is_partner, branches.in_scope(viewer, Organization.id)).options(
        selectinload(Organization.channel_manager), selectinload(Organization.branch))
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        query = query.where(or_(Organization.code.ilike(like), Organization.name.ilike(like)))
    if kind:
        query = query.where(Organization.kind == kind)
    if status:
        query = query.where(Organization.status == status)
    return query.order_by(Organization.code)



def channel_managers() -> list[User]:
    return list(db.session.scalars(
        select(User).where(User.role == Role.channel_manager.value).order_by(User.name)))


def org_users(org: Organization) -> list[User]:
    return list(db.session.scalars(
        select(User).where(User.org_id == org.id).order_by(User.role, User.email)))


def user_search(*, q: str | None = None, role: str | None = None,
                org_id: int | None = None) -> Select:
    query = select(User).options(selectinload(User.org))
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        query = query.where(or_(User.email.ilike(like), User.name.ilike(like)))
    if role:
        query = query.where(User.role == role)
    if org_id:
        query = query.where(User.org_id == org_id)
    return query.order_by(User.email)


def audit_search(*, action: str | None = None, actor_email: str | None = None,
                 target_type: str | None = None, target_id: str | None = None,
                 since: datetime | None = None, until: datetime | None = None) -> Select:
    """The audit log, newest first. `since` is inclusive and `until` exclusive. The actor is
    matched on the whole e-mail address (what ix_audit_actor can answer at a million rows)."""
    query = select(AuditEntry).options(selectinload(AuditEntry.actor))
    if action:
        query = query.where(AuditEntry.action == action)
    if actor_email and actor_email.strip():
        query = query.where(AuditEntry.actor_email == actor_email.strip().lower())
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id and target_id.strip():
        query = query.where(AuditEntry.target_id == target_id.strip())
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def audit_actions() -> tuple[str, ...]:
    # A fixed list: asking the table for its distinct actions scans all of it on every view.
    return audit.ACTIONS


def audit_target_types() -> tuple[str, ...]:
    return audit.TARGET_TYPES


def audit_chain_state() -> audit_checks.ChainState:
    """The chain as the last recorded verification left it (no walk here)."""
    return audit_checks.state()


def compact_json(detail) -> str:
    if not detail:
        return ""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)
