"""confidentiality: internal/partner text split, reveals with a purpose

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03

- document.review_note: the officer's own finding on a rejected upload (review_reason is what
  the partner reads);
- agreement.termination_notice: what the partner is told about a termination
  (termination_reason stays inside the bank);
- reveal and reveal_request: every reveal of a buyer's ID and mobile with its purpose, and the
  manager's approvals past the hourly limit.

The held state for probing partners (docs/attribution.md) is a status value: no column.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('termination_notice', sa.Text(), nullable=True))

    op.create_table(
        'reveal_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=False),
        _ts('requested_at'),
        sa.Column('reason_code', sa.String(length=30), nullable=False),
        sa.Column('reason_text', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        _ts('decided_at', nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        _ts('used_at', nullable=True),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['requested_by_id'], ['user.id']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('reveal_request', schema=None) as batch_op:
        batch_op.create_index('ix_reveal_request_status', ['status', 'requested_at'],
                              unique=False)
        batch_op.create_index('ix_reveal_request_requested_by_id', ['requested_by_id'],
                              unique=False)

    op.create_table(
        'reveal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        _ts('at'),
        sa.Column('reason_code', sa.String(length=30), nullable=False),
        sa.Column('reason_text', sa.Text(), nullable=True),
        sa.Column('request_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.ForeignKeyConstraint(['request_id'], ['reveal_request.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('reveal', schema=None) as batch_op:
        batch_op.create_index('ix_reveal_user_at', ['user_id', 'at'], unique=False)
        batch_op.create_index('ix_reveal_at', ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('reveal', schema=None) as batch_op:
        batch_op.drop_index('ix_reveal_at')
        batch_op.drop_index('ix_reveal_user_at')
    op.drop_table('reveal')
    with op.batch_alter_table('reveal_request', schema=None) as batch_op:
        batch_op.drop_index('ix_reveal_request_requested_by_id')
        batch_op.drop_index('ix_reveal_request_status')
    op.drop_table('reveal_request')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_column('termination_notice')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_column('review_note')
