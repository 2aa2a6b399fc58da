"""decisions with terms: approved amount, term, rate and conditions; contract; disbursement

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

One row per referral (loan_decision), filled in as the officer approves, records the contract
and the disbursement. Referrals decided before this have no row: they show the decision without
terms, and the amount disbursed falls back to the amount requested.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'loan_decision',
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('approved_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('approved_term_months', sa.Integer(), nullable=True),
        sa.Column('rate_percent', sa.Numeric(precision=6, scale=3), nullable=True),
        sa.Column('conditions', sa.Text(), nullable=True),
        sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('contract_number', sa.String(length=64), nullable=True),
        sa.Column('contract_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('contract_signed_on', sa.Date(), nullable=True),
        sa.Column('disbursed_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('disbursed_on', sa.Date(), nullable=True),
        sa.Column('loan_number', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('referral_id'),
    )


def downgrade():
    op.drop_table('loan_decision')
