"""staff_preferences, digest_counts: reminders and digests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 15:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_preferences',
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('delivery', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=16), nullable=False),
    sa.CheckConstraint("delivery IN ('immediate', 'daily')", name='ck_staff_preferences_delivery'),
    sa.CheckConstraint("digest IN ('daily', 'weekly')", name='ck_staff_preferences_digest'),
    sa.PrimaryKeyConstraint('staff_id')
    )
    op.create_table('digest_counts',
    sa.Column('notification_id', sa.String(length=36), nullable=False),
    sa.Column('units', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('notification_id')
    )


def downgrade():
    op.drop_table('digest_counts')
    op.drop_table('staff_preferences')
