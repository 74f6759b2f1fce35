"""Initial schema: reports (metadata + receipt hash), spent PoW challenges, reporter sessions, outbox.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:38:48.562886
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('exchange', sa.String(length=100), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False)

    op.create_table('processed_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('consumer', sa.String(length=200), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'consumer')
    )
    op.create_table('reports',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('receipt_hash', sa.String(length=64), nullable=False),
    sa.Column('evidence_count', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('report_id'),
    sa.UniqueConstraint('receipt_hash')
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_unit'), ['unit'], unique=False)

    op.create_table('spent_pow_challenges',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest')
    )
    with op.batch_alter_table('spent_pow_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spent_pow_challenges_expires_at'), ['expires_at'], unique=False)

    op.create_table('reporter_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.report_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('reporter_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reporter_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reporter_sessions_report_id'), ['report_id'], unique=False)



def downgrade():
    with op.batch_alter_table('reporter_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reporter_sessions_report_id'))
        batch_op.drop_index(batch_op.f('ix_reporter_sessions_expires_at'))

    op.drop_table('reporter_sessions')
    with op.batch_alter_table('spent_pow_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spent_pow_challenges_expires_at'))

    op.drop_table('spent_pow_challenges')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_unit'))

    op.drop_table('reports')
    op.drop_table('processed_events')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))

    op.drop_table('outbox')
