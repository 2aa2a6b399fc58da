"""Buyers' personal data: validation, the keyed hash for matching, encryption and masking."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from functools import lru_cache

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from portal.i18n import lazy_gettext as _l

MIN_AGE, MAX_AGE = 18, 75


def normalise_national_id(value: str, today: date | None = None) -> str:
    """Return the canonical 18-character ID or raise ValueError with a readable message."""
    raw = (value or "").strip().upper().replace(" ", "")
    if len(raw) != 18:
        raise ValueError(_l("A national ID has 18 characters."))
    # Check digit and birth date, as stdnum checks them. Not the birth place: stdnum's county
    # list is old and refuses real IDs (Shanghai Pudong's 310115, for one).
    if not raw[:17].isdigit() or raw[17] != ric.calc_check_digit(raw):
        raise ValueError(_l("This national ID is not valid (check digit or birth date)."))
    try:
        born = ric.get_birth_date(raw)
    except StdnumError:
        raise ValueError(_l("This national ID is not valid (check digit or birth date).")) from None
    number = raw
    today = today or date.today()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_AGE <= age <= MAX_AGE:
        raise ValueError(_l("The buyer must be between 18 and 75 years old."))
    return number


_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE,
                 phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def normalise_mobile(value: str) -> str:
    raw = (value or "").strip().replace(" ", "").replace("-", "")
    if len(raw) == 11 and raw[0] == "1" and raw.isascii() and raw.isdigit():
        # The usual form, read without the parser (a third of an import row's cost): for these
        # digits parse() gives country code 86 and the same national number.
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(raw))
    else:
        try:
            parsed = phonenumbers.parse(raw, "CN")
        except phonenumbers.NumberParseException:
            raise ValueError(_l("Enter an 11-digit mainland China mobile number.")) from None
    national = str(parsed.national_number)
    # number_type is UNKNOWN for a number that is not valid: no separate is_valid_number.
    if (parsed.country_code != 86 or len(national) != 11
            or phonenumbers.number_type(parsed) not in _MOBILE_TYPES):
        raise ValueError(_l("Enter an 11-digit mainland China mobile number."))
    return national


# --- keys: the keyed hash and encryption, and their rotation ---------------------------------
#
# While a rotation runs (ID_HASH_KEY_NEXT / PII_KEY_NEXT set, docs/operations.md), new data is
# written under the next keys, reads try the next key and then the current one, and duplicate
# checks look for a buyer under both hashes; `pii rotate-key` moves the existing rows over. Then
# the next keys become the keys and the old ones are dropped.

def _keyed_hash(key: str, national_id: str) -> str:
    return hmac.new(key.encode(), b"national-id:" + national_id.encode(),
                    hashlib.sha256).hexdigest()


def id_hash(national_id: str) -> str:
    """The hash new data is stored with: the next key's during a rotation."""
    config = current_app.config
    return _keyed_hash(config["ID_HASH_KEY_NEXT"] or config["ID_HASH_KEY"], national_id)


def id_hashes(national_id: str) -> tuple[str, str]:
    """Every hash this buyer may be stored under now: (stored hash, the other key's hash during
    a rotation, else the stored hash again)."""
    config = current_app.config
    stored = id_hash(national_id)
    if not config["ID_HASH_KEY_NEXT"]:
        return stored, stored
    return stored, _keyed_hash(config["ID_HASH_KEY"], national_id)


def _mobile_hash(key: str, mobile: str) -> str:
    return hmac.new(key.encode(), b"mobile:" + mobile.encode(), hashlib.sha256).hexdigest()


def mobile_hash(mobile: str) -> str:
    """The keyed hash of a normalised mobile number (under the ID hash key, like the ID's)."""
    config = current_app.config
    return _mobile_hash(config["ID_HASH_KEY_NEXT"] or config["ID_HASH_KEY"], mobile)


def mobile_hashes(mobile: str) -> tuple[str, str]:
    """Every hash this mobile may be stored under now (as id_hashes)."""
    config = current_app.config
    stored = mobile_hash(mobile)
    if not config["ID_HASH_KEY_NEXT"]:
        return stored, stored
    return stored, _mobile_hash(config["ID_HASH_KEY"], mobile)


def rotating() -> bool:
    return bool(current_app.config["ID_HASH_KEY_NEXT"] or current_app.config["PII_KEY_NEXT"])


@lru_cache(maxsize=8)
def _fernet_of(secret: str) -> Fernet:
    key = hmac.new(secret.encode(), b"pii-encryption-v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _cipher() -> MultiFernet:
    config = current_app.config
    keys = [config["PII_KEY_NEXT"], config["PII_KEY"]] if config["PII_KEY_NEXT"] else [
        config["PII_KEY"]]
    return MultiFernet([_fernet_of(k) for k in keys])


def encrypt(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    return _cipher().decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """The same value under the key new data is written with."""
    return _cipher().rotate(token.encode()).decode()


def under_newest_key(token: str) -> bool:
    config = current_app.config
    try:
        _fernet_of(config["PII_KEY_NEXT"] or config["PII_KEY"]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def mask_national_id(national_id: str) -> str:
    return national_id[:3] + "*" * 11 + national_id[-4:]


def mask_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:]
