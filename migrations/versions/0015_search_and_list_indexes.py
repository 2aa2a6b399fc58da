"""search keys and list indexes (issue 15: pages that stay fast at a million referrals)

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-04

Referrals get search columns — the buyer's name and the partner's reference normalised for a
prefix search (bytewise on PostgreSQL), and the mobile's keyed hash — and indexes in the orders
the lists read them. The columns are filled here, batch by batch, with the application's own
functions (services/referral_search.backfill_batch): the mobile's hash needs the key, and
`flask db upgrade` runs inside the application, which holds it. `flask --app wsgi pii
backfill-search` does the same again on demand.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = "0016"
branch_labels = None
depends_on = None

_KEY = sa.String(length=100).with_variant(sa.String(length=100, collation='C'), 'postgresql')

_INDEXES = (
    ('ix_referral_org_submitted', ['org_id', 'submitted_at', 'id']),
    ('ix_referral_submitted', ['submitted_at', 'id']),
    ('ix_referral_status_submitted', ['status', 'submitted_at', 'id']),
    ('ix_referral_clock_waiting', ['clock', 'status_changed_at', 'id']),
    ('ix_referral_org_changed', ['org_id', 'status_changed_at', 'id']),
    ('ix_referral_org_status_changed', ['org_id', 'status', 'status_changed_at', 'id']),
    ('ix_referral_name_key', ['buyer_name_key']),
    ('ix_referral_ref_key', ['external_ref_key']),
    ('ix_referral_mobile_hash', ['mobile_hash']),
)


def upgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('buyer_name_key', _KEY, nullable=True))
        batch_op.add_column(sa.Column('external_ref_key', _KEY, nullable=True))
        batch_op.add_column(sa.Column('mobile_hash', sa.String(length=64), nullable=True))

    from portal.services.referral_search import backfill_batch

    connection, after = op.get_bind(), 0
    while after is not None:
        after = backfill_batch(connection, after)

    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_org_status')  # a prefix of ix_referral_org_status_changed
        for name, columns in _INDEXES:
            batch_op.create_index(name, columns, unique=False)
    # The audit log filtered by a kind of target, newest first. Not in batch mode: on SQLite that
    # would copy the append-only table (its triggers refuse the copy's DELETE).
    op.create_index('ix_audit_target_type_at', 'audit_entry', ['target_type', 'at', 'id'],
                    unique=False)


def downgrade():
    op.drop_index('ix_audit_target_type_at', table_name='audit_entry')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name, _columns in reversed(_INDEXES):
            batch_op.drop_index(name)
        batch_op.create_index('ix_referral_org_status', ['org_id', 'status'], unique=False)
        batch_op.drop_column('mobile_hash')
        batch_op.drop_column('external_ref_key')
        batch_op.drop_column('buyer_name_key')
