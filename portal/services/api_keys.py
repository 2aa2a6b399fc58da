"""API keys: created for a user (the key acts as that user), shown once, kept as a SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload

from models import ApiKey, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit
from .errors import DomainError, Forbidden, NotFound, ValidationFailed

KEY_PREFIX = "ppk_"
# last_used_at is written at most this often per key: no write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401

    def __init__(self, message=None):
        super().__init__(message if message is not None
                         else _l("A valid API key is required (Authorization: Bearer <key>)."))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create(ctx: Ctx, user: User, name: str | None = None, *,
           rate_limit: str | None = None) -> tuple[ApiKey, str]:
    """A new key acting as `user`; returns the row and the key itself (shown once, never kept).

    A partner administrator creates keys for their own organisation only; bank callers (and
    the CLI, with no user) for anyone.
    """
    if ctx.user is not None and ctx.user.is_partner and (
            ctx.user.role != "partner_admin" or ctx.user.org_id != user.org_id):
        raise Forbidden()
    if not user.active:
        raise ValidationFailed({"user": _l("This user is deactivated.")})
    name = (name or "").strip() or str(_l("API key"))
    if len(name) > 100:
        raise ValidationFailed({"name": _l("At most %(n)d characters.", n=100)})
    key = _new_key()
    row = ApiKey(org_id=user.org_id, user_id=user.id, name=name, prefix=key[:12],
                 key_hash=hash_key(key), rate_limit=rate_limit,
                 created_by_id=ctx.user.id if ctx.user else None, created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    audit.record(ctx, "api_key.create", row, name=name, prefix=row.prefix, acts_as=user.email)
    return row, key


# Built once: on every API call, building the statement cost more than running it.
_BY_HASH = (select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash"))
            .options(joinedload(ApiKey.user).joinedload(User.org)))


def authenticate(key: str | None) -> ApiKey:
    """The active key with this value whose user may still act, or Unauthorized."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise Unauthorized()
    row = db.session.scalar(_BY_HASH, {"key_hash": hash_key(key)})
    if row is None or row.revoked_at is not None:
        raise Unauthorized()
    user = row.user
    # As for logging in: a deactivated user or a terminated organisation cannot act. (A
    # suspended partner can still read; submitting is refused by the intake rules.)
    if not user.active or user.org_id != row.org_id or user.org.status == "terminated":
        raise Unauthorized(_l("This API key's user or organisation is no longer active."))
    return row


def touch(row: ApiKey) -> None:
    """Record use, at most once a minute per key (a conditional UPDATE, no read-modify-write)."""
    now = utcnow()
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(
        update(ApiKey).where(ApiKey.id == row.id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now).execution_options(synchronize_session=False))


def org_keys(org_id: int):
    return (select(ApiKey).where(ApiKey.org_id == org_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc()))


def get_for_org(org_id: int, key_id: int) -> ApiKey:
    row = db.session.get(ApiKey, key_id)
    if row is None or row.org_id != org_id:
        raise NotFound()
    return row


def revoke(ctx: Ctx, row: ApiKey) -> None:
    if ctx.user is not None and ctx.user.is_partner and (
            ctx.user.role != "partner_admin" or ctx.user.org_id != row.org_id):
        raise NotFound()
    if row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    row.revoked_by_id = ctx.user.id if ctx.user else None
    db.session.flush()
    audit.record(ctx, "api_key.revoke", row, prefix=row.prefix)
