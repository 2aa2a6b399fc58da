"""partner scorecards: loan performance, weights, snapshots, tiers, imports, follow-up, contacts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Also the indexes the scorecard aggregation reads the referral table by: each KPI is grouped by
one milestone date (submitted, decided, closed, disbursed), and conflicts are found through the
timeline's `to_state`.

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# JSONB on PostgreSQL: the cockpit sorts the cards by a KPI inside the document.
CARD_JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
DEFAULT_CADENCE = {"strategic": 14, "core": 30, "watch": 45, "exit": 90}


def upgrade():
    op.create_table(
        'loan_performance',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('days_on_book', sa.Integer(), nullable=False),
        sa.Column('outstanding', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('month_latest', sa.Boolean(), nullable=False),
        sa.Column('is_latest', sa.Boolean(), nullable=False),
        _ts('imported_at'),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('referral_id', 'as_of', name='uq_loan_performance_referral_as_of'),
    )
    with op.batch_alter_table('loan_performance', schema=None) as batch_op:
        batch_op.create_index('ix_loan_performance_as_of',
                              ['as_of', 'org_id', 'month_latest', 'is_latest', 'days_past_due',
                               'status'], unique=False)
        batch_op.create_index('ix_loan_performance_org', ['org_id', 'as_of'], unique=False)

    op.create_table(
        'scoring_weights',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('weights', sa.JSON(), nullable=False),
        sa.Column('thresholds', sa.JSON(), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        _ts('created_at'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )

    op.create_table(
        'scorecard_snapshot',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.Column('period_kind', sa.String(length=12), nullable=False),
        sa.Column('period_key', sa.String(length=12), nullable=False),
        _ts('period_start'),
        _ts('period_end'),
        _ts('computed_at'),
        sa.Column('sample_size', sa.Integer(), nullable=False),
        sa.Column('composite', sa.Float(), nullable=True),
        sa.Column('raw_tier', sa.String(length=12), nullable=True),
        sa.Column('tier', sa.String(length=12), nullable=True),
        sa.Column('pending_down', sa.Integer(), nullable=False),
        sa.Column('weights_version', sa.Integer(), nullable=True),
        sa.Column('kpis', CARD_JSON, nullable=False),
        sa.Column('extra', CARD_JSON, nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('period_kind', 'period_key', 'org_id', name='uq_scorecard_period_org'),
    )
    with op.batch_alter_table('scorecard_snapshot', schema=None) as batch_op:
        batch_op.create_index('ix_scorecard_org_period', ['org_id', 'period_kind', 'period_key'],
                              unique=False)

    op.create_table(
        'tier_state',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('tier', sa.String(length=12), nullable=False),
        sa.Column('pending_down', sa.Integer(), nullable=False),
        sa.Column('base_period', sa.String(length=12), nullable=True),
        sa.Column('composite', sa.Float(), nullable=True),
        _ts('since'),
        _ts('updated_at'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id'),
    )

    op.create_table(
        'score_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        _ts('at'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('score_change', schema=None) as batch_op:
        batch_op.create_index('ix_score_change_org_id', ['org_id'], unique=False)

    op.create_table(
        'import_batch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('created', sa.Integer(), nullable=False),
        sa.Column('updated', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('rejected', sa.Integer(), nullable=False),
        sa.Column('malformed', sa.String(length=500), nullable=True),
        sa.Column('rejects', sa.JSON(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        _ts('at'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )

    op.create_table(
        'follow_up',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.Column('assigned_to_id', sa.Integer(), nullable=True),
        _ts('next_action_at', nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        _ts('created_at'),
        _ts('updated_at'),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['assigned_to_id'], ['user.id']),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('referral_id'),
    )
    with op.batch_alter_table('follow_up', schema=None) as batch_op:
        batch_op.create_index('ix_follow_up_org_id', ['org_id'], unique=False)
        batch_op.create_index('ix_follow_up_assigned_to_id', ['assigned_to_id'], unique=False)
        batch_op.create_index('ix_follow_up_status_next', ['status', 'next_action_at'],
                              unique=False)

    op.create_table(
        'follow_up_note',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('follow_up_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        _ts('at'),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['follow_up_id'], ['follow_up.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('follow_up_note', schema=None) as batch_op:
        batch_op.create_index('ix_follow_up_note_follow_up_id', ['follow_up_id'], unique=False)

    op.create_table(
        'contact_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        _ts('at'),
        sa.Column('summary', sa.Text(), nullable=False),
        _ts('created_at'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('contact_log', schema=None) as batch_op:
        batch_op.create_index('ix_contact_log_org_at', ['org_id', 'at'], unique=False)

    cadence = op.create_table(
        'contact_cadence',
        sa.Column('tier', sa.String(length=12), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        _ts('updated_at'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('tier'),
    )
    import datetime as _dt

    now = _dt.datetime.now(_dt.timezone.utc)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    op.bulk_insert(cadence, [{"tier": t, "days": d, "updated_at": now}
                             for t, d in DEFAULT_CADENCE.items()])

    # The aggregation's reading paths into the referral table and its timeline.
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index('ix_referral_submitted_at', ['submitted_at'], unique=False)
        batch_op.create_index('ix_referral_decided_at', ['decided_at'], unique=False)
        batch_op.create_index('ix_referral_closed_at', ['closed_at'], unique=False)
        batch_op.create_index('ix_referral_disbursed_at', ['disbursed_at'], unique=False)
    with op.batch_alter_table('referral_event', schema=None) as batch_op:
        batch_op.create_index('ix_referral_event_to_state', ['to_state', 'referral_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('referral_event', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_event_to_state')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_disbursed_at')
        batch_op.drop_index('ix_referral_closed_at')
        batch_op.drop_index('ix_referral_decided_at')
        batch_op.drop_index('ix_referral_submitted_at')
    op.drop_table('contact_cadence')
    with op.batch_alter_table('contact_log', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_log_org_at')
    op.drop_table('contact_log')
    with op.batch_alter_table('follow_up_note', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_up_note_follow_up_id')
    op.drop_table('follow_up_note')
    with op.batch_alter_table('follow_up', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_up_status_next')
        batch_op.drop_index('ix_follow_up_assigned_to_id')
        batch_op.drop_index('ix_follow_up_org_id')
    op.drop_table('follow_up')
    op.drop_table('import_batch')
    with op.batch_alter_table('score_change', schema=None) as batch_op:
        batch_op.drop_index('ix_score_change_org_id')
    op.drop_table('score_change')
    op.drop_table('tier_state')
    with op.batch_alter_table('scorecard_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ix_scorecard_org_period')
    op.drop_table('scorecard_snapshot')
    op.drop_table('scoring_weights')
    with op.batch_alter_table('loan_performance', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_performance_org')
        batch_op.drop_index('ix_loan_performance_as_of')
    op.drop_table('loan_performance')
