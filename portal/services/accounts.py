"""Organisations, users, passwords and server-side login sessions."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import joinedload

from models import (
    BANK_KIND,
    BANK_ROLES,
    PARTNER_ROLES,
    Organization,
    OrgStatus,
    PartnerType,
    Role,
    User,
    UserSession,
    utcnow,
)
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, branches, mfa, throttle
from .errors import Forbidden, ValidationFailed

MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verifying against this keeps the time of a failed login the same for unknown e-mails.
_DUMMY_HASH = _hasher.hash("not-a-real-password-ever")
ORG_CODE = re.compile(r"^[A-Z0-9_]{2,32}$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ValidationFailed(
            {"password": _l("A password needs at least %(n)d characters.", n=MIN_PASSWORD)}
        )


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def normalise_email(email: str) -> str:
    try:
        # Bank intranets use internal mail domains: no check that the domain is public.
        return validate_email(email, check_deliverability=False, globally_deliverable=False,
                              test_environment=current_app.config.get("TESTING", False)
                              ).normalized.lower()
    except EmailNotValidError:
        raise ValidationFailed({"email": _l("Enter a valid e-mail address.")}) from None


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(
        func.lower(User.email) == (email or "").strip().lower()))


def bank_org() -> Organization:
    org = db.session.scalar(select(Organization).where(Organization.kind == BANK_KIND))
    if org is None:
        org = Organization(code="BANK", name="The Bank", kind=BANK_KIND, status="active")
        db.session.add(org)
        db.session.flush()
    return org


def create_org(ctx: Ctx, *, code: str, name: str, kind: str, status: str = "active",
               branch: str | None = None, manager_email: str | None = None,
               contact_name: str | None = None, contact_phone: str | None = None,
               contact_email: str | None = None) -> Organization:
    errors = {}
    code = (code or "").strip().upper()
    if not ORG_CODE.match(code):
        errors["code"] = _l("Use 2-32 capital letters, digits or underscores.")
    elif db.session.scalar(select(Organization.id).where(Organization.code == code)):
        errors["code"] = _l("An organisation with code %(code)s already exists.", code=code)
    if not (name or "").strip():
        errors["name"] = _l("A name is required.")
    if kind not in {t.value for t in PartnerType}:
        errors["kind"] = _l("Unknown partner type.")
    if status not in {s.value for s in OrgStatus}:
        errors["status"] = _l("Unknown status.")
    manager = None
    if manager_email:
        manager = db.session.scalar(select(User).where(User.email == manager_email.strip().lower()))
        if manager is None or manager.role != Role.channel_manager.value:
            errors["manager"] = _l("No channel manager with that e-mail.")
    place = branches.by_code(branch) if branch else None
    if branch and place is None:
        errors["branch"] = _l("No branch with code %(code)s.", code=branch.strip().upper())
    elif ctx.user is not None and not branches.covers(ctx.user, place):
        errors["branch"] = _l("Choose a branch in your own branch's subtree.")
    if manager is not None and "manager" not in errors and not branches.covers(manager, place):
        errors["manager"] = _l("%(name)s works in another branch: choose a channel manager of "
                               "this partner's branch.", name=manager.name)
    if errors:
        raise ValidationFailed(errors)
    org = Organization(code=code, name=name.strip(), kind=kind, status=status,
                       branch_id=place.id if place else None,
                       channel_manager_id=manager.id if manager else None,
                       contact_name=contact_name or None, contact_phone=contact_phone or None,
                       contact_email=contact_email or None)
    db.session.add(org)
    db.session.flush()
    audit.record(ctx, "org.create", org, code=code, kind=kind, status=status,
                 branch=place.code if place else None)
    return org


# The partner's branch and channel manager change together through branches.reassign_org
# (audited as a reassignment).
ORG_FIELDS = ("name", "status", "contact_name", "contact_phone", "contact_email")


def update_org(ctx: Ctx, org: Organization, **changes) -> Organization:
    if org.is_bank:
        raise Forbidden(_l("The bank's own organisation is not edited here."))
    if "status" in changes and changes["status"] not in {s.value for s in OrgStatus}:
        raise ValidationFailed({"status": _l("Unknown status.")})
    if "branch" in changes or "channel_manager_id" in changes:
        place = org.branch
        if "branch" in changes:
            place = branches.by_code(changes["branch"]) if changes["branch"] else None
            if changes["branch"] and place is None:
                raise ValidationFailed({"branch": _l("No branch with code %(code)s.",
                                                     code=changes["branch"])})
        manager = org.channel_manager
        if "channel_manager_id" in changes:
            manager = (db.session.get(User, changes["channel_manager_id"])
                       if changes["channel_manager_id"] else None)
            if changes["channel_manager_id"] and (
                    manager is None or manager.role != Role.channel_manager.value):
                raise ValidationFailed(
                    {"channel_manager_id": _l("No channel manager with that e-mail.")})
        branches.reassign_org(ctx, org, place, manager)
    diff = {}
    for field in ORG_FIELDS:
        if field in changes and getattr(org, field) != (changes[field] or None):
            diff[field] = [getattr(org, field), changes[field] or None]
            setattr(org, field, changes[field] or None)
    if diff:
        audit.record(ctx, "org.update", org, changes=diff)
    return org


def create_user(ctx: Ctx, *, email: str, role: str, org: Organization | None = None,
                name: str | None = None, password: str | None = None,
                one_time: bool = True, branch: str | None = None) -> tuple[User, str | None]:
    """Create a user; returns it with its password. Without `password`: a generated one-time
    password, or (`one_time=False`) none that works until the user sets one by a reset link.
    `branch` (a code) places a bank user in a branch; without it they belong to the province."""
    email = normalise_email(email)
    errors = {}
    place = branches.by_code(branch) if branch else None
    if branch and place is None:
        errors["branch"] = _l("No branch with code %(code)s.", code=branch.strip().upper())
    elif place is not None and role not in BANK_ROLES:
        errors["branch"] = _l("Only the bank's staff belong to a branch.")
    elif ctx.user is not None and role in BANK_ROLES and not branches.covers(ctx.user, place):
        errors["branch"] = _l("Choose a branch in your own branch's subtree.")
    if db.session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = _l("A user with this e-mail already exists.")
    if role not in {r.value for r in Role}:
        errors["role"] = _l("Unknown role.")
    elif role in BANK_ROLES:
        org = org or bank_org()
        if not org.is_bank:
            errors["org"] = _l("Bank roles belong to the bank's organisation.")
    elif org is None or org.is_bank:
        errors["org"] = _l("A partner user needs a partner organisation.")
    if errors:
        raise ValidationFailed(errors)
    if ctx.user is not None and not can_manage_users_of(ctx.user, org, role):
        raise Forbidden(_l("You may not create this user."))
    if password is not None:
        check_password_strength(password)
    user = User(email=email, name=(name or email.split("@")[0]).strip(), role=role, org_id=org.id,
                branch_id=place.id if place else None,
                password_hash="!")  # noqa: S106  # nosec B106  # no hash matches "!"; set_password follows
    db.session.add(user)
    db.session.flush()
    password = set_password(user, password, one_time=password is None and one_time)
    audit.record(ctx, "user.create", user, email=None, role=role, org=org.code,
                 **({"branch": place.code} if place else {}))
    return user, password


def can_manage_users_of(actor: User, org: Organization, role: str | None = None) -> bool:
    if actor.role == Role.admin.value:
        return True
    if actor.role == Role.partner_admin.value:
        return org.id == actor.org_id and (role is None or role in PARTNER_ROLES)
    return False


def set_user_active(ctx: Ctx, user: User, active: bool) -> None:
    if not can_manage_users_of(ctx.user, user.org, user.role):
        raise Forbidden(_l("You may not change this user."))
    if user.id == ctx.user.id:
        raise Forbidden(_l("You cannot deactivate your own account."))
    user.active = active
    if not active:
        end_sessions(user)
    audit.record(ctx, "user.activate" if active else "user.deactivate", user)


def set_password(user: User, password: str | None, *, one_time: bool = False,
                 keep_session: str | None = None) -> str | None:
    """Give the user a password and end their sessions (all but `keep_session`: a self-service
    change continues in the session that made it). `password=None` with `one_time` generates a
    one-time password and returns it; `password=None` without it leaves no usable password
    (the user sets one through a reset link or the CLI). A one-time password must be changed
    at the next login and expires after ONE_TIME_PASSWORD_HOURS if unused."""
    now = utcnow()
    if password is None and one_time:
        password = generate_password()
    secret = password if password is not None else secrets.token_urlsafe(32)
    user.password_hash = hash_password(secret)
    user.password_must_change = password is None or one_time
    if password is None:
        user.password_expires_at = now
    elif one_time:
        user.password_expires_at = now + timedelta(
            hours=current_app.config["ONE_TIME_PASSWORD_HOURS"])
    else:
        user.password_expires_at = None
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None
    end_sessions(user, keep=keep_session)
    return password


class LoginRefused(Exception):
    def __init__(self, message, status: int = 200):
        self.message = message
        self.status = status
        super().__init__(str(message))


# How long failures of an e-mail address with no account are remembered between tries.
UNKNOWN_EMAIL_WINDOW = 24 * 3600


def _lock_refusal(until) -> LoginRefused:
    return LoginRefused(_l("Too many failed attempts. Try again after %(time)s.",
                           time=until.strftime("%H:%M UTC")))


def check_address(ctx: Ctx, limit: str) -> None:
    """The per-address budget of login attempts (every process counts in one place). Call it
    before the request writes anything."""
    amount, seconds = throttle.limit_of(limit)
    if throttle.claim(throttle.key_for("address", ctx.ip or "-"), seconds).count > amount:
        raise LoginRefused(_l("Too many login attempts from your network. Wait a few minutes "
                              "and try again."), status=429)


def _claim_attempt(user: User, now) -> int | None:
    """Claim the attempt before the password is checked, in one statement: attempts sent at
    once each get their own number (the row is written, so they queue on it), and only the first
    `max_failures` of them are checked at all. A read-then-write count let 20 parallel guesses
    through. None while the account is locked."""
    attempt = db.session.execute(
        update(User).where(User.id == user.id,
                           or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(failed_logins=User.failed_logins + 1).returning(User.failed_logins)
        .execution_options(synchronize_session=False)).scalar()
    db.session.expire(user, ["failed_logins", "locked_until"])
    return attempt


def _refuse_if_over(ctx: Ctx, user: User, attempt: int | None, now, max_failures: int,
                    lock_minutes: int, email: str) -> None:
    if attempt is None or attempt > max_failures:
        if attempt is not None:  # over the budget while the lock was being set: lock now
            user.locked_until = now + timedelta(minutes=lock_minutes)
            user.failed_logins = 0
        audit.record(ctx, "login.refused_locked", user, email=email)
        raise _lock_refusal(user.locked_until)


def _count_failure(ctx: Ctx, user: User, attempt: int, now, max_failures: int,
                   lock_minutes: int, email: str, **detail) -> None:
    detail["failures"] = attempt
    if attempt >= max_failures:
        user.locked_until = now + timedelta(minutes=lock_minutes)
        user.failed_logins = 0
        detail["locked_until"] = user.locked_until.isoformat()
    audit.record(ctx, "login.failed", user, email=email, **detail)


def _unknown_email(ctx: Ctx, email: str, password: str, now, max_failures: int,
                   lock_minutes: int) -> None:
    """An address with no account gets the same budget, lock and answers as a real one, so
    the answers do not tell which e-mails have accounts."""
    key = throttle.key_for("account", email)
    claim = throttle.claim(key, UNKNOWN_EMAIL_WINDOW)
    if claim.locked or claim.count > max_failures:
        until = claim.locked_until
        if until is None:
            until = now + timedelta(minutes=lock_minutes)
            throttle.lock(key, until)
        audit.record(ctx, "login.refused_locked", email=email, reason="unknown_email")
        raise _lock_refusal(until)
    _verify(_DUMMY_HASH, password)
    if claim.count >= max_failures:
        throttle.lock(key, now + timedelta(minutes=lock_minutes))
    audit.record(ctx, "login.failed", email=email, reason="unknown_email",
                 failures=claim.count)
    raise LoginRefused(_l("Wrong e-mail or password."))


def authenticate(ctx: Ctx, email: str, password: str, *, max_failures: int,
                 lock_minutes: int) -> User:
    """Check the password, with a strict per-account lock after repeated failures."""
    email = (email or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.email) == email))
    now = utcnow()
    if user is None:
        _unknown_email(ctx, email, password, now, max_failures, lock_minutes)
    attempt = _claim_attempt(user, now)
    _refuse_if_over(ctx, user, attempt, now, max_failures, lock_minutes, email)
    if not _verify(user.password_hash, password) or not user.active:
        _count_failure(ctx, user, attempt, now, max_failures, lock_minutes, email)
        raise LoginRefused(_l("Wrong e-mail or password."))
    if not user.org.is_bank and user.org.status == OrgStatus.terminated.value:
        audit.record(ctx, "login.failed", user, email=email, reason="org_terminated")
        raise LoginRefused(_l("Your organisation's access has ended."))
    if user.password_expires_at is not None and user.password_expires_at <= now:
        audit.record(ctx, "login.failed", user, email=email, reason="password_expired")
        raise LoginRefused(_l("This one-time password has expired. Ask for a new one."))
    if user.password_must_change:
        # A one-time password: this first use is its last. The session it opens may only
        # choose a new password.
        user.password_expires_at = now
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def check_second_factor(ctx: Ctx, user: User, code: str, *, max_failures: int,
                        lock_minutes: int) -> None:
    """The TOTP (or recovery) code after the password; wrong codes count toward the lock."""
    now = utcnow()
    attempt = _claim_attempt(user, now)
    _refuse_if_over(ctx, user, attempt, now, max_failures, lock_minutes, user.email)
    if not mfa.accept_code(user, code):
        _count_failure(ctx, user, attempt, now, max_failures, lock_minutes, user.email,
                       reason="second_factor")
        raise LoginRefused(_l("That code is not right, or was already used."))
    user.failed_logins = 0
    user.last_login_at = now


def check_identity(ctx: Ctx, user: User, password: str, code: str | None, *,
                   max_failures: int, lock_minutes: int, with_code: bool = True) -> None:
    """A logged-in user proves again who they are (re-authentication; the current password
    before a change): the password, and the second factor when enrolled and `with_code`.
    Failures count toward the same lock as at login."""
    now = utcnow()
    attempt = _claim_attempt(user, now)
    _refuse_if_over(ctx, user, attempt, now, max_failures, lock_minutes, user.email)
    ok = _verify(user.password_hash, password)
    if ok and with_code and user.has_totp:
        ok = mfa.accept_code(user, code or "")
    if not ok:
        _count_failure(ctx, user, attempt, now, max_failures, lock_minutes, user.email,
                       reason="reauthentication")
        raise LoginRefused(_l("Wrong password or code."))
    user.failed_logins = 0


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password or "")
    except (VerificationError, InvalidHashError):
        return False


def start_session(ctx: Ctx, user: User, user_agent: str | None = None) -> UserSession:
    session = UserSession(id=secrets.token_urlsafe(32), user_id=user.id, ip=ctx.ip,
                          user_agent=(user_agent or "")[:300], authenticated_at=utcnow())
    db.session.add(session)
    user.session_token = session.id
    user.live_session = session
    # The request is not logged in yet (ctx.user is None): the entry names who just logged in.
    audit.record(Ctx(user=user, ip=ctx.ip), "login", user)
    return session


# The user with the session, their organisation (the header names it) and their branch (every
# bank list is scoped by it), in one statement built once: every logged-in request starts here,
# and building the statement (its cache key) cost as much as running it (issue 15).
_SESSION_WITH_USER = select(UserSession).where(UserSession.id == bindparam("token")).options(
    joinedload(UserSession.user).joinedload(User.org),
    joinedload(UserSession.user).joinedload(User.branch))


def load_session(token: str, idle_timeout: timedelta,
                 max_age: timedelta | None = None) -> User | None:
    """The user of a live session, or None: logged out, idle too long, older than its absolute
    lifetime, or deactivated."""
    if not token:
        return None
    session = db.session.scalar(_SESSION_WITH_USER, {"token": token})
    if session is None:
        return None
    now = utcnow()
    if (now - session.last_seen_at > idle_timeout or not session.user.active
            or (max_age is not None and now - session.created_at > max_age)):
        db.session.delete(session)
        return None
    # Touch at most once a minute so reading pages does not write on every request.
    if now - session.last_seen_at > timedelta(seconds=60):
        session.last_seen_at = now
    session.user.session_token = token
    session.user.live_session = session
    return session.user


def reauthenticated(ctx: Ctx, user: User) -> None:
    """The session's proof of identity is recent again (after `check_identity`)."""
    if user.live_session is not None:
        user.live_session.authenticated_at = utcnow()
    audit.record(ctx, "reauthenticate", user)


def end_session(ctx: Ctx, token: str | None) -> None:
    if token:
        db.session.execute(UserSession.__table__.delete().where(UserSession.id == token))
    if ctx.user:
        audit.record(ctx, "logout", ctx.user)


def end_sessions(user: User, keep: str | None = None) -> int:
    """End every session of the user (but `keep`): a password change or a deactivation."""
    query = UserSession.__table__.delete().where(UserSession.user_id == user.id)
    if keep:
        query = query.where(UserSession.id != keep)
    return db.session.execute(query).rowcount
