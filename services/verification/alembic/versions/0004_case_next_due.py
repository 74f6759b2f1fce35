"""cases.next_due_at: the earliest due time of a case's running clocks, indexed, so the case
list sorts 100,000 cases by deadline without aggregating every clock on each page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 14:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('cases', sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_cases_next_due_at'), 'cases', ['next_due_at'], unique=False)
    op.execute("UPDATE cases SET next_due_at = (SELECT min(due_at) FROM case_clocks "
               "WHERE case_clocks.case_id = cases.case_id AND case_clocks.stopped_at IS NULL)")


def downgrade():
    op.drop_index(op.f('ix_cases_next_due_at'), table_name='cases')
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('next_due_at')
