"""partner integration: API keys, idempotency, webhooks and notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        'api_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('rate_limit', sa.String(length=60), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        _ts('created_at'),
        _ts('last_used_at', True),
        _ts('revoked_at', True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name='fk_api_key_org'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name='fk_api_key_user'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name='fk_api_key_created_by'),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['user.id'], name='fk_api_key_revoked_by'),
        sa.PrimaryKeyConstraint('id', name='pk_api_key'),
        sa.UniqueConstraint('key_hash', name='uq_api_key_key_hash'),
    )
    with op.batch_alter_table('api_key') as batch_op:
        batch_op.create_index('ix_api_key_org_id', ['org_id'], unique=False)

    op.create_table(
        'idempotency_record',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        _ts('created_at'),
        _ts('completed_at', True),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id'], ondelete='CASCADE',
                                name='fk_idempotency_record_api_key'),
        sa.PrimaryKeyConstraint('id', name='pk_idempotency_record'),
        sa.UniqueConstraint('api_key_id', 'key', name='uq_idempotency_key'),
    )
    with op.batch_alter_table('idempotency_record') as batch_op:
        batch_op.create_index('ix_idempotency_created', ['created_at'], unique=False)

    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=True),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('secret_enc', sa.Text(), nullable=False),
        sa.Column('secret_prefix', sa.String(length=16), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        _ts('created_at'),
        _ts('deactivated_at', True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name='fk_webhook_endpoint_org'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user.id'],
                                name='fk_webhook_endpoint_created_by'),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_endpoint'),
    )
    with op.batch_alter_table('webhook_endpoint') as batch_op:
        batch_op.create_index('ix_webhook_endpoint_org_id', ['org_id'], unique=False)

    op.create_table(
        'outbox_event',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('type', sa.String(length=60), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        _ts('created_at'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name='fk_outbox_event_org'),
        sa.PrimaryKeyConstraint('id', name='pk_outbox_event'),
    )
    with op.batch_alter_table('outbox_event') as batch_op:
        batch_op.create_index('ix_outbox_event_org_created', ['org_id', 'created_at'],
                              unique=False)

    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        _ts('next_attempt_at', True),
        _ts('last_attempt_at', True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        _ts('delivered_at', True),
        _ts('created_at'),
        sa.ForeignKeyConstraint(['event_id'], ['outbox_event.id'], ondelete='CASCADE',
                                name='fk_webhook_delivery_event'),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], ondelete='CASCADE',
                                name='fk_webhook_delivery_endpoint'),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_delivery'),
    )
    with op.batch_alter_table('webhook_delivery') as batch_op:
        batch_op.create_index('ix_webhook_delivery_due', ['status', 'next_attempt_at'],
                              unique=False)
        batch_op.create_index('ix_webhook_delivery_endpoint', ['endpoint_id', 'id'],
                              unique=False)
        batch_op.create_index('ix_webhook_delivery_event_id', ['event_id'], unique=False)

    op.create_table(
        'delivery_attempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        _ts('at'),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_delivery.id'], ondelete='CASCADE',
                                name='fk_delivery_attempt_delivery'),
        sa.PrimaryKeyConstraint('id', name='pk_delivery_attempt'),
    )
    with op.batch_alter_table('delivery_attempt') as batch_op:
        batch_op.create_index('ix_delivery_attempt_delivery_id', ['delivery_id'], unique=False)

    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=120), nullable=True),
        _ts('created_at'),
        _ts('read_at', True),
        sa.Column('email_status', sa.String(length=20), nullable=False),
        sa.Column('email_attempts', sa.Integer(), nullable=False),
        _ts('email_next_at', True),
        sa.Column('email_error', sa.String(length=500), nullable=True),
        _ts('emailed_at', True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE',
                                name='fk_notification_user'),
        sa.PrimaryKeyConstraint('id', name='pk_notification'),
        sa.UniqueConstraint('user_id', 'dedupe_key', name='uq_notification_dedupe'),
    )
    with op.batch_alter_table('notification') as batch_op:
        batch_op.create_index('ix_notification_user_unread', ['user_id', 'read_at'],
                              unique=False)
        batch_op.create_index('ix_notification_email_due', ['email_status', 'email_next_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('notification') as batch_op:
        batch_op.drop_index('ix_notification_email_due')
        batch_op.drop_index('ix_notification_user_unread')
    op.drop_table('notification')
    with op.batch_alter_table('delivery_attempt') as batch_op:
        batch_op.drop_index('ix_delivery_attempt_delivery_id')
    op.drop_table('delivery_attempt')
    with op.batch_alter_table('webhook_delivery') as batch_op:
        batch_op.drop_index('ix_webhook_delivery_event_id')
        batch_op.drop_index('ix_webhook_delivery_endpoint')
        batch_op.drop_index('ix_webhook_delivery_due')
    op.drop_table('webhook_delivery')
    with op.batch_alter_table('outbox_event') as batch_op:
        batch_op.drop_index('ix_outbox_event_org_created')
    op.drop_table('outbox_event')
    with op.batch_alter_table('webhook_endpoint') as batch_op:
        batch_op.drop_index('ix_webhook_endpoint_org_id')
    op.drop_table('webhook_endpoint')
    with op.batch_alter_table('idempotency_record') as batch_op:
        batch_op.drop_index('ix_idempotency_created')
    op.drop_table('idempotency_record')
    with op.batch_alter_table('api_key') as batch_op:
        batch_op.drop_index('ix_api_key_org_id')
    op.drop_table('api_key')
