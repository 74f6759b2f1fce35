"""read grants in the read log, recorded object headers and content hash, sealed messages,
retention schedule

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('content_reads', sa.Column('grant_id', sa.String(length=64), nullable=True))
    op.add_column('report_contents', sa.Column('sha256', sa.String(length=64), nullable=True))
    op.add_column('report_contents', sa.Column('header', sa.LargeBinary(), nullable=True))
    op.add_column('evidence', sa.Column('header', sa.LargeBinary(), nullable=True))
    op.create_table('messages',
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['data_keys.report_id'], ),
    sa.PrimaryKeyConstraint('message_id')
    )
    op.create_index(op.f('ix_messages_report_id'), 'messages', ['report_id'], unique=False)
    op.create_table('retention',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=40), nullable=True),
    sa.Column('state_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shred_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('legal_hold', sa.Boolean(), nullable=False),
    sa.Column('hold_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shredded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('report_id')
    )
    op.create_index(op.f('ix_retention_shred_after'), 'retention', ['shred_after'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_retention_shred_after'), table_name='retention')
    op.drop_table('retention')
    op.drop_index(op.f('ix_messages_report_id'), table_name='messages')
    op.drop_table('messages')
    op.drop_column('evidence', 'header')
    op.drop_column('report_contents', 'header')
    op.drop_column('report_contents', 'sha256')
    op.drop_column('content_reads', 'grant_id')
