"""referral tally: referrals per partner and status, kept by triggers (issue 15)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04

A partner's dashboard counts and an API list's `total` were counted from the referral table on
every read: at a million referrals the bank's total alone read every row. `referral_tally`
holds the number of referrals per (org_id, status), and triggers on `referral` keep it, so every
writer keeps it right without knowing: the services, the set-based import (Core INSERTs),
retention's deletes, the test factories and the bench seed. Rows are never removed when a count
falls to 0 (readers skip zeros): removing them would make a row's presence race with writers.

On PostgreSQL inserts and deletes are counted once per statement from its transition table
(a bulk import's thousands of rows cost one upsert per partner and status, taken in key order so
two writers lock the same rows in the same order); a move or a change of partner is counted per
row, only when one of the two columns really changed. SQLite has no statement-level triggers:
there each row counts itself.

The existing referrals are counted here, before the triggers exist: `flask db upgrade` runs with
the application stopped.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_ADD = """INSERT INTO referral_tally AS t (org_id, status, n)
    SELECT org_id, status, count(*) FROM {source} WHERE true GROUP BY org_id, status
    ORDER BY org_id, status
    ON CONFLICT (org_id, status) DO UPDATE SET n = t.n + EXCLUDED.n"""

PG_TRIGGERS = f"""
CREATE FUNCTION referral_tally_added() RETURNS trigger AS $$
BEGIN
    {_ADD.format(source='added')};
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE FUNCTION referral_tally_removed() RETURNS trigger AS $$
BEGIN
    UPDATE referral_tally AS t SET n = t.n - r.k
    FROM (SELECT org_id, status, count(*) AS k FROM removed GROUP BY org_id, status) AS r
    WHERE t.org_id = r.org_id AND t.status = r.status;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE FUNCTION referral_tally_moved() RETURNS trigger AS $$
BEGIN
    -- The lower key first, as every writer does, so two moves cannot wait on each other.
    IF (OLD.org_id, OLD.status) < (NEW.org_id, NEW.status) THEN
        UPDATE referral_tally SET n = n - 1 WHERE org_id = OLD.org_id AND status = OLD.status;
    END IF;
    INSERT INTO referral_tally AS t (org_id, status, n) VALUES (NEW.org_id, NEW.status, 1)
        ON CONFLICT (org_id, status) DO UPDATE SET n = t.n + 1;
    IF (OLD.org_id, OLD.status) > (NEW.org_id, NEW.status) THEN
        UPDATE referral_tally SET n = n - 1 WHERE org_id = OLD.org_id AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER referral_tally_insert AFTER INSERT ON referral
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION referral_tally_added();
CREATE TRIGGER referral_tally_delete AFTER DELETE ON referral
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION referral_tally_removed();
CREATE TRIGGER referral_tally_update AFTER UPDATE OF org_id, status ON referral
    FOR EACH ROW
    WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION referral_tally_moved();
"""

_SQLITE_ADD = """INSERT INTO referral_tally (org_id, status, n) VALUES (NEW.org_id, NEW.status, 1)
        ON CONFLICT (org_id, status) DO UPDATE SET n = n + 1;"""
_SQLITE_REMOVE = """UPDATE referral_tally SET n = n - 1
        WHERE org_id = OLD.org_id AND status = OLD.status;"""

SQLITE_TRIGGERS = [
    f"CREATE TRIGGER referral_tally_insert AFTER INSERT ON referral BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER referral_tally_delete AFTER DELETE ON referral BEGIN {_SQLITE_REMOVE} END",
    f"""CREATE TRIGGER referral_tally_update AFTER UPDATE OF org_id, status ON referral
        WHEN NEW.org_id IS NOT OLD.org_id OR NEW.status IS NOT OLD.status
        BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END""",
]


def upgrade():
    op.create_table(
        'referral_tally',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id'],
                                name='fk_referral_tally_org'),
        sa.PrimaryKeyConstraint('org_id', 'status'),
    )
    op.execute(_ADD.format(source='referral'))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for name in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS referral_tally_{name} ON referral")
        for name in ('added', 'removed', 'moved'):
            op.execute(f"DROP FUNCTION IF EXISTS referral_tally_{name}()")
    else:
        for name in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS referral_tally_{name}")
    op.drop_table('referral_tally')
