"""The TOTP second factor (RFC 6238, through pyotp): enrolment with a QR code drawn on the
server, codes accepted once, and single-use recovery codes kept only as hashes."""

from __future__ import annotations

import hashlib
import secrets

import pyotp
import qrcode
import qrcode.image.svg
from markupsafe import Markup
from sqlalchemy import delete, func, or_, select, update

from models import RecoveryCode, User, utcnow
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, pii
from .errors import Forbidden, StateConflict, ValidationFailed

ISSUER = "Partner Portal"
RECOVERY_CODES = 10
# A code of the previous or next 30-second step is accepted too (clocks drift).
DRIFT_STEPS = 1


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def _secret(user: User) -> str | None:
    return pii.decrypt(user.totp_secret) if user.totp_secret else None


def required_for(user: User, required_roles) -> bool:
    return user.role in required_roles


def must_enrol(user: User, required_roles) -> bool:
    return required_for(user, required_roles) and not user.has_totp


# --- enrolment ---------------------------------------------------------------------------------

def begin(ctx: Ctx, user: User) -> None:
    """A new secret, not in force until a code from it is confirmed."""
    if user.has_totp:
        raise StateConflict(_l("Two-step login is already on."))
    user.totp_secret = pii.encrypt(pyotp.random_base32())
    user.totp_last_step = None
    audit.record(ctx, "mfa.enrolment_started", user)


def provisioning(user: User) -> dict | None:
    """What the enrolment page shows: the secret, and its otpauth:// URI as an SVG QR code
    (drawn here: no request leaves the server, no script on the page)."""
    secret = _secret(user)
    if secret is None or user.has_totp:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg = image.to_string(encoding="unicode")
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return {"secret": grouped, "uri": uri, "svg": Markup(svg)}  # noqa: S704  # nosec B704  # the SVG is drawn here


def confirm(ctx: Ctx, user: User, code: str) -> list[str]:
    """Turn the factor on with a code from the new secret; returns the recovery codes, to be
    shown this once."""
    if user.has_totp or not user.totp_secret:
        raise StateConflict(_l("Start the set-up again."))
    if not _accept_totp(user, code):
        raise ValidationFailed({"code": _l("That code is not right. Check the app and the "
                                           "phone's clock, and enter the current code.")})
    user.totp_enabled_at = utcnow()
    audit.record(ctx, "mfa.enabled", user)
    return _new_recovery_codes(user)


def regenerate_recovery_codes(ctx: Ctx, user: User) -> list[str]:
    if not user.has_totp:
        raise StateConflict(_l("Two-step login is off."))
    audit.record(ctx, "mfa.recovery_codes_renewed", user)
    return _new_recovery_codes(user)


def remove(ctx: Ctx, user: User, required_roles) -> None:
    if required_for(user, required_roles):
        raise Forbidden(_l("Your role must log in with a second step; it cannot be turned off."))
    disable(user)
    audit.record(ctx, "mfa.disabled", user)


def disable(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(8).upper()  # 64 bits: guessing is hopeless, a fast hash will do
        code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash(code)))
        codes.append(code)
    db.session.flush()
    return codes


# --- checking a code ---------------------------------------------------------------------------

def accept_code(user: User, code: str) -> bool:
    """A current TOTP code not used before, or an unused recovery code (used up by this)."""
    if not user.has_totp:
        return False
    if len(_normalise(code)) > 8:
        return _accept_recovery(user, code)
    return _accept_totp(user, code)


def _accept_totp(user: User, code: str) -> bool:
    secret = _secret(user)
    code = _normalise(code)
    if not secret or len(code) != 6 or not code.isdigit():
        return False
    totp = pyotp.TOTP(secret)
    now = utcnow()
    step = totp.timecode(now)
    matched = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        candidate = step + offset
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            matched = candidate
    if matched is None:
        return False
    # Claim the step in one statement: a code (or an earlier one) seen once is never accepted
    # again, even by two requests at the same moment.
    claimed = db.session.execute(
        update(User).where(User.id == user.id,
                           or_(User.totp_last_step.is_(None), User.totp_last_step < matched))
        .values(totp_last_step=matched).execution_options(synchronize_session=False)).rowcount
    db.session.expire(user, ["totp_last_step"])
    return claimed == 1


def _accept_recovery(user: User, code: str) -> bool:
    used = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                   RecoveryCode.code_hash == _hash(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if used:
        audit.record(Ctx(user=user), "mfa.recovery_code_used", user)
    return used == 1

