"""the bank's branch tree: province, second-level branches, operating branches

Revision ID: 0016
Revises: 0009
Create Date: 2026-12-04

Partners and bank staff belong to a branch; a branch's subtree is a prefix match on its
materialised path ("/1/4/9/"). The province is the root. The free-text branch each partner had
becomes a second-level branch under the root (one per distinct name, its code made from the
name) and the partner is placed in it; then the free-text column goes.

"""
import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = "0014"
branch_labels = None
depends_on = None

ROOT_CODE = 'PROVINCE'
ROOT_NAME = 'Provincial branch'

branch = sa.table('branch', sa.column('id', sa.Integer), sa.column('code', sa.String),
                  sa.column('name', sa.String), sa.column('parent_id', sa.Integer),
                  sa.column('level', sa.Integer), sa.column('model', sa.String),
                  sa.column('path', sa.String), sa.column('created_at', sa.DateTime))
organization = sa.table('organization', sa.column('id', sa.Integer),
                        sa.column('branch', sa.String), sa.column('branch_id', sa.Integer))


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC).replace(tzinfo=None)


def _add(conn, code, name, parent_id, level, parent_path):
    new_id = conn.execute(branch.insert().values(
        code=code, name=name, parent_id=parent_id, level=level, path='/',
        created_at=_now()).returning(branch.c.id)).scalar_one()
    conn.execute(branch.update().where(branch.c.id == new_id)
                 .values(path=f'{parent_path}{new_id}/'))
    return new_id, f'{parent_path}{new_id}/'


def _code_for(name, taken):
    base = re.sub(r'[^A-Z0-9]+', '_', name.upper()).strip('_')[:28] or 'BRANCH'
    if len(base) < 2:
        base = 'BRANCH'
    code, n = base, 1
    while code in taken:
        n += 1
        code = f'{base[:28]}_{n}'
    taken.add(code)
    return code


def upgrade():
    op.create_table(
        'branch',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('parent_id', sa.Integer(), nullable=True),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('model', sa.String(length=30), nullable=True),
        sa.Column('path', sa.String(length=400), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['parent_id'], ['branch.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
    )
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.create_index('ix_branch_parent_id', ['parent_id'], unique=False)
        batch_op.create_index('ix_branch_path', ['path'], unique=False,
                              postgresql_ops={'path': 'text_pattern_ops'})
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('branch_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_organization_branch_id', ['branch_id'], unique=False)
        batch_op.create_foreign_key('fk_organization_branch', 'branch', ['branch_id'], ['id'])
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('branch_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_user_branch_id', ['branch_id'], unique=False)
        batch_op.create_foreign_key('fk_user_branch', 'branch', ['branch_id'], ['id'])

    conn = op.get_bind()
    root_id, root_path = _add(conn, ROOT_CODE, ROOT_NAME, None, 0, '/')
    names = sorted({(n or '').strip() for n in conn.execute(
        sa.select(organization.c.branch).where(organization.c.branch.is_not(None))).scalars()}
        - {''})
    taken = {ROOT_CODE}
    for name in names:
        new_id, _path = _add(conn, _code_for(name, taken), name[:200], root_id, 1, root_path)
        conn.execute(organization.update()
                     .where(sa.func.trim(organization.c.branch) == name)
                     .values(branch_id=new_id))
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('branch')


def downgrade():
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('branch', sa.String(length=100), nullable=True))
    conn = op.get_bind()
    # Back to free text: each partner keeps the name of the branch it was in (not the root's).
    conn.execute(organization.update().values(branch=sa.select(branch.c.name).where(
        branch.c.id == organization.c.branch_id, branch.c.parent_id.is_not(None))
        .scalar_subquery()))
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_constraint('fk_user_branch', type_='foreignkey')
        batch_op.drop_index('ix_user_branch_id')
        batch_op.drop_column('branch_id')
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_constraint('fk_organization_branch', type_='foreignkey')
        batch_op.drop_index('ix_organization_branch_id')
        batch_op.drop_column('branch_id')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_index('ix_branch_path')
        batch_op.drop_index('ix_branch_parent_id')
    op.drop_table('branch')
