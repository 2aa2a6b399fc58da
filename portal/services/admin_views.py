"""Read-side queries for the admin face: dashboard counts, organisation, user and audit lists."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Select, func, or_, select, true
from sqlalchemy.orm import selectinload

from models import BANK_ROLES, AuditEntry, ImportBatch, Organization, ReferralTally, Role, User

from ..extensions import db
from . import audit, branches, referral_counts
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
        "referrals_by_status": referral_counts.by_status(
            branches.in_scope(viewer, ReferralTally.org_id)),
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


def _user_in_scope(viewer: User | None):
    # A partner's users belong to the partner: another branch's are not this admin's to list
    # or act on. The bank's own staff are not a partner's objects.
    return or_(User.role.in_(BANK_ROLES), branches.in_scope(viewer, User.org_id))


def user_search(*, q: str | None = None, role: str | None = None,
                org_id: int | None = None, viewer: User | None = None) -> Select:
    query = select(User).where(_user_in_scope(viewer)).options(selectinload(User.org))
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        query = query.where(or_(User.email.ilike(like), User.name.ilike(like)))
    if role:
        query = query.where(User.role == role)
    if org_id:
        query = query.where(User.org_id == org_id)
    return query.order_by(User.email)


def visible_user(user_id: int, viewer: User | None) -> User | None:
    """The user with this id if `viewer` may see them (else None: not found)."""
    return db.session.scalar(select(User).where(User.id == user_id, _user_in_scope(viewer)))


def _import_in_scope(viewer: User | None):
    # An import names partners of any branch; a branch's administrator runs it for their own
    # subtree's partners only (the rest are refused as unknown), so they see the jobs their
    # subtree's staff started. The province's administrators (and the CLI's jobs) see all.
    if branches.scope_branch(viewer) is None:
        return true()
    return ImportBatch.user_id.in_(select(User.id).where(branches.staff_in_scope(viewer)))


def import_jobs(viewer: User | None) -> Select:
    return (select(ImportBatch).where(_import_in_scope(viewer))
            .order_by(ImportBatch.id.desc()))


def visible_import(batch_id: int, viewer: User | None) -> ImportBatch | None:
    return db.session.scalar(select(ImportBatch).where(ImportBatch.id == batch_id,
                                                       _import_in_scope(viewer)))


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
