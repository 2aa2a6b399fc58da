"""accounts: one-time passwords, TOTP second factor, recovery codes, reset links, session
authentication time, shared login throttles (issue 10)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Sessions from before this revision end: they have no time of authentication, which sensitive
actions now check.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _ts(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_must_change', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(_ts('password_expires_at', nullable=True))
        batch_op.add_column(_ts('password_changed_at', nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=300), nullable=True))
        batch_op.add_column(_ts('totp_enabled_at', nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))

    op.execute("DELETE FROM user_session")
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(_ts('authenticated_at'))

    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        _ts('created_at'),
        _ts('used_at', nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code_hash', name='uq_recovery_code_code_hash'),
    )
    with op.batch_alter_table('recovery_code', schema=None) as batch_op:
        batch_op.create_index('ix_recovery_code_user_id', ['user_id'], unique=False)

    op.create_table(
        'password_reset_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        _ts('created_at'),
        _ts('expires_at'),
        _ts('used_at', nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash', name='uq_password_reset_token_token_hash'),
    )
    with op.batch_alter_table('password_reset_token', schema=None) as batch_op:
        batch_op.create_index('ix_password_reset_token_user_id', ['user_id'], unique=False)

    op.create_table(
        'throttle',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        _ts('window_ends_at'),
        _ts('locked_until', nullable=True),
        sa.PrimaryKeyConstraint('key'),
    )
    with op.batch_alter_table('throttle', schema=None) as batch_op:
        batch_op.create_index('ix_throttle_window_ends_at', ['window_ends_at'], unique=False)


def downgrade():
    op.drop_table('throttle')
    op.drop_table('password_reset_token')
    op.drop_table('recovery_code')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_column('authenticated_at')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('password_expires_at')
        batch_op.drop_column('password_must_change')
