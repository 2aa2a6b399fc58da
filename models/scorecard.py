"""Partner scorecards: loan performance, the admin-set weights, stored snapshots, tier state,
and the import batches that fed them. The KPI definitions live in portal/services/scoring.py."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

from .base import INTERNAL_TEXT, UTCDateTime, utcnow
from .org import Organization
from .referral import Referral, ReferralEvent
from .user import User

# The paths the scorecard aggregation reads the referral table by (migration 0004): each KPI is
# grouped by one milestone date, and conflicts are found through the timeline's to_state. By
# submission date through ix_referral_submitted (submitted_at, id) on the model (migration 0021
# dropped the single-column one it begins with).
Index("ix_referral_decided_at", Referral.decided_at)
Index("ix_referral_closed_at", Referral.closed_at)
Index("ix_referral_disbursed_at", Referral.disbursed_at)
Index("ix_referral_event_to_state", ReferralEvent.to_state, ReferralEvent.referral_id)


class LoanPerformance(db.Model):
    """One statement of a disbursed loan: what was outstanding and how late it was on `as_of`."""

    __tablename__ = "loan_performance"
    __table_args__ = (
        UniqueConstraint("referral_id", "as_of", name="uq_loan_performance_referral_as_of"),
        # Covering the scorecard's count by statement date and organisation; and one partner's
        # statements for its own recompute.
        Index("ix_loan_performance_as_of", "as_of", "org_id", "month_latest", "is_latest",
              "days_past_due", "status"),
        Index("ix_loan_performance_org", "org_id", "as_of"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    # The referring organisation, copied from the referral (it never changes) so that the
    # scorecard aggregation groups statements without joining a million referrals.
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    as_of: Mapped[date] = mapped_column(Date)
    # Days between the disbursement (bank's local date) and as_of: early payment default.
    days_on_book: Mapped[int]
    outstanding: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    days_past_due: Mapped[int] = mapped_column(default=0)
    # current | delinquent | npl | closed
    status: Mapped[str] = mapped_column(String(12))
    # Kept by the import so the aggregation needs no window over millions of statements:
    # the loan's latest statement of its calendar month, and its latest statement of all.
    month_latest: Mapped[bool] = mapped_column(default=True)
    is_latest: Mapped[bool] = mapped_column(default=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    referral: Mapped[Referral] = relationship()


class ScoringWeights(db.Model):
    """The admin-set weights, tier thresholds and contact cadence. Versioned: every change is a
    new row, the newest one applies, and each snapshot records the version it used."""

    __tablename__ = "scoring_weights"

    id: Mapped[int] = mapped_column(primary_key=True)
    # {kpi name: weight >= 0}
    weights: Mapped[dict] = mapped_column(JSON)
    # {"strategic": 70, "core": 55, "watch": 40, "strategic_min_sample": 30}
    thresholds: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500), info=INTERNAL_TEXT)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    created_by: Mapped[User | None] = relationship()


# JSONB on PostgreSQL: the cockpit sorts 500 cards by a KPI inside the document.
CardJSON = JSON().with_variant(JSONB(), "postgresql")


class ScorecardSnapshot(db.Model):
    """One partner's card for one period (org_id NULL: the portfolio's own row, which keeps the
    priors the per-partner cards were shrunk toward).

    period_kind 'rolling90' has the single key 'current' (the window is in period_start/end);
    period_kind 'month' has keys 'YYYY-MM' in the bank's time zone.
    kpis: {name: {"value", "raw", "n", "x", "interval", "score", "contribution"}}.
    """

    __tablename__ = "scorecard_snapshot"
    __table_args__ = (
        UniqueConstraint("period_kind", "period_key", "org_id", name="uq_scorecard_period_org"),
        Index("ix_scorecard_org_period", "org_id", "period_kind", "period_key"),
        # The latest computation, read by the cockpit on every view (services/scoring/kept.py).
        Index("ix_scorecard_computed_at", "computed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    period_kind: Mapped[str] = mapped_column(String(12))
    period_key: Mapped[str] = mapped_column(String(12))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sample_size: Mapped[int] = mapped_column(default=0)
    composite: Mapped[float | None]
    # The tier the composite alone gives, and the tier after hysteresis.
    raw_tier: Mapped[str | None] = mapped_column(String(12))
    tier: Mapped[str | None] = mapped_column(String(12))
    # Consecutive periods below `tier` so far (down after two).
    pending_down: Mapped[int] = mapped_column(default=0)
    weights_version: Mapped[int | None]
    kpis: Mapped[dict] = mapped_column(CardJSON)
    # Buyer class mix, the turnaround split, volumes: what the pages explain the score with.
    extra: Mapped[dict | None] = mapped_column(CardJSON)

    org: Mapped[Organization | None] = relationship()


class TierState(db.Model):
    """A partner's current tier (after hysteresis) and since when: what the cockpit filters on and
    the contact cadence follows."""

    __tablename__ = "tier_state"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    tier: Mapped[str] = mapped_column(String(12))
    pending_down: Mapped[int] = mapped_column(default=0)
    # The last closed month the state was stepped from.
    base_period: Mapped[str | None] = mapped_column(String(12))
    composite: Mapped[float | None]
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    org: Mapped[Organization] = relationship()


class ScoreChange(db.Model):
    """A referral of this organisation changed since its cards were computed (append-only, no
    unique key, so busy intakes never wait on each other; cleared by the recompute)."""

    __tablename__ = "score_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"),
                                        index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImportBatch(db.Model):
    """One import job (CLI or admin upload): its file, progress and outcome. The job runs in
    batches that each commit with the counters and the position they reached, so a restarted
    job resumes after its last committed batch (portal/import_runner.py)."""

    __tablename__ = "import_batch"
    __table_args__ = (Index("ix_import_batch_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # referrals | loans
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str | None] = mapped_column(String(200))
    # queued | running | done | refused (the file as a whole) | cancelled | failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # Where the file is while the job needs it; an uploaded copy (owns_file) goes when it ends.
    path: Mapped[str | None] = mapped_column(String(500))
    owns_file: Mapped[bool] = mapped_column(default=False)
    recompute: Mapped[bool] = mapped_column(default=False)
    # Of the file's content, known once the whole file has been checked.
    sha256: Mapped[str | None] = mapped_column(String(64))
    total_rows: Mapped[int | None]
    # Rows handled so far (created + updated + skipped + rejected); `rows` is the total once
    # the job is done (kept for the reports that read it).
    rows_done: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    # The last line committed and the byte just after it: where a restart resumes.
    last_line: Mapped[int] = mapped_column(default=1)
    last_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # Why the whole file was refused (bad header, not UTF-8, ...): then nothing was written.
    malformed: Mapped[str | None] = mapped_column(String(500))
    # What stopped a failed job.
    error: Mapped[str | None] = mapped_column(String(500))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # A worker holds the job until then; a worker that died lets it go by itself.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User | None] = relationship()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "refused", "cancelled", "failed")


class ImportReject(db.Model):
    """A row an import job rejected: its line in the file and why."""

    __tablename__ = "import_reject"
    __table_args__ = (Index("ix_import_reject_batch_line", "batch_id", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"))
    line: Mapped[int]
    # Read by the bank's administrators only (the import page and its CSV).
    reason: Mapped[str] = mapped_column(String(500), info=INTERNAL_TEXT)
