"""tamper-evident audit: hash chain, head, anchors, checks, denial counters, append-only triggers;
referral retention mark

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-03

Existing entries are linked into the chain in id order here, before the triggers that refuse
UPDATE and DELETE exist. See docs/audit.md.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
BATCH = 5000

PG_GUARD = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
BEGIN
    -- Test clean-up only: a setting its own transaction sets (tests/conftest.py).
    IF current_setting('portal.audit_maintenance', true) = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    -- Linking an entry into the chain as its transaction commits: only the chain's three
    -- columns of a not yet linked entry change.
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL
       AND (NEW.id, NEW.at, NEW.actor_id, NEW.actor_email, NEW.action, NEW.target_type,
            NEW.target_id, NEW.ip, NEW.detail::text)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.at, OLD.actor_id, OLD.actor_email, OLD.action, OLD.target_type,
            OLD.target_id, OLD.ip, OLD.detail::text) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_entry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only();
"""

# portal_audit_maintenance() is registered on the application's own connections only
# (portal/services/audit/guard.py); anywhere else the statement fails as well.
SQLITE_GUARD = [
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       WHEN NOT portal_audit_maintenance()
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
       WHEN NOT portal_audit_maintenance() AND NOT (
           OLD.seq IS NULL AND NEW.id IS OLD.id AND NEW.at IS OLD.at
           AND NEW.actor_id IS OLD.actor_id AND NEW.actor_email IS OLD.actor_email
           AND NEW.action IS OLD.action AND NEW.target_type IS OLD.target_type
           AND NEW.target_id IS OLD.target_id AND NEW.ip IS OLD.ip
           AND NEW.detail IS OLD.detail)
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: UPDATE refused'); END""",
]


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.drop_index('ix_audit_action')
        batch_op.create_index('ix_audit_action', ['action', 'at'], unique=False)
        batch_op.create_index('ix_audit_actor', ['actor_email', 'at'], unique=False)
        batch_op.create_index('ix_audit_target', ['target_type', 'target_id', 'at'],
                              unique=False)
        batch_op.create_index('ix_audit_seq', ['seq'], unique=True)
    op.create_index('ix_audit_unsealed', 'audit_entry', ['id'], unique=False,
                    sqlite_where=sa.text('seq IS NULL'), postgresql_where=sa.text('seq IS NULL'))

    head = op.create_table(
        'audit_chain_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        _ts('updated_at'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'audit_anchor',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        _ts('at'),
        sa.Column('made_by', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'audit_check',
        sa.Column('id', sa.Integer(), nullable=False),
        _ts('at'),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('made_by', sa.String(length=40), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('first_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('entries', sa.BigInteger(), nullable=False),
        sa.Column('broken_seq', sa.BigInteger(), nullable=True),
        sa.Column('problem', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_check_at', 'audit_check', ['at'], unique=False)
    op.create_table(
        'audit_denial_count',
        sa.Column('ip', sa.String(length=64), nullable=False),
        _ts('window_start'),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('ip', 'window_start'),
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymised_at', sa.DateTime(timezone=True),
                                      nullable=True))

    seq, last = _link_existing_entries()
    op.bulk_insert(head, [{"id": 1, "seq": seq, "hash": last,
                           "updated_at": _now()}])

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_GUARD)
    else:
        for statement in SQLITE_GUARD:
            op.execute(statement)


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC)


def _link_existing_entries():
    """Give the entries written before the chain existed their place in it, in id order."""
    from models.audit import entry_hash
    from models.base import UTCDateTime

    bind = op.get_bind()
    table = sa.table('audit_entry', sa.column('id'), sa.column('at', UTCDateTime()),
                     sa.column('actor_id'), sa.column('actor_email'), sa.column('action'),
                     sa.column('target_type'), sa.column('target_id'), sa.column('ip'),
                     sa.column('detail', sa.JSON()), sa.column('seq'),
                     sa.column('prev_hash'), sa.column('hash'))
    seq, last, after = 0, GENESIS, 0
    while True:
        rows = bind.execute(sa.select(table).where(table.c.id > after)
                            .order_by(table.c.id).limit(BATCH)).mappings().all()
        if not rows:
            return seq, last
        updates = []
        for row in rows:
            seq += 1
            fields = {**row, "seq": seq}
            digest = entry_hash(fields, last)
            updates.append({"row_id": row["id"], "s": seq, "p": last, "h": digest})
            last = digest
        bind.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                     .values(seq=sa.bindparam("s"), prev_hash=sa.bindparam("p"),
                             hash=sa.bindparam("h")), updates)
        after = rows[-1]["id"]


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry")
        op.execute("DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION IF EXISTS audit_entry_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_update")
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_column('anonymised_at')
    op.drop_table('audit_denial_count')
    op.drop_index('ix_audit_check_at', table_name='audit_check')
    op.drop_table('audit_check')
    op.drop_table('audit_anchor')
    op.drop_table('audit_chain_head')
    op.drop_index('ix_audit_unsealed', table_name='audit_entry')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_seq')
        batch_op.drop_index('ix_audit_target')
        batch_op.drop_index('ix_audit_actor')
        batch_op.drop_index('ix_audit_action')
        batch_op.create_index('ix_audit_action', ['action'], unique=False)
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
