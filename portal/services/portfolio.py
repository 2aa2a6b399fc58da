"""The portfolio by customer class, industry, partner type, partner, product and month: the
source study's own table (borrowers, balance and NPL by customer class) read off the loans.

One GROUP BY query: every disbursed loan in the filters, measured on its latest statement up to
the period's end (a loan without a statement yet owes what was disbursed). Shares are fractions
of the filtered total (they sum to 1); rates are fractions of the loans with a statement that is
not closed, with the rate's interval from the same beta maths the scorecards use (an even
Jeffreys prior here: the portfolio is not shrunk toward anything). The drill-down list (`loans`)
selects exactly the loans a cell counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.orm import aliased, selectinload

from models import LoanPerformance, Organization, PartnerSite, Product, Referral, User
from portal.i18n import lazy_gettext as _l

from ..bank_time import bank_date, bank_today, day_start
from ..extensions import db
from ..labels import INDUSTRIES, PARTNER_TYPES
from . import branches
from .decisions import lent_amount
from .lifecycle import State
from .scoring.beta import beta_ppf
from .scoring.settings import setting
from .validation import checked, refusal

GROUPS = ("customer_class", "industry", "partner_type", "org", "branch", "site", "product",
          "month")
GROUP_LABELS = {
    "customer_class": _l("Customer class"), "industry": _l("Employer industry"),
    "partner_type": _l("Partner type"), "org": _l("Partner"), "branch": _l("Branch"),
    "site": _l("Site"), "product": _l("Product"),
    "month": _l("Month of disbursement"),
}
# Which loans of a group a cell opens: all of them, or those behind a rate's numerator.
MEASURES = ("all", "performing", "delinquent", "npl")
CLASS_LABELS = {1: _l("Class 1"), 2: _l("Class 2"), 3: _l("Class 3")}
DELINQUENT_DAYS = 30


class PortfolioQuery(BaseModel):
    """The one schema of the portfolio's filters: the API's query, the page's and the export's.
    `from`/`to` are the bank's calendar dates of disbursement (both inclusive); `to` is also the
    date the loans are measured on (default: today)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    group_by: Literal[GROUPS] = "customer_class"  # type: ignore[valid-type]
    from_: date | None = Field(None, alias="from", description="First disbursement date.")
    to: date | None = Field(None, description="Last disbursement date and the as-of date.")
    product: str | None = Field(None, max_length=40)
    org_code: str | None = Field(None, max_length=32)
    branch: str | None = Field(None, max_length=32, description="Only the partners of this "
                               "branch's subtree (a branch code within the caller's own).")
    site: int | None = Field(None, ge=1, le=2_147_483_647, description="Only the loans "
                             "referred through this site (a partner's project, showroom or "
                             "office, by id).")
    # The cell a drill-down opens (the loans list; ignored by the table itself).
    key: str | None = Field(None, max_length=40)
    measure: Literal[MEASURES] = "all"  # type: ignore[valid-type]

    @field_validator("product", "org_code", "branch", "key", "site", mode="before")
    @classmethod
    def _blank(cls, value):
        return value or None

    @field_validator("org_code", "branch")
    @classmethod
    def _upper(cls, value):
        return value.upper() if value else value

    @model_validator(mode="after")
    def _ordered(self):
        if self.from_ and self.to and self.from_ > self.to:
            raise refusal(_l("The first date comes after the last."))
        return self

    def args(self) -> dict:
        """The filters as query-string arguments (for links and the export)."""
        out = {"group_by": self.group_by, "from": self.from_ and self.from_.isoformat(),
               "to": self.to and self.to.isoformat(), "product": self.product,
               "org_code": self.org_code, "branch": self.branch,
               "site": str(self.site) if self.site else None}
        return {k: v for k, v in out.items() if v}


def parse(data) -> PortfolioQuery:
    return checked(PortfolioQuery, data, first_wins=True)


