"""Passwords after creation: a user changes their own; a generated one-time password is
replaced at first login; an administrator's reset sends a single-use link by e-mail (or, without
mail, the CLI prints a one-time password). No administrator ever sees a password."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from models import PasswordResetToken, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, accounts, audit, notifications
from .errors import Forbidden, ValidationFailed


def mail_configured() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def _check_new(password: str, confirm: str) -> None:
    if (password or "") != (confirm or ""):
        raise ValidationFailed({"confirm": _l("The two passwords are not the same.")})
    try:
        accounts.check_password_strength(password)
    except ValidationFailed as exc:
        raise ValidationFailed({"new_password": exc.fields["password"]}) from None


def change_own(ctx: Ctx, user: User, *, current: str, new: str, confirm: str,
               keep_session: str | None, max_failures: int, lock_minutes: int) -> None:
    """Self-service: the current password, then the new one twice. A wrong current password
    raises `accounts.LoginRefused` and counts toward the login lock (a stolen session cannot
    guess it freely). The other sessions end, this one continues."""
    _check_new(new, confirm)
    if new == current:
        raise ValidationFailed({"new_password": _l("Choose a password you have not used here.")})
    accounts.check_identity(ctx, user, current, None, max_failures=max_failures,
                            lock_minutes=lock_minutes, with_code=False)
    accounts.set_password(user, new, keep_session=keep_session)
    audit.record(ctx, "user.password_change", user)


def choose_after_one_time(ctx: Ctx, user: User, *, new: str, confirm: str,
                          keep_session: str | None) -> None:
    """The forced change after logging in with a one-time password (which proved who it is)."""
    if not user.password_must_change:
        raise Forbidden(_l("Change your password from your account page."))
    _check_new(new, confirm)
    accounts.set_password(user, new, keep_session=keep_session)
    audit.record(ctx, "user.password_change", user, after="one_time_password")


def issue_one_time(ctx: Ctx, user: User) -> str:
    """A new one-time password for the CLI to print; every session of the user ends."""
    password = accounts.set_password(user, None, one_time=True)
    audit.record(ctx, "user.password_reset", user, via="cli")
    return password


# --- reset links -------------------------------------------------------------------------------

def token_hash(raw: str) -> str:
    return hashlib.sha256((raw or "").encode()).hexdigest()


def start_reset(ctx: Ctx, user: User, *, invitation: bool = False) -> str:
    """An administrator's (or partner administrator's) reset: the user's password and sessions
    stop working and a single-use link is made; returns the link's token, for the e-mail only.
    Refused without mail: the administrator is told to use the CLI."""
    if ctx.user is not None and not accounts.can_manage_users_of(ctx.user, user.org, user.role):
        raise Forbidden(_l("You may not change this user."))
    if not mail_configured():
        raise Forbidden(_l("E-mail is not configured, so no reset link can be sent. A bank "
                           "administrator gives a one-time password at the server: flask --app "
                           "wsgi users reset-password --email %(email)s", email=user.email))
    if not invitation:
        accounts.set_password(user, None)
    raw = secrets.token_urlsafe(32)
    # Earlier links of this user stop working: only the newest one counts.
    db.session.execute(delete(PasswordResetToken).where(PasswordResetToken.user_id == user.id))
    hours = current_app.config["PASSWORD_RESET_LINK_HOURS"]
    db.session.add(PasswordResetToken(user_id=user.id, token_hash=token_hash(raw),
                                      expires_at=utcnow() + timedelta(hours=hours)))
    db.session.flush()
    audit.record(ctx, "user.invite" if invitation else "user.password_reset", user, via="email")
    return raw


def send_reset_link(user: User, link: str, *, invitation: bool = False) -> None:
    """Sent now, inside the request: if the mail server refuses, the reset is undone and the
    administrator is told. (The link is not queued: it would sit in clear in the outbox.)"""
    hours = current_app.config["PASSWORD_RESET_LINK_HOURS"]
    with force_locale(notifications.locale_of(user)):
        subject = (_("Your account on the partner portal") if invitation
                   else _("Reset your partner portal password"))
        body = [_("Hello %(name)s,", name=user.name), "",
                _("An account was opened for you on the partner portal.") if invitation
                else _("An administrator has reset your password on the partner portal."),
                _("Choose your password here (the link works once, for %(hours)d hours):",
                  hours=hours), "", link, "",
                _("If you did not expect this e-mail, tell your administrator.")]
    notifications.send_now(user.name, user.email, subject, body)


def user_for_token(raw: str) -> User | None:
    """Whose link this is, if it can still be used (the page reads; nothing is spent)."""
    token = db.session.scalar(select(PasswordResetToken).where(
        PasswordResetToken.token_hash == token_hash(raw)))
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        return None
    return token.user if token.user.active else None


def reset_with_token(ctx: Ctx, raw: str, *, new: str, confirm: str) -> User:
    _check_new(new, confirm)
    now = utcnow()
    # Spent in one statement: two submissions of one link cannot both set a password.
    user_id = db.session.execute(
        update(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash(raw),
                                         PasswordResetToken.used_at.is_(None),
                                         PasswordResetToken.expires_at > now)
        .values(used_at=now).returning(PasswordResetToken.user_id)
        .execution_options(synchronize_session=False)).scalar()
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.active:
        raise Forbidden(_l("This link has expired or was already used. Ask for a new one."))
    accounts.set_password(user, new)
    audit.record(Ctx(user=user, ip=ctx.ip), "user.password_change", user, after="reset_link")
    return user


def prune(now) -> int:
    """Forget links that were used or have expired (housekeeping)."""
    return db.session.execute(delete(PasswordResetToken).where(
        (PasswordResetToken.expires_at <= now) | PasswordResetToken.used_at.is_not(None))
    ).rowcount
