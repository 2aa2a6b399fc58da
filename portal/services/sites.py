"""A partner's projects, showrooms and offices (合作项目 / 网点): kept by the channel managers
of the partner's branch, read by the partner's users; the quota each uses; the bank staff placed
on site (驻点).

Quota use is what the bank has committed through the site: loans approved or signed and not yet
paid out (at the contract amount, else the approved amount, else the amount asked) plus loans
disbursed (at the amount paid out, else the amount asked, as the portfolio counts them). When a
decision takes a site past 80 % or 100 % of its quota, the partner's channel manager is warned,
once for each threshold (`quota_warned` remembers the last one warned of).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from sqlalchemy import Select, case, func, select

from models import (
    WEEKDAYS,
    LoanDecision,
    Organization,
    PartnerSite,
    Referral,
    Role,
    SiteKind,
    SiteStaff,
    User,
)
from portal.i18n import lazy_gettext as _l

from ..extensions import db
from . import Ctx, audit, branches, notifications
from .errors import Forbidden, NotFound, ValidationFailed
from .lifecycle import State
from .referral_intake import parse_amount
from .validation import checked, refusal

KINDS = tuple(k.value for k in SiteKind)
CODE = re.compile(r"^[A-Z][A-Z0-9_-]{1,31}$")
THRESHOLDS = (80, 100)
MANAGING_ROLES = (Role.channel_manager.value, Role.admin.value)
# The states in which a loan counts against the quota: committed, then paid out.
COMMITTED = (State.approved.value, State.contract_signed.value)
PAID = State.disbursed.value
# Moves after which a site's quota use may have grown.
COUNTED = frozenset({State.approved, State.contract_signed, State.disbursed})
MAX_QUOTA = Decimal("1e12")


# --- the one schema of a site's fields ----------------------------------------------------------

def _text(max_len: int, *, required: bool = False):
    def rule(value, _info) -> str | None:
        value = str(value or "").strip()
        if required and not value:
            raise refusal(_l("This field is required."))
        if len(value) > max_len:
            raise refusal(_l("At most %(n)d characters.", n=max_len))
        return value or None
    return rule


def _kind(value, _info) -> str:
    if value not in KINDS:
        raise refusal(_l("Choose what kind of site this is."))
    return value


def _code(value, _info) -> str:
    code = str(value or "").strip().upper()
    if not CODE.match(code):
        raise refusal(_l("Use 2-32 capital letters, digits, hyphens or underscores, starting "
                         "with a letter."))
    return code


def _quota(value, _info) -> Decimal | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        amount = parse_amount(value)
    except Exception:  # noqa: BLE001 - any unreadable amount is the same refusal
        amount = None
    if amount is None or amount <= 0 or amount > MAX_QUOTA:
        raise refusal(_l("Enter the quota in yuan, such as 50,000,000 or 5000万, or leave it "
                         "empty for none."))
    return amount.quantize(Decimal("0.01"))


def _flag(value, _info) -> bool:
    return value in (True, "y", "on", "true", "1", 1)


def _day(value, _info) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise refusal(_l("Give the date as YYYY-MM-DD.")) from None


def _f(rule):
    return Field(None, validate_default=True), PlainValidator(rule)


class SiteIn(BaseModel):
    """A site as a channel manager enters it (the page's form and the CLI alike)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    kind: Annotated[str, *_f(_kind)]
    code: Annotated[str, *_f(_code)]
    name: Annotated[str, *_f(_text(200, required=True))]
    address: Annotated[str | None, *_f(_text(300))]
    presale_permit: Annotated[str | None, *_f(_text(64))]
    quota_amount: Annotated[Decimal | None, *_f(_quota)]
    staged_guarantee: Annotated[bool, *_f(_flag)]
    guarantee_contract_number: Annotated[str | None, *_f(_text(64))]
    guarantee_expected_end: Annotated[date | None, *_f(_day)]
    active: Annotated[bool, *_f(_flag)]


FIELDS = tuple(SiteIn.model_fields)
PROJECT_ONLY = ("presale_permit", "staged_guarantee", "guarantee_contract_number",
                "guarantee_expected_end")


# --- who may do what ----------------------------------------------------------------------------

def may_manage(user: User | None, org: Organization) -> bool:
    """Channel managers and administrators of the partner's branch tree keep its sites."""
    return user is None or (user.role in MANAGING_ROLES and branches.may_see_org(user, org))


def _require_manager(ctx: Ctx, org: Organization) -> None:
    if org.is_bank:
        raise NotFound()
    if not may_manage(ctx.user, org):
        raise Forbidden(_l("Only the partner's channel managers keep its sites."))


# --- reading ------------------------------------------------------------------------------------

def get_for(user: User | None, site_id: int) -> PartnerSite:
    """A site the user may see (their own organisation's, or one in their branch tree), or
    NotFound: another partner's or another branch's site is not found."""
    site = db.session.get(PartnerSite, site_id)
    if site is None or not branches.may_see_org(user, site.org):
        raise NotFound()
    return site


def of_org(org_id: int, *, active_only: bool = False) -> list[PartnerSite]:
    query = select(PartnerSite).where(PartnerSite.org_id == org_id)
    if active_only:
        query = query.where(PartnerSite.active.is_(True))
    return list(db.session.scalars(query.order_by(PartnerSite.active.desc(), PartnerSite.name,
                                                  PartnerSite.id)))


def choices(org_id: int) -> list[tuple[str, str]]:
    """(id, label) of the partner's active sites, for the intake form's select."""
    return [(str(s.id), f"{s.name} ({s.code})") for s in of_org(org_id, active_only=True)]


def lookup(org_id: int | None, value) -> PartnerSite | None:
    """The active site of `org_id` an intake names, by id (a number) or code; None if none."""
    if org_id is None:
        return None
    text = str(value).strip()
    if isinstance(value, int) or text.isdigit():
        found = db.session.get(PartnerSite, int(text)) if len(text) < 10 else None
    else:
        found = db.session.scalar(select(PartnerSite).where(
            PartnerSite.org_id == org_id, PartnerSite.code == text.upper()))
    if found is None or found.org_id != org_id or not found.active:
        return None
    return found


def finder(org_id: int | None):
    """The intake's site lookup for one organisation (referral_intake's `find_site`)."""
    return lambda value: lookup(org_id, value)


# --- quota use ----------------------------------------------------------------------------------

@dataclass
class Usage:
    quota: Decimal | None
    committed: Decimal = Decimal(0)   # approved or signed, not yet paid out
    disbursed: Decimal = Decimal(0)
    loans: int = 0

    @property
    def used(self) -> Decimal:
        return self.committed + self.disbursed

    @property
    def share(self) -> float | None:
        return float(self.used / self.quota) if self.quota else None

    @property
    def level(self) -> int:
        """The highest threshold reached (0, 80 or 100), reckoned exactly (no float)."""
        if not self.quota:
            return 0
        return max((t for t in THRESHOLDS if self.used * 100 >= self.quota * t), default=0)

    @property
    def percent(self) -> int | None:
        """Whole percent used, rounded down (so 79.9 % never reads as 80 %)."""
        return None if not self.quota else int(self.used * 100 // self.quota)


def _usage_rows(site_ids: list[int]) -> Select:
    committed = func.coalesce(LoanDecision.contract_amount, LoanDecision.approved_amount,
                              Referral.amount)
    paid = func.coalesce(LoanDecision.disbursed_amount, Referral.amount)
    return (select(Referral.site_id,
                   func.coalesce(func.sum(case((Referral.status.in_(COMMITTED), committed),
                                               else_=0)), 0),
                   func.coalesce(func.sum(case((Referral.status == PAID, paid), else_=0)), 0),
                   func.count())
            .outerjoin(LoanDecision, LoanDecision.referral_id == Referral.id)
            .where(Referral.site_id.in_(site_ids), Referral.status.in_((*COMMITTED, PAID)))
            .group_by(Referral.site_id))


def usage_of(sites: list[PartnerSite]) -> dict[int, Usage]:
    """{site id: its quota use}, in one query."""
    out = {s.id: Usage(quota=s.quota_amount) for s in sites}
    if not out:
        return out
    for site_id, committed, disbursed, n in db.session.execute(_usage_rows(list(out))):
        usage = out[site_id]
        usage.committed, usage.disbursed = Decimal(committed), Decimal(disbursed)
        usage.loans = n
    return out


def usage(site: PartnerSite) -> Usage:
    return usage_of([site])[site.id]


def warnings(org_id: int, among: list[PartnerSite] | None = None
             ) -> list[tuple[PartnerSite, Usage]]:
    """The partner's active sites at 80 % of their quota or more, fullest first. `among`:
    the partner's sites (of_org), when the caller has them."""
    found = (of_org(org_id, active_only=True) if among is None
             else [s for s in among if s.active])
    use = usage_of([s for s in found if s.quota_amount])
    out = [(s, use[s.id]) for s in found if s.id in use and use[s.id].level]
    return sorted(out, key=lambda pair: -(pair[1].share or 0))


def check_quota(ctx: Ctx, referral: Referral) -> int | None:
    """After a decision moved `referral`: warn the channel manager when its site has newly
    reached a threshold of its quota (once per threshold). Returns the threshold warned of."""
    if referral.site_id is None:
        return None
    site = db.session.get(PartnerSite, referral.site_id)
    if site is None or not site.quota_amount:
        return None
    use = usage(site)
    level = use.level
    if level <= site.quota_warned:
        return None
    site.quota_warned = level
    db.session.flush()
    org = site.org
    audit.record(ctx, "site.quota_warning", site, code=site.code, threshold=level,
                 used=str(use.used), quota=str(site.quota_amount), referral=referral.id)
    from .probes import managers_to_alert  # probes imports referrals, which imports us

    notifications.notify_staff(
        managers_to_alert(org), "site_quota",
        {"site_id": site.id, "site_name": site.name, "site_code": site.code,
         "org_code": org.code, "org_name": org.name, "threshold": level,
         "used": str(use.used), "quota": str(site.quota_amount)},
        # Once per threshold of this quota: a new quota warns afresh.
        dedupe_key=f"site-quota:{site.id}:{site.quota_amount}:{level}")
    return level


# --- changing a site ----------------------------------------------------------------------------

def _clean(data: dict) -> SiteIn:
    clean = checked(SiteIn, {name: data.get(name) for name in FIELDS})
    if clean.kind != SiteKind.project.value:
        # Permits and the developer's guarantee belong to projects only.
        clean.presale_permit = clean.guarantee_contract_number = None
        clean.guarantee_expected_end = None
        clean.staged_guarantee = False
    return clean


def _code_taken(org_id: int, code: str, site_id: int | None) -> bool:
    query = select(PartnerSite.id).where(PartnerSite.org_id == org_id, PartnerSite.code == code)
    if site_id is not None:
        query = query.where(PartnerSite.id != site_id)
    return db.session.scalar(query) is not None


def create(ctx: Ctx, org: Organization, data: dict) -> PartnerSite:
    _require_manager(ctx, org)
    clean = _clean(data)
    if _code_taken(org.id, clean.code, None):
        raise ValidationFailed({"code": _l("%(org)s already has a site with code %(code)s.",
                                           org=org.code, code=clean.code)})
    site = PartnerSite(org_id=org.id, org=org, **clean.model_dump())
    db.session.add(site)
    db.session.flush()
    site.quota_warned = usage(site).level
    audit.record(ctx, "site.create", site, org=org.code, code=site.code, kind=site.kind,
                 quota=str(site.quota_amount) if site.quota_amount is not None else None)
    return site


def update(ctx: Ctx, site: PartnerSite, data: dict) -> PartnerSite:
    _require_manager(ctx, site.org)
    clean = _clean(data)
    if _code_taken(site.org_id, clean.code, site.id):
        raise ValidationFailed({"code": _l("%(org)s already has a site with code %(code)s.",
                                           org=site.org.code, code=clean.code)})
    changes = {}
    for name, value in clean.model_dump().items():
        before = getattr(site, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(site, name, value)
    if "quota_amount" in changes:
        # A new quota starts the warnings afresh from where the site now stands.
        site.quota_warned = usage(site).level
    db.session.flush()
    if changes:
        audit.record(ctx, "site.update", site, code=site.code, changes=changes)
    return site


def _plain(value):
    if isinstance(value, Decimal | date):
        return str(value)
    return value


# --- on-site staff ------------------------------------------------------------------------------

def days_mask(days) -> int:
    mask = 0
    for day in days or ():
        if day in WEEKDAYS:
            mask |= 1 << WEEKDAYS.index(day)
    return mask


def assignable_staff(ctx_user: User | None, org: Organization) -> list[User]:
    """Active bank staff who may sit at the partner's sites: those whose branch covers the
    partner (its branch, a branch above it, or the province)."""
    staff = db.session.scalars(select(User).join(Organization, Organization.id == User.org_id)
                               .where(Organization.kind == "bank", User.active.is_(True))
                               .order_by(User.name, User.id))
    return [u for u in staff if branches.covers(u, org.branch)]


def assign(ctx: Ctx, site: PartnerSite, user: User | None, days, work_phone: str | None = None
           ) -> SiteStaff:
    """Place a bank employee at a site on these days (an existing placement is updated)."""
    _require_manager(ctx, site.org)
    errors: dict = {}
    if user is None or not user.is_bank or not user.active:
        errors["user_id"] = _l("Choose an active member of the bank's staff.")
    elif not branches.covers(user, site.org.branch):
        errors["user_id"] = _l("%(name)s works in another branch: choose someone of this "
                               "partner's branch.", name=user.name)
    mask = days_mask(days)
    if not mask:
        errors["days"] = _l("Choose at least one day of the week.")
    phone = (work_phone or "").strip() or None
    if phone is not None and (len(phone) > 40 or not re.fullmatch(r"[0-9+\-() ]+", phone)):
        errors["work_phone"] = _l("Enter a telephone number (digits, spaces, + - and brackets).")
    if errors:
        raise ValidationFailed(errors)
    placed = db.session.scalar(select(SiteStaff).where(SiteStaff.site_id == site.id,
                                                       SiteStaff.user_id == user.id))
    if placed is None:
        placed = SiteStaff(site_id=site.id, user_id=user.id, user=user)
        site.staff.append(placed)
    placed.days, placed.work_phone = mask, phone
    db.session.flush()
    audit.record(ctx, "site.staff_assign", site, code=site.code, user=user.email,
                 days=placed.weekdays, work_phone=phone)
    return placed


def unassign(ctx: Ctx, site: PartnerSite, assignment_id: int) -> None:
    _require_manager(ctx, site.org)
    placed = db.session.get(SiteStaff, assignment_id)
    if placed is None or placed.site_id != site.id:
        raise NotFound()
    email = placed.user.email
    site.staff.remove(placed)
    db.session.flush()
    audit.record(ctx, "site.staff_remove", site, code=site.code, user=email)


def onsite_for_org(org_id: int) -> list[SiteStaff]:
    """The bank staff on site at a partner's active sites (for the partner's dashboard)."""
    return list(db.session.scalars(
        select(SiteStaff).join(PartnerSite, PartnerSite.id == SiteStaff.site_id)
        .join(User, User.id == SiteStaff.user_id)
        .where(PartnerSite.org_id == org_id, PartnerSite.active.is_(True),
               User.active.is_(True))
        .order_by(PartnerSite.name, SiteStaff.id)))


def referral_counts(site_ids: list[int]) -> dict[int, int]:
    if not site_ids:
        return {}
    return dict(db.session.execute(
        select(Referral.site_id, func.count()).where(Referral.site_id.in_(site_ids))
        .group_by(Referral.site_id)).all())

