from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import PARTNER_TEXT, UTCDateTime, utcnow

if TYPE_CHECKING:
    from .org import Organization
    from .user import User

Money = Numeric(14, 2)


class SiteKind(str, enum.Enum):
    """Where a partner's buyers come from (合作项目 / 网点)."""

    project = "project"      # a real-estate project (楼盘项目), sold under a pre-sale permit
    showroom = "showroom"    # a dealer's showroom (4S店 / 展厅)
    office = "office"        # an agency's or broker's office (门店)


# Monday first, as the bank's rota is written; a SiteStaff's `days` is a bit mask over these.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PartnerSite(db.Model):
    """A partner's project, showroom or office. Channel managers of the partner's branch keep
    it; the partner's users read it. The quota is the bank's cooperation limit for the site
    (approved and disbursed loans count against it, services/sites.py)."""

    __tablename__ = "partner_site"
    __table_args__ = (UniqueConstraint("org_id", "code", name="uq_partner_site_org_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The partner's own short code for the site (unique within the partner): what an API
    # submission or an import names it by, besides its id.
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), info=PARTNER_TEXT)
    address: Mapped[str | None] = mapped_column(String(300), info=PARTNER_TEXT)
    # Projects: the pre-sale permit (商品房预售许可证) number the units are sold under.
    presale_permit: Mapped[str | None] = mapped_column(String(64))
    # The cooperation quota (合作额度) in CNY; None: no quota agreed.
    quota_amount: Mapped[Decimal | None] = mapped_column(Money)
    # Projects: the developer's staged guarantee (阶段性担保) of the mortgages, from
    # disbursement until the title is transferred and the mortgage registered. The bank
    # records whether there is one, the guarantee contract it rests on, and when it is
    # expected to end (the expected delivery of the property certificates), when known.
    staged_guarantee: Mapped[bool] = mapped_column(default=False)
    guarantee_contract_number: Mapped[str | None] = mapped_column(String(64))
    guarantee_expected_end: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    # The highest quota threshold (80, 100 percent) the channel manager has been warned of;
    # a decision that crosses a threshold warns once, however often it is crossed again.
    quota_warned: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    org: Mapped[Organization] = relationship()
    staff: Mapped[list[SiteStaff]] = relationship(
        back_populates="site", order_by="SiteStaff.id", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<PartnerSite {self.code}>"


class SiteStaff(db.Model):
    """A bank employee placed on site (驻点) at a partner's site, on some days of the week."""

    __tablename__ = "site_staff"
    __table_args__ = (UniqueConstraint("site_id", "user_id", name="uq_site_staff_site_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("partner_site.id", ondelete="CASCADE"),
                                         index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    # Bit i set: on site on WEEKDAYS[i] (1 = Monday ... 64 = Sunday).
    days: Mapped[int] = mapped_column(default=0)
    # The desk or work mobile the partner reaches them on at the site (optional).
    work_phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    site: Mapped[PartnerSite] = relationship(back_populates="staff")
    user: Mapped[User] = relationship()

    @property
    def weekdays(self) -> list[str]:
        return [day for i, day in enumerate(WEEKDAYS) if self.days & (1 << i)]
