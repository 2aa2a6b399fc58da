"""imports as background jobs: progress, resume position, lease and cancel on import_batch;
rejected rows in their own table; referrals remember the import that brought them

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-03

The rejected rows move from import_batch.rejects (a JSON list of the first 1,000) to
import_reject, one row each, so a job of any size keeps them all and they stream out as CSV.
(A downgrade keeps the counts but not the rejected rows.)

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _ts(name):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


# On SQLite a batch operation that recreates a table drops the old one, and with foreign keys
# on that deletes its rows first, cascading to the tables that point at it. So the one table
# recreated here (import_batch) has no children when it is, and `referral` (whose timelines,
# documents and statements cascade from it) only gets a column added in place.


def upgrade():
    batch = sa.table('import_batch', sa.column('id', sa.Integer),
                     sa.column('rejects', sa.JSON))
    connection = op.get_bind()
    kept = [(batch_id, rejects) for batch_id, rejects
            in connection.execute(sa.select(batch.c.id, batch.c.rejects)) if rejects]

    with op.batch_alter_table('import_batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False,
                                      server_default='done'))
        batch_op.add_column(sa.Column('path', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('owns_file', sa.Boolean(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('recompute', sa.Boolean(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('total_rows', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rows_done', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('last_line', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('last_offset', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested', sa.Boolean(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(_ts('lease_until'))
        batch_op.add_column(_ts('started_at'))
        batch_op.add_column(_ts('finished_at'))
        batch_op.alter_column('sha256', existing_type=sa.String(length=64), nullable=True)
        batch_op.drop_column('rejects')
        batch_op.create_index('ix_import_batch_status', ['status'])
    # Jobs already there were run whole, in one go: their totals are their rows.
    op.execute("UPDATE import_batch SET total_rows = rows, rows_done = rows")

    op.create_table(
        'import_reject',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['import_batch.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_import_reject_batch_line', 'import_reject', ['batch_id', 'line'])
    reject = sa.table('import_reject', sa.column('batch_id', sa.Integer),
                      sa.column('line', sa.Integer), sa.column('reason', sa.String))
    rows = [{'batch_id': batch_id, 'line': int(line), 'reason': str(reason)[:500]}
            for batch_id, rejects in kept for line, reason in rejects]
    if rows:
        connection.execute(reject.insert(), rows)

    if connection.dialect.name == 'sqlite':
        # In place (ALTER TABLE ... ADD COLUMN may carry its reference); see above. A downgrade
        # on SQLite leaves the column there.
        columns = {c['name'] for c in sa.inspect(connection).get_columns('referral')}
        if 'import_batch_id' not in columns:
            op.execute('ALTER TABLE referral ADD COLUMN import_batch_id INTEGER '
                       'CONSTRAINT fk_referral_import_batch REFERENCES import_batch (id)')
    else:
        op.add_column('referral', sa.Column('import_batch_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_referral_import_batch', 'referral', 'import_batch',
                              ['import_batch_id'], ['id'])


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == 'sqlite':
        # SQLite cannot drop a column that holds a reference, and recreating `referral` would
        # delete what cascades from it: the column stays, emptied (the older code ignores it).
        op.execute('UPDATE referral SET import_batch_id = NULL')
    else:
        op.drop_constraint('fk_referral_import_batch', 'referral', type_='foreignkey')
        op.drop_column('referral', 'import_batch_id')
    op.drop_index('ix_import_reject_batch_line', table_name='import_reject')
    op.drop_table('import_reject')
    op.execute("UPDATE import_batch SET sha256 = '' WHERE sha256 IS NULL")
    with op.batch_alter_table('import_batch', schema=None) as batch_op:
        batch_op.drop_index('ix_import_batch_status')
        batch_op.add_column(sa.Column('rejects', sa.JSON(), nullable=True))
        for name in ('finished_at', 'started_at', 'lease_until', 'cancel_requested', 'error',
                     'last_offset', 'last_line', 'rows_done', 'total_rows', 'recompute',
                     'owns_file', 'path', 'status'):
            batch_op.drop_column(name)
        batch_op.alter_column('sha256', existing_type=sa.String(length=64), nullable=False)
