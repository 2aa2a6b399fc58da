"""Cooperation agreements (合作协议): versioned templates, agreements and their acceptances."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .org import Organization, PartnerType
from .user import User


class PartnerFamily(str, enum.Enum):
    """Partner types that share one agreement template."""

    real_estate = "real_estate"
    auto = "auto"
    study_abroad = "study_abroad"
    retail = "retail"
    service = "service"


PT = PartnerType
FAMILY_OF: dict[str, str] = {
    PT.real_estate_developer.value: PartnerFamily.real_estate.value,
    PT.property_broker.value: PartnerFamily.real_estate.value,
    PT.car_dealer.value: PartnerFamily.auto.value,
    PT.car_manufacturer.value: PartnerFamily.auto.value,
    PT.study_abroad_agency.value: PartnerFamily.study_abroad.value,
    PT.retail_mall.value: PartnerFamily.retail.value,
    PT.law_firm.value: PartnerFamily.service.value,
    PT.appraiser.value: PartnerFamily.service.value,
    PT.guarantee_company.value: PartnerFamily.service.value,
    PT.credit_rating_agency.value: PartnerFamily.service.value,
    PT.insurer.value: PartnerFamily.service.value,
}

# Which partner types carry which agreement particulars.
PROJECT_KINDS = frozenset({PT.real_estate_developer.value})  # building projects, stage guarantee
BRAND_KINDS = frozenset({PT.car_dealer.value, PT.car_manufacturer.value})


class AgreementStatus(str, enum.Enum):
    draft = "draft"
    issued = "issued"
    accepted = "accepted"
    active = "active"
    expired = "expired"
    superseded = "superseded"
    terminated = "terminated"


AS = AgreementStatus
# (from, to): the only moves an agreement can make. Renewal is not a move: it drafts a new
# version, and that version's activation moves the old one to superseded.
AGREEMENT_TRANSITIONS: frozenset[tuple[AgreementStatus, AgreementStatus]] = frozenset({
    (AS.draft, AS.issued),
    (AS.issued, AS.accepted),
    (AS.accepted, AS.active),
    (AS.active, AS.expired),
    (AS.active, AS.superseded),
    # An issued or accepted agreement whose expiry passes before it ever became active.
    (AS.issued, AS.expired),
    (AS.accepted, AS.expired),
    (AS.draft, AS.terminated),
    (AS.issued, AS.terminated),
    (AS.accepted, AS.terminated),
    (AS.active, AS.terminated),
})
OPEN_STATUSES = frozenset({AS.draft.value, AS.issued.value, AS.accepted.value})
CLOSED_STATUSES = frozenset({AS.expired.value, AS.superseded.value, AS.terminated.value})


class AgreementTemplate(db.Model):
    """One version of an agreement template. An edit inserts the next version; none is changed."""

    __tablename__ = "agreement_template"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_agreement_template_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The template's lasting name, shared by all its versions, e.g. "real_estate".
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(default=1)
    family: Mapped[str] = mapped_column(String(40))  # a PartnerFamily value
    product_code: Mapped[str | None] = mapped_column(ForeignKey("product.code"))
    title: Mapped[str] = mapped_column(String(200))
    # Jinja source (rendered in a sandbox): "## 标题 | Title" starts a clause, "- " an item.
    body: Mapped[str] = mapped_column(Text, info=PARTNER_TEXT)  # printed for the partner
    note: Mapped[str | None] = mapped_column(String(300), info=INTERNAL_TEXT)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    created_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<AgreementTemplate {self.key} v{self.version}>"


class Agreement(db.Model):
    """One version of a partner's cooperation agreement. A renewal is the next version of the
    same number; history is never rewritten."""

    __tablename__ = "agreement"
    __table_args__ = (
        UniqueConstraint("number", "version", name="uq_agreement_number_version"),
        Index("ix_agreement_org_status", "org_id", "status"),
        Index("ix_agreement_status_expires", "status", "expires_on"),
        Index("ix_agreement_pdf_sha256", "pdf_sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    number: Mapped[str] = mapped_column(String(60))  # AGR-<ORGCODE>-<yyyy>-<seq>
    version: Mapped[int] = mapped_column(default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("agreement.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("agreement_template.id"))
    template_version: Mapped[int]

    products: Mapped[list] = mapped_column(JSON, default=list)
    projects: Mapped[list] = mapped_column(JSON, default=list)  # developers' building projects
    # Terms: printed in the agreement the partner signs.
    stage_guarantee: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)  # 阶段性担保
    brands: Mapped[list] = mapped_column(JSON, default=list)  # dealers and manufacturers
    onsite_staff: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)  # 驻场人员
    bank_sla_hours: Mapped[int] = mapped_column(default=72)  # bank turnaround target
    partner_doc_days: Mapped[int] = mapped_column(default=5)  # partner's document obligation
    effective_from: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)

    status: Mapped[str] = mapped_column(String(20), default=AS.draft.value)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # expired or superseded
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    terminated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # termination_reason: the bank's own record; termination_notice: what the partner is told.
    termination_reason: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    termination_notice: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)

    # Frozen at issue: everything the document shows, so a later change to the organisation
    # or the template cannot change an issued agreement.
    content: Mapped[dict | None] = mapped_column(JSON)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    # The issued PDF itself: what the partner accepted stays downloadable byte for byte.
    pdf_data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # Optimistic lock: two people moving the same agreement at once, the second one loses.
    row_version: Mapped[int] = mapped_column(default=1)

    org: Mapped[Organization] = relationship()
    template: Mapped[AgreementTemplate] = relationship()
    supersedes: Mapped[Agreement | None] = relationship(remote_side=[id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    issued_by: Mapped[User | None] = relationship(foreign_keys=[issued_by_id])
    terminated_by: Mapped[User | None] = relationship(foreign_keys=[terminated_by_id])
    acceptances: Mapped[list[AgreementAcceptance]] = relationship(
        back_populates="agreement", order_by="AgreementAcceptance.id"
    )

    __mapper_args__ = {"version_id_col": row_version}

    def can_move(self, to: AgreementStatus | str) -> bool:
        return (AS(self.status), AS(to)) in AGREEMENT_TRANSITIONS

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def acceptance(self) -> AgreementAcceptance | None:
        return self.acceptances[-1] if self.acceptances else None

    def __repr__(self) -> str:
        return f"<Agreement {self.number} v{self.version} {self.status}>"


class AgreementAcceptance(db.Model):
    """Proof of acceptance: who, when, from where, and the SHA-256 of the exact PDF accepted."""

    __tablename__ = "agreement_acceptance"
    __table_args__ = (Index("ix_agreement_acceptance_pdf_sha256", "pdf_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreement.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    pdf_sha256: Mapped[str] = mapped_column(String(64))

    agreement: Mapped[Agreement] = relationship(back_populates="acceptances")
    user: Mapped[User] = relationship()