@dataclass
class Group:
    key: str
    label: str
    borrowers: int = 0
    borrower_share: float | None = None
    balance: float = 0.0
    balance_share: float | None = None
    disbursed_amount: float = 0.0
    loans_with_performance: int = 0
    delinquent_loans: int = 0
    npl_loans: int = 0
    delinquency_rate: float | None = None
    npl_rate: float | None = None
    npl_interval: list[float] | None = None
    delinquency_interval: list[float] | None = None

    def json(self) -> dict:
        return asdict(self)


@dataclass
class Portfolio:
    as_of: date
    query: PortfolioQuery
    groups: list[Group]
    total: Group

    def json(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "group_by": self.query.group_by,
                "filters": {k: v for k, v in self.query.args().items() if k != "group_by"},
                "groups": [g.json() for g in self.groups], "total": self.total.json()}


# --- the loans behind the table -------------------------------------------------------------------

def scope(user: User | None):
    """The loans a bank user may read: those of their branch's subtree (services/branches.py)."""
    if user is not None and not user.is_bank:
        return literal(False)
    return branches.in_scope(user, Referral.org_id)


def _anchor(q: PortfolioQuery, user: User | None):
    """The branch the table is about: the one filtered on, else the user's own (None: the
    province). A branch outside the user's subtree is no branch at all (False)."""
    if q.branch:
        return branches.visible_branch(user, q.branch) or False
    return branches.scope_branch(user)


def _branch_key(q: PortfolioQuery, user: User | None):
    """Rolled up to the branches directly under the anchor: each loan counts for the child
    branch whose subtree holds its partner; partners of the anchor itself, under the anchor."""
    return branches.rollup_key(_anchor(q, user) or None)


def as_of(q: PortfolioQuery) -> date:
    return q.to or bank_today()


def _statements(as_of: date):
    """Each loan's latest statement up to `as_of` (one row per loan)."""
    latest = (select(LoanPerformance.referral_id.label("rid"),
                     func.max(LoanPerformance.as_of).label("as_of"))
              .where(LoanPerformance.as_of <= as_of)
              .group_by(LoanPerformance.referral_id).subquery("latest"))
    lp = aliased(LoanPerformance, name="lp")
    return latest, lp


def _months(q: PortfolioQuery) -> list[tuple[str, object]]:
    """(key, UTC start) of every bank-calendar month from the first disbursement in scope."""
    first = db.session.scalar(select(func.min(Referral.disbursed_at))
                              .where(Referral.disbursed_at.is_not(None)))
    end = as_of(q)
    start = q.from_ or (bank_date(first) if first else end)
    months, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        months.append((f"{y:04d}-{m:02d}", day_start(date(y, m, 1))))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def _key_expr(q: PortfolioQuery, user: User | None = None):
    if q.group_by == "customer_class":
        return Referral.customer_class
    if q.group_by == "industry":
        return Referral.industry
    if q.group_by == "partner_type":
        return Organization.kind
    if q.group_by == "org":
        return Organization.code
    if q.group_by == "branch":
        return _branch_key(q, user)
    if q.group_by == "site":
        return _site_key()
    if q.group_by == "product":
        return Referral.product_code
    months = _months(q)
    if len(months) <= 1:
        return literal(months[0][0] if months else "")
    # The bank's month of each disbursement: a CASE over the month boundaries (the same SQL on
    # SQLite and PostgreSQL, whatever the bank's time zone).
    return case(*[(Referral.disbursed_at < start, literal(prev))
                  for (prev, _s), (_k, start) in zip(months, months[1:], strict=False)],
                else_=literal(months[-1][0]))


def _site_key():
    """Each loan's site id, 0 for a loan that names none."""
    return func.coalesce(Referral.site_id, 0)


def _filtered(query: Select, q: PortfolioQuery, user: User | None) -> Select:
    query = query.where(Referral.status == State.disbursed.value,
                        Referral.disbursed_at.is_not(None), scope(user),
                        Referral.disbursed_at < day_start(as_of(q) + timedelta(days=1)))
    if q.from_:
        query = query.where(Referral.disbursed_at >= day_start(q.from_))
    if q.product:
        query = query.where(Referral.product_code == q.product)
    if q.org_code:
        query = query.where(Organization.code == q.org_code)
    if q.site:
        query = query.where(Referral.site_id == q.site)
    if q.branch:
        anchor = _anchor(q, user)
        query = query.where(literal(False) if anchor is False
                            else branches.in_branch(anchor, Referral.org_id))
    return query


