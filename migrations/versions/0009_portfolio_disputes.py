"""disputes of scorecard figures and loan records

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-03

A partner administrator flags a figure on its card or one of its loans with a note; a channel
manager answers (the answer is for the partner; the internal note is not).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        'dispute',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=10), nullable=False),
        sa.Column('kpi_name', sa.String(length=40), nullable=True),
        sa.Column('period_key', sa.String(length=12), nullable=True),
        sa.Column('referral_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('opened_by_id', sa.Integer(), nullable=True),
        _ts('opened_at'),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('answer', sa.Text(), nullable=True),
        sa.Column('internal_note', sa.Text(), nullable=True),
        sa.Column('answered_by_id', sa.Integer(), nullable=True),
        _ts('answered_at', nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['opened_by_id'], ['user.id']),
        sa.ForeignKeyConstraint(['answered_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('dispute', schema=None) as batch_op:
        batch_op.create_index('ix_dispute_status_opened', ['status', 'opened_at'], unique=False)
        batch_op.create_index('ix_dispute_org', ['org_id', 'opened_at'], unique=False)


def downgrade():
    with op.batch_alter_table('dispute', schema=None) as batch_op:
        batch_op.drop_index('ix_dispute_org')
        batch_op.drop_index('ix_dispute_status_opened')
    op.drop_table('dispute')
