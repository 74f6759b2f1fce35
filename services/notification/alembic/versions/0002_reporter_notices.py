"""reporter notices: case_reports (case -> report ids), reporter_news (news waiting, last notice day)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 14:50:00

No address column anywhere: a reporter's address is read from storage at send time.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_reports',
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('case_id')
    )
    op.create_index(op.f('ix_case_reports_report_id'), 'case_reports', ['report_id'], unique=False)
    op.create_table('reporter_news',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('news_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_notice_day', sa.Date(), nullable=True),
    sa.Column('no_contact', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('report_id')
    )
    op.create_index(op.f('ix_reporter_news_news_since'), 'reporter_news', ['news_since'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_reporter_news_news_since'), table_name='reporter_news')
    op.drop_table('reporter_news')
    op.drop_index(op.f('ix_case_reports_report_id'), table_name='case_reports')
    op.drop_table('case_reports')
