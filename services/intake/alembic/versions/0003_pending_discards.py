"""pending_discards: refused submissions whose stored parts storage could not yet be told to discard.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pending_discards',
        sa.Column('report_id', sa.String(length=36), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('report_id'),
    )


def downgrade():
    op.drop_table('pending_discards')
