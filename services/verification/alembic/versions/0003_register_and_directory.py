"""Register numbers (cases.reference, case_register), unit time zones and disabling, the forced
password change after an administrator's reset, and the index the case list sorts by.

Cases opened before this revision get their reference here, numbered per register and year in
the order they were opened, and the counters continue after them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('case_register',
    sa.Column('inspectorate', sa.String(length=64), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('inspectorate', 'year')
    )
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('reference', sa.String(length=80), nullable=True))
        batch.create_unique_constraint('cases_reference_key', ['reference'])
    op.create_index('ix_cases_created_at', 'cases', ['created_at'], unique=False)
    with op.batch_alter_table('units') as batch:
        batch.add_column(sa.Column('timezone', sa.String(length=32), server_default='Asia/Jakarta', nullable=False))
        batch.add_column(sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False))
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.text('false'),
                                   nullable=False))
    _number_existing_cases()


def _number_existing_cases():
    """Give every existing case its register number, oldest first (``verification.register``)."""
    from verification import register, routing

    bind = op.get_bind()
    units = {code: routing.UnitNode(code, parent, bool(insp)) for code, parent, insp in
             bind.execute(sa.text("SELECT code, parent_code, inspectorate FROM units"))}
    counters: dict = {}
    rows = bind.execute(sa.text("SELECT case_id, unit, escalated, created_at FROM cases "
                                "ORDER BY created_at, case_id")).all()
    for case_id, unit, escalated, created_at in rows:
        inspectorate = unit if escalated else routing.inspectorate_of(units, unit)
        code = register.register_code(units, unit, inspectorate)
        year = created_at.year if created_at.tzinfo is None else register.register_year(created_at)
        counters[(code, year)] = counters.get((code, year), 0) + 1
        bind.execute(sa.text("UPDATE cases SET reference = :r WHERE case_id = :c"),
                     {"r": register.format_reference(code, year, counters[(code, year)]), "c": case_id})
    for (code, year), last in counters.items():
        bind.execute(sa.text("INSERT INTO case_register (inspectorate, year, last) VALUES (:i, :y, :l)"),
                     {"i": code, "y": year, "l": last})


def downgrade():
    with op.batch_alter_table('staff') as batch:
        batch.drop_column('must_change_password')
    with op.batch_alter_table('units') as batch:
        batch.drop_column('active')
        batch.drop_column('timezone')
    op.drop_index('ix_cases_created_at', table_name='cases')
    with op.batch_alter_table('cases') as batch:
        batch.drop_constraint('cases_reference_key', type_='unique')
        batch.drop_column('reference')
    op.drop_table('case_register')
