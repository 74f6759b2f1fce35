"""case_references, notifications.held/bundle_id: daily bundles, register references

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_references',
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('case_id')
    )
    op.add_column('notifications', sa.Column('held', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('notifications', sa.Column('bundle_id', sa.String(length=36), nullable=True))
    op.create_index(op.f('ix_notifications_bundle_id'), 'notifications', ['bundle_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_notifications_bundle_id'), table_name='notifications')
    op.drop_column('notifications', 'bundle_id')
    op.drop_column('notifications', 'held')
    op.drop_table('case_references')
