"""product rate tables: one annual rate per band of terms, for partners' quotes

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-04

Reference data, like the products themselves: every installation gets the bank's published
rates, which an administrator then keeps current (admin: Products and rates).

"""
from decimal import Decimal

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = "0011"
branch_labels = None
depends_on = None


RATES = [
    # product, shortest term, longest term (months, inclusive), percent a year
    ('housing_mortgage', 1, 60, '3.050'),
    ('housing_mortgage', 61, 360, '3.100'),
    ('auto_loan', 1, 12, '3.600'),
    ('auto_loan', 13, 36, '3.900'),
    ('auto_loan', 37, 60, '4.200'),
    ('study_abroad_loan', 1, 60, '3.800'),
    ('study_abroad_loan', 61, 120, '4.100'),
    ('consumer_loan', 1, 12, '3.450'),
    ('consumer_loan', 13, 60, '3.850'),
]


def upgrade():
    rate = op.create_table(
        'product_rate',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_code', sa.String(length=40), nullable=False),
        sa.Column('min_term_months', sa.Integer(), nullable=False),
        sa.Column('max_term_months', sa.Integer(), nullable=False),
        sa.Column('annual_rate', sa.Numeric(precision=6, scale=3), nullable=False),
        sa.CheckConstraint('min_term_months >= 1 AND max_term_months >= min_term_months',
                           name='ck_product_rate_terms'),
        sa.ForeignKeyConstraint(['product_code'], ['product.code'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('product_code', 'min_term_months', name='uq_product_rate_band'),
    )
    with op.batch_alter_table('product_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_rate_product_code'), ['product_code'],
                              unique=False)
    known = {row[0] for row in op.get_bind().execute(sa.text('SELECT code FROM product'))}
    op.bulk_insert(rate, [
        dict(product_code=code, min_term_months=low, max_term_months=high,
             annual_rate=Decimal(percent))
        for code, low, high, percent in RATES if code in known])


def downgrade():
    with op.batch_alter_table('product_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_rate_product_code'))
    op.drop_table('product_rate')
