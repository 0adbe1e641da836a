"""segments and metric types: event attributes, each unit's first-exposure attributes, metric params

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# A metric's type-specific parameters (event, task, days, and those of later types) move from one
# column each into one JSON object, so a new metric type needs no new column.
_PARAMS = ("event", "task", "days")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): on SQLite a table copy would drop the rollup trigger.
    op.add_column('events', sa.Column('attributes', sa.JSON(), nullable=True))
    # JSONB on PostgreSQL: a breakdown extracts one attribute per unit, and parsing JSON text for
    # each of them cost 3x the whole report at 1 M events.
    op.add_column('rollup_units', sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                                            nullable=True))
    op.add_column('metrics', sa.Column('params', sa.JSON(), nullable=True))
    metrics = sa.table('metrics', sa.column('id', sa.Integer), sa.column('params', sa.JSON),
                       *(sa.column(name) for name in _PARAMS))
    conn = op.get_bind()
    for row in conn.execute(sa.select(metrics.c.id, *(metrics.c[name] for name in _PARAMS))).all():
        params = {name: value for name, value in zip(_PARAMS, row[1:]) if value is not None}
        conn.execute(metrics.update().where(metrics.c.id == row[0]).values(params=params))
    with op.batch_alter_table('metrics') as batch_op:
        batch_op.alter_column('params', existing_type=sa.JSON(), nullable=False)
        for name in _PARAMS:
            batch_op.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table('metrics') as batch_op:
        batch_op.add_column(sa.Column('event', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('task', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('days', sa.Integer(), nullable=True))
    metrics = sa.table('metrics', sa.column('id', sa.Integer), sa.column('params', sa.JSON),
                       *(sa.column(name) for name in _PARAMS))
    conn = op.get_bind()
    for metric_id, params in conn.execute(sa.select(metrics.c.id, metrics.c.params)).all():
        conn.execute(metrics.update().where(metrics.c.id == metric_id)
                     .values(**{name: (params or {}).get(name) for name in _PARAMS}))
    with op.batch_alter_table('metrics') as batch_op:
        batch_op.drop_column('params')
    op.drop_column('rollup_units', 'attributes')
    op.drop_column('events', 'attributes')
