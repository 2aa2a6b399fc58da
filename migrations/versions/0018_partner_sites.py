"""partners' projects, showrooms and offices (合作项目 / 网点), on-site staff, a referral's site

Revision ID: 0018
Revises: 0019
Create Date: 2026-12-04

A partner's sites with their quota and, for projects, the pre-sale permit and the developer's
staged guarantee; the bank staff placed on site with their days of the week; and the site a
referral came through (optional: referrals made before this name none).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'partner_site',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('presale_permit', sa.String(length=64), nullable=True),
        sa.Column('quota_amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('staged_guarantee', sa.Boolean(), nullable=False),
        sa.Column('guarantee_contract_number', sa.String(length=64), nullable=True),
        sa.Column('guarantee_expected_end', sa.Date(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('quota_warned', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'code', name='uq_partner_site_org_code'),
    )
    with op.batch_alter_table('partner_site', schema=None) as batch_op:
        batch_op.create_index('ix_partner_site_org_id', ['org_id'], unique=False)
    op.create_table(
        'site_staff',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('work_phone', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['site_id'], ['partner_site.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('site_id', 'user_id', name='uq_site_staff_site_user'),
    )
    with op.batch_alter_table('site_staff', schema=None) as batch_op:
        batch_op.create_index('ix_site_staff_site_id', ['site_id'], unique=False)
        batch_op.create_index('ix_site_staff_user_id', ['user_id'], unique=False)
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_referral_site_id', ['site_id'], unique=False)
        batch_op.create_foreign_key('fk_referral_site', 'partner_site', ['site_id'], ['id'])


def downgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_constraint('fk_referral_site', type_='foreignkey')
        batch_op.drop_index('ix_referral_site_id')
        batch_op.drop_column('site_id')
    with op.batch_alter_table('site_staff', schema=None) as batch_op:
        batch_op.drop_index('ix_site_staff_user_id')
        batch_op.drop_index('ix_site_staff_site_id')
    op.drop_table('site_staff')
    with op.batch_alter_table('partner_site', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_site_org_id')
    op.drop_table('partner_site')
