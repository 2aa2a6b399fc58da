"""cooperation agreements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Agreement templates (versioned), agreements (versioned by renewal) and their acceptances, and
one default template per partner family so a fresh installation can draft agreements.

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('agreement_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('family', sa.String(length=40), nullable=False),
    sa.Column('product_code', sa.String(length=40), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['product_code'], ['product.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', 'version', name='uq_agreement_template_key_version')
    )
    op.create_table('agreement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('supersedes_id', sa.Integer(), nullable=True),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('template_version', sa.Integer(), nullable=False),
    sa.Column('products', sa.JSON(), nullable=False),
    sa.Column('projects', sa.JSON(), nullable=False),
    sa.Column('stage_guarantee', sa.Text(), nullable=True),
    sa.Column('brands', sa.JSON(), nullable=False),
    sa.Column('onsite_staff', sa.Text(), nullable=True),
    sa.Column('bank_sla_hours', sa.Integer(), nullable=False),
    sa.Column('partner_doc_days', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('terminated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('terminated_by_id', sa.Integer(), nullable=True),
    sa.Column('termination_reason', sa.Text(), nullable=True),
    sa.Column('content', sa.JSON(), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=True),
    sa.Column('pdf_data', sa.LargeBinary(), nullable=True),
    sa.Column('row_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['issued_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['supersedes_id'], ['agreement.id'], ),
    sa.ForeignKeyConstraint(['template_id'], ['agreement_template.id'], ),
    sa.ForeignKeyConstraint(['terminated_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number', 'version', name='uq_agreement_number_version')
    )
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.create_index('ix_agreement_org_status', ['org_id', 'status'], unique=False)
        batch_op.create_index('ix_agreement_pdf_sha256', ['pdf_sha256'], unique=False)
        batch_op.create_index('ix_agreement_status_expires', ['status', 'expires_on'], unique=False)

    op.create_table('agreement_acceptance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreement.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('agreement_acceptance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreement_acceptance_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index('ix_agreement_acceptance_pdf_sha256', ['pdf_sha256'], unique=False)

    seed_templates()


def seed_templates():
    # The default text lives with the code that documents its syntax; a later change there
    # affects fresh installations only (existing ones keep their rows, edited as new versions).
    from portal.services.agreements.defaults import DEFAULT_BODY, DEFAULT_TEMPLATES

    template = sa.table('agreement_template', sa.column('key'), sa.column('version'),
                        sa.column('family'), sa.column('product_code'), sa.column('title'),
                        sa.column('body'), sa.column('note'),
                        sa.column('created_at', sa.DateTime(timezone=True)))
    created = datetime.now(timezone.utc)
    if op.get_bind().dialect.name == 'sqlite':
        created = created.replace(tzinfo=None)  # UTCDateTime keeps naive UTC on SQLite
    op.bulk_insert(template, [
        dict(key=key, version=1, family=family, product_code=product, title=title,
             body=DEFAULT_BODY, note='default', created_at=created)
        for key, family, product, title in DEFAULT_TEMPLATES])


def downgrade():
    with op.batch_alter_table('agreement_acceptance', schema=None) as batch_op:
        batch_op.drop_index('ix_agreement_acceptance_pdf_sha256')
        batch_op.drop_index(batch_op.f('ix_agreement_acceptance_agreement_id'))

    op.drop_table('agreement_acceptance')
    with op.batch_alter_table('agreement', schema=None) as batch_op:
        batch_op.drop_index('ix_agreement_status_expires')
        batch_op.drop_index('ix_agreement_pdf_sha256')
        batch_op.drop_index('ix_agreement_org_status')

    op.drop_table('agreement')
    op.drop_table('agreement_template')
