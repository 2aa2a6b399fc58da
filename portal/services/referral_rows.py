"""A page of referrals for the API's list, read as plain rows.

Loading a page of 25 referrals as model objects, with their partner, officer, site, decision,
items and files, cost twice to three times reading the same values as rows (1.4 ms a page on
both databases; issue 15). Each row is handed on as a view that reads as its model does for
what the API shapes of it: blueprints/api/routes.py `_referral_fields`, services/conditions.py
and services/disclosure.py take either, so the rule of what a partner reads stays in one place.
A view carries its model's `__table__`: disclosure.partner_text still refuses an internal column,
and the internal columns are not even selected.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import aliased

from models import Document, LoanDecision, Organization, PartnerSite, Referral, Stipulation, User

from ..extensions import db


class ReferralView(SimpleNamespace):
    __table__ = Referral.__table__


class ItemView(SimpleNamespace):
    __table__ = Stipulation.__table__


class FileView(SimpleNamespace):
    __table__ = Document.__table__


class DecisionView(SimpleNamespace):
    __table__ = LoanDecision.__table__


class SiteView(SimpleNamespace):
    __table__ = PartnerSite.__table__


R, S, D, L = Referral, Stipulation, Document, LoanDecision
_REFERRAL = (R.id, R.org_id, R.external_ref, R.product_code, R.status, R.customer_class,
             R.buyer_name, R.national_id_masked, R.mobile_masked, R.amount, R.term_months,
             R.submitted_at, R.status_changed_at, R.clock, R.decline_reason, R.version,
             R.decided_at, R.site_id, R.assigned_to_id)
# Aliased: a list filtered by partner joins the organisation table already.
_PARTNER, _STAFF = aliased(Organization), aliased(User)
_ORG_CODE = select(_PARTNER.code).where(_PARTNER.id == R.org_id).scalar_subquery()
_OFFICER = select(_STAFF.name).where(_STAFF.id == R.assigned_to_id).scalar_subquery()
_ITEM = (S.id, S.referral_id, S.kind, S.label, S.requested, S.status, S.note)
_FILE = (D.id, D.stipulation_id, D.kind, D.filename, D.status, D.uploaded_at, D.review_reason,
         D.reviewed_at)
_DECISION = (L.referral_id, L.approved_amount, L.approved_term_months, L.rate_percent,
             L.conditions, L.contract_number, L.contract_amount, L.contract_signed_on,
             L.disbursed_amount, L.disbursed_on, L.loan_number)
_SITE = (PartnerSite.id, PartnerSite.code, PartnerSite.name)
_IDS = bindparam("ids", expanding=True)
_DECISIONS = select(*_DECISION).where(L.referral_id.in_(_IDS))
_SITES = select(*_SITE).where(PartnerSite.id.in_(_IDS))
_ITEMS = select(*_ITEM).where(S.referral_id.in_(_IDS)).order_by(S.id)
_FILES = select(*_FILE).where(D.stipulation_id.in_(_IDS)).order_by(D.id)


def statement(query: Select, *, for_bank: bool) -> Select:
    """The page statement of `query` (a `select(Referral)` with the caller's scope and
    filters), newest first, its page bound at execution (`limit`, `offset`): built once per
    scope and filters and kept (blueprints/api/routes.py), as building it and its cache key
    cost a tenth of the list (issue 15)."""
    # Who works on a referral inside the bank is not read for a partner at all.
    extra = (_ORG_CODE.label("org_code"), _OFFICER.label("officer_name")) if for_bank else (
        _ORG_CODE.label("org_code"), )
    return (query.with_only_columns(*_REFERRAL, *extra)
            .order_by(R.submitted_at.desc(), R.id.desc())
            .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer)))


def page(statement: Select, params: dict) -> list[ReferralView]:
    """The referrals of `statement` (from `statement()`) as views with `org` (its code),
    `assigned_to` (for the bank), `site`, `decision` and `stipulations` (each with its
    `documents`), in the models' orders."""
    rows = db.session.execute(statement, params).all()
    if not rows:
        return []
    decisions = _decisions([r.id for r in rows if r.decided_at is not None])
    sites = _sites({r.site_id for r in rows if r.site_id is not None})
    items = _items([r.id for r in rows])
    out = []
    for row in rows:
        fields = row._asdict()
        officer = fields.pop("officer_name", None)
        fields["org"] = SimpleNamespace(code=fields.pop("org_code"))
        fields["assigned_to"] = (SimpleNamespace(id=row.assigned_to_id, name=officer)
                                 if officer is not None else None)
        fields["site"] = sites.get(row.site_id)
        fields["decision"] = decisions.get(row.id)
        fields["stipulations"] = items[row.id]
        out.append(ReferralView(**fields))
    return out


def _decisions(ids: list[int]) -> dict[int, DecisionView]:
    if not ids:
        return {}
    return {r.referral_id: DecisionView(**r._asdict())
            for r in db.session.execute(_DECISIONS, {"ids": ids})}


def _sites(ids: set[int]) -> dict[int, SiteView]:
    if not ids:
        return {}
    return {r.id: SiteView(**r._asdict())
            for r in db.session.execute(_SITES, {"ids": list(ids)})}


def _items(ids: list[int]) -> dict[int, list[ItemView]]:
    """Each referral's items by id (Referral.stipulations' order), each with its files by id
    (Stipulation.documents' order)."""
    out: dict[int, list[ItemView]] = defaultdict(list)
    items = [ItemView(**r._asdict(), documents=[])
             for r in db.session.execute(_ITEMS, {"ids": ids})]
    if not items:
        return out
    by_id = {item.id: item for item in items}
    for r in db.session.execute(_FILES, {"ids": list(by_id)}):
        by_id[r.stipulation_id].documents.append(FileView(**r._asdict()))
    for item in items:
        out[item.referral_id].append(item)
    return out
