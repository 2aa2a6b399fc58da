"""drop referral indexes no list reads (issue 15)

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-04

`ix_referral_submitted_at` (submitted_at), from 0004, is the leading column of
`ix_referral_submitted` (submitted_at, id), from 0015: every statement that can use the one can
use the other, and EXPLAIN on SQLite and PostgreSQL over every list's statements
(tests/test_query_plans.py) shows it read by none.

`ix_referral_clock_waiting` (clock, status_changed_at, id), from 0015, was read by one statement:
the queue's amber/red count, and only because it was there; without it both databases answer
that count from `ix_referral_bank_queue` (clock, bank_clock_origin, status) alone, as a covering
index, and every list's plan still reads its page off an index with no sort. No list orders the
bank's referrals by status_changed_at.

Each index on the referral table is paid for on every intake, move (status_changed_at changes
with each) and imported row.

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = "0018"
branch_labels = None
depends_on = None

_DROPPED = (
    ('ix_referral_submitted_at', ['submitted_at']),
    ('ix_referral_clock_waiting', ['clock', 'status_changed_at', 'id']),
)


def upgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name, _columns in _DROPPED:
            batch_op.drop_index(name)


def downgrade():
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name, columns in reversed(_DROPPED):
            batch_op.create_index(name, columns, unique=False)
