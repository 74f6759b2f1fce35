"""the sealed report content kept in its row (report_contents.sealed); object_key only for rows
written before

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('report_contents') as batch:
        batch.add_column(sa.Column('sealed', sa.LargeBinary(), nullable=True))
        batch.alter_column('object_key', existing_type=sa.String(length=64), nullable=True)


def downgrade():
    # a row holding its content inline has no object to point at: downgrading would lose it
    raise NotImplementedError("0003 cannot be downgraded: report content lives in its row")
