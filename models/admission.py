"""Partner admission (准入): a company's application to become a partner, and the annual review
(年审) of each active partner."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, PARTNER_TEXT, UTCDateTime, utcnow
from .branch import Branch
from .org import Organization
from .user import User


class ApplicationStatus(str, enum.Enum):
    submitted = "submitted"            # waiting on the bank
    info_requested = "info_requested"  # waiting on the applicant
    approved = "approved"
    declined = "declined"


OPEN_APPLICATION = (ApplicationStatus.submitted.value, ApplicationStatus.info_requested.value)


class PartnerApplication(db.Model):
    """A company asks to become a partner of a branch. The applicant has no account: what the
    bank asks reaches them by e-mail, with a link whose token is kept here only as a hash."""

    __tablename__ = "partner_application"
    __table_args__ = (Index("ix_partner_application_branch_status", "branch_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), index=True)  # 统一社会信用代码
    kind: Mapped[str] = mapped_column(String(40))  # a PartnerType value
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_mobile: Mapped[str] = mapped_column(String(20))
    contact_email: Mapped[str] = mapped_column(String(200))
    products: Mapped[list] = mapped_column(JSON, default=list)
    locale: Mapped[str | None] = mapped_column(String(10))  # the applicant's, for e-mails
    # The business licence, checked like every upload and stored under UPLOAD_DIR.
    licence_filename: Mapped[str] = mapped_column(String(200))
    licence_content_type: Mapped[str] = mapped_column(String(40))
    licence_size: Mapped[int] = mapped_column(default=0)
    licence_sha256: Mapped[str] = mapped_column(String(64))
    licence_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=ApplicationStatus.submitted.value)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # What the bank last asked for (sent to the applicant) and what the applicant answered.
    info_request: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    applicant_note: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decline_reason: Mapped[str | None] = mapped_column(Text, info=PARTNER_TEXT)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"))

    branch: Mapped[Branch] = relationship()
    decided_by: Mapped[User | None] = relationship()
    org: Mapped[Organization | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_APPLICATION


class ReviewOutcome(str, enum.Enum):
    passed = "passed"
    conditional = "conditional"   # passed, with points to fix before the next review
    failed = "failed"


class AnnualReview(db.Model):
    """One annual review (年审) of a partner: the next is due a year after it."""

    __tablename__ = "annual_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    reviewed_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, info=INTERNAL_TEXT)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    org: Mapped[Organization] = relationship()
    reviewed_by: Mapped[User | None] = relationship()
