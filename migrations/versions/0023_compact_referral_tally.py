"""referral tally: room for its updates on each page, and compacted (issue 15)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05

Every referral written updates a row of `referral_tally` (a few thousand rows). On PostgreSQL
an update writes a new version of the row; with full pages it goes to another page, and a
million-row load left the table at 4.9 MB for 4,342 rows: a bank-wide total read 600 pages
(1.8 ms) instead of 25 (0.5 ms). Half of each page is left free, so that an update stays on its
page (a HOT update, pruned in place), and the table is rewritten compact now; a history import
compacts it again when it ends (services/referral_counts.compact). SQLite updates in place.

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE referral_tally SET (fillfactor = 50)")
        op.execute("CLUSTER referral_tally USING referral_tally_pkey")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE referral_tally RESET (fillfactor)")
