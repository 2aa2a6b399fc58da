"""What stands behind a figure on a card: the referrals (or loan statements) of a KPI's
denominator in the card's period, and which of them make its numerator. The same conditions the
aggregation counts with (kpis.py, aggregation.py), so the lists' totals are the card's x and n."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from models import LoanPerformance, Referral, ScorecardSnapshot

from ...bank_time import bank_date
from ...extensions import db
from .aggregation import _anchor, _bucket
from .expressions import LP, R, flag, scan
from .kpis import KPI
from .periods import Period, rolling_period
from .settings import setting


def period_of(snapshot: ScorecardSnapshot) -> Period:
    """The period a stored card was computed for."""
    if snapshot.period_kind == "rolling90":
        return rolling_period(snapshot.period_end)
    y, m = int(snapshot.period_key[:4]), int(snapshot.period_key[5:7])
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    return Period("month", snapshot.period_key, snapshot.period_start, snapshot.period_end,
                  date(y, m, 1), date(ny, nm, 1))


@dataclass(frozen=True)
class Drill:
    """One KPI of one partner in one period: `query(part)` selects the rows of the numerator
    ("num") or the denominator ("den"); `kind` says whether they are referrals or statements."""

    kpi: KPI
    org_id: int
    period: Period
    # One of the partner's sites only (models/site.py); 0: the referrals that name none.
    site_id: int | None = None

    @property
    def kind(self) -> str:
        return "statements" if self.kpi.source == "loans" else "referrals"

    def query(self, part: str = "den") -> Select:
        if self.kpi.source == "loans":
            return self._statements(part)
        if self.kpi.source == "epd":
            return self._early(part)
        _bucket_expr, where = _anchor(self.kpi.source, [self.period])
        query = select(Referral).where(where, Referral.org_id == self.org_id)
        for table, on in self.kpi.joins:
            query = query.outerjoin(table, on)
        kpi = self.kpi
        if kpi.kind == "rate":
            if kpi.den is not None:
                query = query.where(kpi.den)
            if part == "num":
                query = query.where(kpi.num)
        elif kpi.kind == "hours":
            query = query.where(kpi.measure.is_not(None))
        return (self._site(query).options(selectinload(Referral.org),
                                          selectinload(Referral.product))
                .order_by(Referral.submitted_at.desc(), Referral.id.desc()))

    def _site(self, query: Select, referral_id=None) -> Select:
        """Narrowed to the drill's site, when it has one."""
        if self.site_id is None:
            return query
        wanted = (Referral.site_id.is_(None) if self.site_id == 0
                  else Referral.site_id == self.site_id)
        if referral_id is None:
            return query.where(wanted)
        return query.where(referral_id.in_(select(Referral.id).where(
            wanted, Referral.org_id == self.org_id)))

    def by_site(self, part: str = "den") -> dict[int, int]:
        """{site id (0: none named): rows} of the unnarrowed figure, to read it site by site."""
        whole = Drill(self.kpi, self.org_id, self.period).query(part).order_by(None).subquery()
        if self.kind == "statements":
            key = func.coalesce(Referral.site_id, 0)
            rows = (select(key, func.count()).select_from(whole)
                    .join(Referral, Referral.id == whole.c.referral_id).group_by(key))
        else:
            key = func.coalesce(whole.c.site_id, 0)
            rows = select(key, func.count()).select_from(whole).group_by(key)
        return {int(k): n for k, n in db.session.execute(rows)}

    def _statements(self, part: str) -> Select:
        p = self.period
        flag = LP.is_latest if p.kind == "rolling90" else LP.month_latest
        query = select(LoanPerformance).where(
            scan(LP.as_of) >= p.start_date, LP.as_of < p.end_date, flag,
            LP.org_id == self.org_id)
        if self.kpi.den is not None:
            query = query.where(self.kpi.den)
        if part == "num":
            query = query.where(self.kpi.num)
        return (self._site(query, LP.referral_id)
                .options(selectinload(LoanPerformance.referral))
                .order_by(LoanPerformance.as_of.desc(), LoanPerformance.id.desc()))

    def _early(self, part: str) -> Select:
        days = int(setting("SCORING_EPD_DAYS"))
        early = (select(LP.referral_id.label("rid"),
                        func.max(flag(self.kpi.num)).label("x"))
                 .where(LP.days_on_book <= days, LP.org_id == self.org_id)
                 .group_by(LP.referral_id).subquery("e"))
        _b, where = _bucket(R.disbursed_at, [self.period], shift=timedelta(days=days))
        query = (select(Referral).join(early, early.c.rid == Referral.id)
                 .where(where, Referral.org_id == self.org_id))
        if part == "num":
            query = query.where(early.c.x == 1)
        return (self._site(query).options(selectinload(Referral.org),
                                          selectinload(Referral.product))
                .order_by(Referral.disbursed_at.desc(), Referral.id.desc()))

    def numerator_ids(self, ids: list[int]) -> set[int]:
        """Which of these rows (one page's) also make the numerator."""
        if not ids or self.kpi.kind != "rate":
            return set()
        sub = self.query("num").subquery()
        return set(db.session.scalars(select(sub.c.id).where(sub.c.id.in_(ids))))

    def count(self, part: str) -> int:
        return db.session.scalar(select(func.count()).select_from(
            self.query(part).order_by(None).subquery())) or 0


def local_range(period: Period) -> tuple[date, date]:
    """The period's first and last bank calendar days (for the page's heading)."""
    return bank_date(period.start), period.end_date - timedelta(days=1)
