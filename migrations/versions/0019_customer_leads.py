"""customers the bank refers to partners

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-04

The other direction of the exchange of customers (互换客户资源): a bank customer referred to a
partner with their consent, the partner's answer and the outcome.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'customer_lead',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('customer_name', sa.String(length=100), nullable=False),
        sa.Column('mobile_enc', sa.Text(), nullable=False),
        sa.Column('mobile_hash', sa.String(length=64), nullable=True),
        sa.Column('mobile_masked', sa.String(length=32), nullable=False),
        sa.Column('need', sa.String(length=40), nullable=False),
        sa.Column('need_detail', sa.Text(), nullable=True),
        sa.Column('internal_note', sa.Text(), nullable=True),
        sa.Column('consent_method', sa.String(length=20), nullable=False),
        sa.Column('consent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('consent_notice_version', sa.String(length=40), nullable=False),
        sa.Column('consent_recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decline_reason', sa.Text(), nullable=True),
        sa.Column('outcome_note', sa.Text(), nullable=True),
        sa.Column('answered_by_id', sa.Integer(), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id']),
        sa.ForeignKeyConstraint(['consent_recorded_by_id'], ['user.id']),
        sa.ForeignKeyConstraint(['answered_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('customer_lead', schema=None) as batch_op:
        batch_op.create_index('ix_customer_lead_org_created', ['org_id', 'created_at', 'id'],
                              unique=False)
        batch_op.create_index('ix_customer_lead_mobile_hash', ['mobile_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('customer_lead', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_lead_mobile_hash')
        batch_op.drop_index('ix_customer_lead_org_created')
    op.drop_table('customer_lead')
