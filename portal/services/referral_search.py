"""Finding referrals by what a person types in a list's search box, through indexes only.

What the box understands, in this order:
- a whole national ID (18 characters, a valid check digit): the buyer's keyed hash;
- a whole mainland mobile number: the mobile's keyed hash (`referral.mobile_hash`);
- otherwise the start of the buyer's name or of the partner's reference (their normalised
  `*_key` columns, compared as a prefix range an index answers), a referral number, and for bank
  staff a partner whose name or code contains the text (the small organisation table first,
  then `org_id IN (...)`).

Never `LIKE '%…%'` over the referrals: at a million rows that reads the whole table. The cost is
that a name is found by its beginning (the surname, or the whole name), not by a character in
its middle. Neither the ID nor the mobile is ever stored or compared in clear.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from models import Organization, Referral

from ..extensions import db
from . import partners, pii

# Above every character a key may hold: `key >= q AND key < q + TOP` is "starts with q".
_TOP = "\U0010ffff"
# Partners a search's text may name; a text that matches more is too vague to be a partner.
PARTNER_MATCHES = 50


def search_key(value: str | None) -> str | None:
    """The form a name or reference is stored and searched in: no spaces, case folded."""
    if value is None:
        return None
    return "".join(value.split()).casefold()[:100]


def stored_keys(*, buyer_name: str, external_ref: str | None, mobile: str | None) -> dict:
    """The search columns of a referral being written (every writer of these fields uses it)."""
    return {"buyer_name_key": search_key(buyer_name),
            "external_ref_key": search_key(external_ref),
            "mobile_hash": pii.mobile_hash(mobile) if mobile else None}


def _national_id(text: str) -> str | None:
    """A whole national ID (check digit and birth date as stdnum's cn.ric reads them), or None.
    No age limits here: an officer looks up whoever the bank holds."""
    raw = text.upper().replace(" ", "")
    if len(raw) != 18 or not raw[:17].isdigit():
        return None
    try:
        if raw[17] != ric.calc_check_digit(raw):
            return None
        ric.get_birth_date(raw)
    except StdnumError:
        return None
    return raw


def _mobile(text: str) -> str | None:
    digits = text.replace(" ", "").replace("-", "")
    if not (digits.lstrip("+").isdigit() and 11 <= len(digits) <= 14):
        return None
    try:
        return pii.normalise_mobile(digits)
    except ValueError:
        return None


def _prefix(column, key: str) -> ColumnElement[bool]:
    return (column >= key) & (column < key + _TOP)


def partner_ids(text: str, limit: int = PARTNER_MATCHES) -> list[int]:
    """Partners whose name or code contains `text` (the organisation table is small)."""
    return list(db.session.scalars(
        select(Organization.id).where(partners.named(text)).order_by(Organization.code)
        .limit(limit + 1)))


def matching(q: str | None, *, partners: bool = False) -> ColumnElement[bool] | None:
    """The condition for a search box's text, or None when there is nothing to search.
    `partners`: also referrals of a partner the text names (bank staff's lists)."""
    text = (q or "").strip()[:100]
    if not text:
        return None
    national_id = _national_id(text)
    if national_id is not None:
        return Referral.national_id_hash.in_(set(pii.id_hashes(national_id)))
    mobile = _mobile(text)
    if mobile is not None:
        return Referral.mobile_hash.in_(set(pii.mobile_hashes(mobile)))
    key = search_key(text)
    terms = [_prefix(Referral.buyer_name_key, key), _prefix(Referral.external_ref_key, key)]
    if text.isascii() and text.isdigit() and len(text) <= 9:
        terms.append(Referral.id == int(text))
    if partners:
        ids = partner_ids(text)
        if 0 < len(ids) <= PARTNER_MATCHES:
            terms.append(Referral.org_id.in_(ids))
    return or_(*terms) if terms else false()


def backfill_batch(connection, after_id: int, limit: int = 2000) -> int | None:
    """Fill the search columns of the referrals after `after_id` (up to `limit`), on
    `connection` (the migration's, or the session's); the last id done, None when none were left.

    The mobile's hash needs the key, which only the application has: migration 0015 runs this
    inside `flask db upgrade` (the app's context), and `flask --app wsgi pii backfill-search`
    runs it again on demand (after a restore of an older backup, say). A mobile that cannot be
    read (anonymised, or written under a key since dropped) keeps no hash."""
    from sqlalchemy import bindparam, update

    table = Referral.__table__
    rows = connection.execute(
        select(table.c.id, table.c.buyer_name, table.c.external_ref, table.c.mobile_enc,
               table.c.anonymised_at)
        .where(table.c.id > after_id).order_by(table.c.id).limit(limit)).all()
    if not rows:
        return None
    changes = []
    for row in rows:
        mobile = None
        if row.mobile_enc and row.anonymised_at is None:
            try:
                mobile = pii.decrypt(row.mobile_enc)
            except Exception:  # noqa: BLE001  (any undecryptable value: no hash)
                mobile = None
        keys = stored_keys(buyer_name=row.buyer_name, external_ref=row.external_ref,
                           mobile=mobile)
        if row.anonymised_at is not None:
            keys["buyer_name_key"] = None
        changes.append({"row_id": row.id, **{f"k_{k}": v for k, v in keys.items()}})
    connection.execute(
        update(table).where(table.c.id == bindparam("row_id")).values(
            buyer_name_key=bindparam("k_buyer_name_key"),
            external_ref_key=bindparam("k_external_ref_key"),
            mobile_hash=bindparam("k_mobile_hash")),
        changes)
    return rows[-1].id
