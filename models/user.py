from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import UTCDateTime, utcnow
from .branch import Branch
from .org import Organization


class Role(str, enum.Enum):
    partner_agent = "partner_agent"
    partner_admin = "partner_admin"
    credit_officer = "credit_officer"
    channel_manager = "channel_manager"
    admin = "admin"


PARTNER_ROLES = frozenset({Role.partner_agent.value, Role.partner_admin.value})
BANK_ROLES = frozenset({Role.credit_officer.value, Role.channel_manager.value, Role.admin.value})


class RoleKinds:
    """Which side a holder of `role` is on: a partner's user or the bank's staff (User, and the
    scope a statement is kept for: services/branches.Scope)."""

    @property
    def is_partner(self) -> bool:
        return self.role in PARTNER_ROLES

    @property
    def is_bank(self) -> bool:
        return self.role in BANK_ROLES


class User(RoleKinds, UserMixin, db.Model):
    __tablename__ = "user"

    # Set when the user is loaded from a server-side session; Flask-Login keeps it in the cookie.
    session_token = None
    live_session = None  # the UserSession row behind the request, when loaded from one

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    # Bank staff: the branch whose subtree they see and act on (None: the province, everything).
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(10))
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A generated (one-time) password: the next login may only choose a new one. Its first use
    # expires it (expires_at is set to that moment), and it expires unused after a lifetime.
    password_must_change: Mapped[bool] = mapped_column(default=False)
    password_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # TOTP second factor: the secret encrypted (as buyers' data is); enabled once confirmed with
    # a code. The last accepted time step: a code is never accepted twice.
    totp_secret: Mapped[str | None] = mapped_column(String(300))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    org: Mapped[Organization] = relationship(foreign_keys=[org_id])
    branch: Mapped[Branch | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def has_totp(self) -> bool:
        return self.totp_enabled_at is not None

    def get_id(self) -> str | None:
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class UserSession(db.Model):
    """A server-side login session: logout deletes it, so a replayed cookie finds nothing."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the user last proved who they are in this session (login or re-authentication):
    # sensitive actions need it to be recent.
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))

    user: Mapped[User] = relationship()


class RecoveryCode(db.Model):
    """A single-use code that stands in for a TOTP code; only its hash is kept."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PasswordResetToken(db.Model):
    """A password reset link sent by e-mail: kept hashed, expiring, used once."""

    __tablename__ = "password_reset_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class Throttle(db.Model):
    """A shared counter for login throttling when there is no Redis: every process reads and
    writes the same row (see portal/services/throttle.py)."""

    __tablename__ = "throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
