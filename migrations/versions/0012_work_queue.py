"""the officers' work queue: the bank clock's origin, assignment, saved filters

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04

`bank_clock_origin` = status_changed_at - bank_seconds: while the bank's clock runs the wait is
now minus it, so the queue orders by it ("longest wait first") from an index. Existing rows get
it computed here; `assigned_to_id`/`assigned_at` name the officer working on a referral;
`saved_queue_filter` keeps an officer's named filter sets.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bank_clock_origin', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('assigned_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_referral_assigned_to', 'user', ['assigned_to_id'], ['id'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE referral SET bank_clock_origin = "
                   "status_changed_at - make_interval(secs => bank_seconds)")
    else:
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS[.ffffff]'; datetime() drops the fraction, which
        # whole seconds leave as it was, so it is put back from the original.
        op.execute("UPDATE referral SET bank_clock_origin = "
                   "datetime(status_changed_at, '-' || bank_seconds || ' seconds') "
                   "|| substr(status_changed_at, 20)")
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.alter_column('bank_clock_origin', existing_type=sa.DateTime(timezone=True),
                              nullable=False)
        batch_op.create_index('ix_referral_bank_queue', ['clock', 'bank_clock_origin', 'status'],
                              unique=False)
        batch_op.create_index('ix_referral_assigned_to', ['assigned_to_id', 'clock'],
                              unique=False)
    op.create_table(
        'saved_queue_filter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'name', name='uq_saved_queue_filter_name'),
    )
    with op.batch_alter_table('saved_queue_filter', schema=None) as batch_op:
        batch_op.create_index('ix_saved_queue_filter_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('saved_queue_filter', schema=None) as batch_op:
        batch_op.drop_index('ix_saved_queue_filter_user_id')
    op.drop_table('saved_queue_filter')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_assigned_to')
        batch_op.drop_index('ix_referral_bank_queue')
        batch_op.drop_constraint('fk_referral_assigned_to', type_='foreignkey')
        batch_op.drop_column('assigned_at')
        batch_op.drop_column('assigned_to_id')
        batch_op.drop_column('bank_clock_origin')