def _flags(lp):
    open_ = and_(lp.id.is_not(None), lp.status != "closed")
    return {
        "performing": open_,
        "delinquent": and_(open_, lp.days_past_due >= DELINQUENT_DAYS),
        "npl": and_(open_, lp.status == "npl"),
    }


def portfolio(q: PortfolioQuery, user: User | None = None, *, locale: str = "zh_CN"
              ) -> Portfolio:
    """The table: one group per key present, and the total over the same loans."""
    when = as_of(q)
    latest, lp = _statements(when)
    flags = _flags(lp)
    # One row per loan with its group's key, grouped outside: PostgreSQL does not see that the
    # month CASE (bound parameters) in GROUP BY is the one selected.
    # The amount lent: disbursed where the disbursement recorded it, else the amount asked.
    lent = lent_amount(Referral.__table__.c)
    rows = (select(_key_expr(q, user).label("key"), Referral.id.label("id"),
                   func.coalesce(lp.outstanding, lent).label("balance"),
                   lent.label("amount"),
                   *[case((flags[name], 1), else_=0).label(name) for name in flags])
            .select_from(Referral)
            .join(Organization, Organization.id == Referral.org_id)
            .outerjoin(latest, latest.c.rid == Referral.id)
            .outerjoin(lp, and_(lp.referral_id == latest.c.rid, lp.as_of == latest.c.as_of)))
    rows = _filtered(rows, q, user).subquery("loans")
    query = (select(rows.c.key, func.count(rows.c.id), func.coalesce(func.sum(rows.c.balance), 0),
                    func.coalesce(func.sum(rows.c.amount), 0), func.sum(rows.c.performing),
                    func.sum(rows.c.delinquent), func.sum(rows.c.npl))
             .group_by(rows.c.key))
    labels = _labels(q.group_by, locale)
    groups = []
    for k, borrowers, balance, disbursed, performing, delinquent, npl in db.session.execute(query):
        groups.append(Group(key=str(k), label=str(labels.get(str(k), k)), borrowers=borrowers,
                            balance=float(balance), disbursed_amount=float(disbursed),
                            loans_with_performance=int(performing or 0),
                            delinquent_loans=int(delinquent or 0), npl_loans=int(npl or 0)))
    groups.sort(key=_order(q.group_by, labels))
    total = Group(key="total", label=str(_l("All loans")))
    for g in groups:
        for name in ("borrowers", "balance", "disbursed_amount", "loans_with_performance",
                     "delinquent_loans", "npl_loans"):
            setattr(total, name, getattr(total, name) + getattr(g, name))
    level = float(setting("SCORING_INTERVAL"))
    for g in [*groups, total]:
        g.borrower_share = g.borrowers / total.borrowers if total.borrowers else None
        g.balance_share = g.balance / total.balance if total.balance else None
        n = g.loans_with_performance
        if n:
            g.delinquency_rate = g.delinquent_loans / n
            g.npl_rate = g.npl_loans / n
            g.npl_interval = interval(g.npl_loans, n, level)
            g.delinquency_interval = interval(g.delinquent_loans, n, level)
        g.balance = round(g.balance, 2)
        g.disbursed_amount = round(g.disbursed_amount, 2)
    return Portfolio(when, q, groups, total)


def interval(x: int, n: int, level: float) -> list[float]:
    """The central `level` interval of a rate of x in n: the Jeffreys interval (Beta(x + ½,
    n − x + ½)), with its ends at 0 and 1 when nothing or everything was observed."""
    tail = (1.0 - level) / 2.0
    low = 0.0 if x == 0 else beta_ppf(tail, x + 0.5, n - x + 0.5)
    high = 1.0 if x == n else beta_ppf(1.0 - tail, x + 0.5, n - x + 0.5)
    return [round(low, 6), round(high, 6)]


