"""partner admission: applications to become a partner, and annual reviews

Revision ID: 0017
Revises: 0010
Create Date: 2026-12-04

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'partner_application',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('company_name', sa.String(length=200), nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('contact_name', sa.String(length=100), nullable=False),
        sa.Column('contact_mobile', sa.String(length=20), nullable=False),
        sa.Column('contact_email', sa.String(length=200), nullable=False),
        sa.Column('products', sa.JSON(), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=True),
        sa.Column('licence_filename', sa.String(length=200), nullable=False),
        sa.Column('licence_content_type', sa.String(length=40), nullable=False),
        sa.Column('licence_size', sa.Integer(), nullable=False),
        sa.Column('licence_sha256', sa.String(length=64), nullable=False),
        sa.Column('licence_key', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('info_request', sa.Text(), nullable=True),
        sa.Column('applicant_note', sa.Text(), nullable=True),
        sa.Column('link_token_hash', sa.String(length=64), nullable=True),
        sa.Column('link_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decline_reason', sa.Text(), nullable=True),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['user.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('link_token_hash'),
    )
    op.create_index('ix_partner_application_uscc', 'partner_application', ['uscc'])
    op.create_index('ix_partner_application_branch_status', 'partner_application',
                    ['branch_id', 'status'])
    op.create_table(
        'annual_review',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('reviewed_on', sa.Date(), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['reviewed_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_annual_review_org_id', 'annual_review', ['org_id'])


def downgrade():
    op.drop_index('ix_annual_review_org_id', table_name='annual_review')
    op.drop_table('annual_review')
    op.drop_index('ix_partner_application_branch_status', table_name='partner_application')
    op.drop_index('ix_partner_application_uscc', table_name='partner_application')
    op.drop_table('partner_application')
