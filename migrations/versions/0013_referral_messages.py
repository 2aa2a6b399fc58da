"""messages on a referral between the partner and the bank

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-04

A thread per referral: who wrote each message (the partner's side or the bank's), its text (for
both sides) and when the other side read it.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'referral_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('side', sa.String(length=10), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('read_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['author_id'], ['user.id']),
        sa.ForeignKeyConstraint(['read_by_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('referral_message', schema=None) as batch_op:
        batch_op.create_index('ix_referral_message_referral', ['referral_id', 'id'], unique=False)
        batch_op.create_index('ix_referral_message_unread', ['side', 'read_at'], unique=False)


def downgrade():
    with op.batch_alter_table('referral_message', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_message_unread')
        batch_op.drop_index('ix_referral_message_referral')
    op.drop_table('referral_message')