def _labels(group_by: str, locale: str) -> dict:
    if group_by == "customer_class":
        return {str(k): v for k, v in CLASS_LABELS.items()}
    if group_by == "industry":
        return dict(INDUSTRIES)
    if group_by == "partner_type":
        return dict(PARTNER_TYPES)
    if group_by == "org":
        return dict(db.session.execute(select(Organization.code, Organization.name)).all())
    if group_by == "branch":
        return branches.names()
    if group_by == "site":
        names = {str(i): f"{name} ({code})" for i, name, code in db.session.execute(
            select(PartnerSite.id, PartnerSite.name, Organization.code)
            .join(Organization, Organization.id == PartnerSite.org_id))}
        return {"0": _l("No site named"), **names}
    if group_by == "product":
        return {p.code: p.display_name(locale) for p in db.session.scalars(select(Product))}
    return {}


def _order(group_by: str, labels: dict):
    if group_by in ("customer_class", "month"):
        return lambda g: g.key
    if group_by == "industry":
        order = {k: i for i, k in enumerate(INDUSTRIES)}
        return lambda g: (order.get(g.key, 99), g.key)
    return lambda g: (-g.borrowers, g.key)


def loans(q: PortfolioQuery, user: User | None = None) -> Select:
    """The loans one cell counts: the group `q.key` (every group when None) under the same
    filters, narrowed to `q.measure` (`statements` gives each one's latest statement)."""
    latest, lp = _statements(as_of(q))
    query = (select(Referral).select_from(Referral)
             .join(Organization, Organization.id == Referral.org_id)
             .outerjoin(latest, latest.c.rid == Referral.id)
             .outerjoin(lp, and_(lp.referral_id == latest.c.rid, lp.as_of == latest.c.as_of))
             .options(selectinload(Referral.org), selectinload(Referral.product),
                      selectinload(Referral.decision)))
    query = _filtered(query, q, user)
    if q.key is not None:
        if q.group_by in ("customer_class", "site"):
            column = Referral.customer_class if q.group_by == "customer_class" else _site_key()
            query = query.where(column == int(q.key) if q.key.isdigit() and len(q.key) < 10
                                else literal(False))
        else:
            query = query.where(_key_expr(q, user) == q.key)
    if q.measure != "all":
        query = query.where(_flags(lp)[q.measure])
    return query.order_by(Referral.disbursed_at.desc(), Referral.id.desc())


def statements(q: PortfolioQuery, referral_ids: list[int]) -> dict[int, LoanPerformance]:
    """The latest statement up to the as-of date of each of these loans (one page's)."""
    if not referral_ids:
        return {}
    latest, lp = _statements(as_of(q))
    rows = db.session.scalars(
        select(lp).join(latest, and_(lp.referral_id == latest.c.rid,
                                     lp.as_of == latest.c.as_of))
        .where(lp.referral_id.in_(referral_ids)))
    return {s.referral_id: s for s in rows}


def history(referral: Referral) -> list[LoanPerformance]:
    """A loan's statements, newest first (bank staff only: the referral page)."""
    return list(db.session.scalars(
        select(LoanPerformance).where(LoanPerformance.referral_id == referral.id)
        .order_by(LoanPerformance.as_of.desc())))


@dataclass
class ClassMix:
    """One partner's referrals submitted in a period, by customer class."""

    start: date
    end: date
    counts: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def share(self, cls: int) -> float | None:
        return self.counts[cls] / self.total if self.total else None


def class_mix(org_id: int, q: PortfolioQuery) -> ClassMix:
    """The class mix of a partner's referrals submitted from `q.from_` (default: a year before
    `to`) to `q.to` (default: today), both inclusive, bank calendar days."""
    end = as_of(q)
    start = q.from_ or end - timedelta(days=364)
    counts = {1: 0, 2: 0, 3: 0}
    for cls, n in db.session.execute(
            select(Referral.customer_class, func.count()).where(
                Referral.org_id == org_id, Referral.submitted_at >= day_start(start),
                Referral.submitted_at < day_start(end + timedelta(days=1)))
            .group_by(Referral.customer_class)):
        counts[int(cls)] = n
    return ClassMix(start, end, counts)
