"""staff_changes: when a staff member last changed, so remembered addresses go stale

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 01:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_changes',
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('staff_id')
    )


def downgrade():
    op.drop_table('staff_changes')
