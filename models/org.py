from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from .branch import Branch
    from .user import User


class PartnerType(str, enum.Enum):
    real_estate_developer = "real_estate_developer"
    property_broker = "property_broker"
    car_dealer = "car_dealer"
    car_manufacturer = "car_manufacturer"
    study_abroad_agency = "study_abroad_agency"
    retail_mall = "retail_mall"
    law_firm = "law_firm"
    appraiser = "appraiser"
    guarantee_company = "guarantee_company"
    credit_rating_agency = "credit_rating_agency"
    insurer = "insurer"


BANK_KIND = "bank"


class OrgStatus(str, enum.Enum):
    pending = "pending"
    active = "active"
    suspended = "suspended"
    terminated = "terminated"


class Organization(db.Model):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "bank" for the bank itself, otherwise a PartnerType value.
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=OrgStatus.active.value)
    # The bank's branch that works this partner (None: the province, the tree's root).
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    channel_manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", use_alter=True, name="fk_org_channel_manager")
    )
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    channel_manager: Mapped[User | None] = relationship(foreign_keys=[channel_manager_id])
    branch: Mapped[Branch | None] = relationship()

    @property
    def is_bank(self) -> bool:
        return self.kind == BANK_KIND

    @hybrid_property
    def is_partner(self) -> bool:
        """A partner organisation, not the bank itself; in a query, the filter that says so."""
        return self.kind != BANK_KIND

    @property
    def can_submit(self) -> bool:
        return not self.is_bank and self.status == OrgStatus.active.value

    def __repr__(self) -> str:
        return f"<Organization {self.code}>"
