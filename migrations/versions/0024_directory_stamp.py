"""directory stamp: a value that changes with every change to partners, branches and staff;
the scorecards' latest computation indexed (issue 15)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

The cockpit keeps what it read (the ranking, the roll-up, the trend, the filter choices) until
the scores or the directory change: the latest `computed_at` of the scorecards says the first,
`directory_stamp` the second. Triggers restamp it on every write to what the cockpit reads of a
partner (code, name, kind, status, branch, channel manager), to the branch tree, and to a member
of staff's name, role, organisation, branch or standing, whoever writes (services, imports,
the admin, a hand-run UPDATE). A login or a password change does not restamp.

The stamp is random rather than counted: a count bumped in a transaction that is rolled back
would come round again for other data.

On PostgreSQL the triggers are deferred to the commit, so the stamp's row is the last lock a
transaction takes and cannot close a cycle with the rows it wrote. SQLite writes one
transaction at a time.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

# What each table's rows change of what the cockpit shows ('*': any column).
WATCHED = {
    'organization': 'code, name, kind, status, branch_id, channel_manager_id',
    'branch': '*',
    'user': 'name, role, org_id, branch_id, active',
}

PG_FUNCTION = """CREATE FUNCTION directory_restamp() RETURNS trigger AS $$
BEGIN
    UPDATE directory_stamp SET stamp = (random() * 9.2e18)::bigint WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql"""

SQLITE_RESTAMP = "UPDATE directory_stamp SET stamp = random() WHERE id = 1;"


def _pg_trigger(table: str, columns: str) -> str:
    update = 'UPDATE' if columns == '*' else f'UPDATE OF {columns}'
    return (f'CREATE CONSTRAINT TRIGGER directory_{table} AFTER INSERT OR DELETE OR {update} '
            f'ON "{table}" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
            'EXECUTE FUNCTION directory_restamp()')


def _sqlite_triggers(table: str, columns: str) -> list[str]:
    update = 'UPDATE' if columns == '*' else f'UPDATE OF {columns}'
    return [f'CREATE TRIGGER directory_{table}_{name} AFTER {event} ON "{table}" '
            f'BEGIN {SQLITE_RESTAMP} END'
            for name, event in (('insert', 'INSERT'), ('delete', 'DELETE'), ('update', update))]


def upgrade():
    stamp = op.create_table(
        'directory_stamp',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('stamp', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(stamp, [{'id': 1, 'stamp': 0}])
    op.create_index('ix_scorecard_computed_at', 'scorecard_snapshot', ['computed_at'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        for table, columns in WATCHED.items():
            op.execute(_pg_trigger(table, columns))
    else:
        for table, columns in WATCHED.items():
            for statement in _sqlite_triggers(table, columns):
                op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in WATCHED:
            op.execute(f'DROP TRIGGER IF EXISTS directory_{table} ON "{table}"')
        op.execute('DROP FUNCTION IF EXISTS directory_restamp()')
    else:
        for table in WATCHED:
            for name in ('insert', 'delete', 'update'):
                op.execute(f'DROP TRIGGER IF EXISTS directory_{table}_{name}')
    op.drop_index('ix_scorecard_computed_at', table_name='scorecard_snapshot')
    op.drop_table('directory_stamp')
