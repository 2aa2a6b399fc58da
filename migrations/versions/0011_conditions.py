"""conditions item by item: the items asked of the partner, files linked to their item

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04

The product's checklist stays on every referral as the officer's guide, but only the items the
officer picks are asked of the partner (`stipulation.requested`); an item not on the document
list is named in the officer's words (`stipulation.label`). Each file names the item it answers
(`document.stipulation_id`), so one item takes several files.

The data already there is settled as the new rules would have left it: items the bank asked for
are marked requested, files are linked to the item of their kind, a file left waiting while the
officer reviewed a newer one of its kind is superseded, and a file still waiting on a closed
referral is not_reviewed.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = "0012"
branch_labels = None
depends_on = None

CLOSED = ('disbursed', 'declined', 'withdrawn', 'rejected_duplicate', 'expired', 'refused')


def upgrade():
    with op.batch_alter_table('stipulation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('requested', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stipulation_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_document_stipulation_id', ['stipulation_id'], unique=False)
        batch_op.create_foreign_key('fk_document_stipulation_id', 'stipulation',
                                    ['stipulation_id'], ['id'], ondelete='SET NULL')

    # A request always carried the officer or a note; the intake's checklist carried neither.
    op.execute("UPDATE stipulation SET requested = true "
               "WHERE requested_by_id IS NOT NULL OR note IS NOT NULL")
    op.execute("UPDATE document SET stipulation_id = (SELECT min(s.id) FROM stipulation s "
               "WHERE s.referral_id = document.referral_id AND s.kind = document.kind)")
    op.execute("UPDATE document SET status = 'superseded' WHERE status = 'pending' AND EXISTS ("
               "SELECT 1 FROM document later WHERE later.referral_id = document.referral_id "
               "AND later.kind = document.kind AND later.id > document.id "
               "AND later.status IN ('accepted', 'rejected'))")
    closed = ", ".join(f"'{state}'" for state in CLOSED)
    op.execute("UPDATE document SET status = 'not_reviewed' WHERE status = 'pending' AND "
               f"referral_id IN (SELECT id FROM referral WHERE status IN ({closed}))")  # nosec B608  # fixed states


def downgrade():
    op.execute("UPDATE document SET status = 'pending' "
               "WHERE status IN ('superseded', 'not_reviewed')")
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_constraint('fk_document_stipulation_id', type_='foreignkey')
        batch_op.drop_index('ix_document_stipulation_id')
        batch_op.drop_column('stipulation_id')
    with op.batch_alter_table('stipulation', schema=None) as batch_op:
        batch_op.drop_column('requested')
        batch_op.drop_column('label')
