"""per-unit rollups: units, measures, dirty marks (kept by a trigger on events), state

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import abtest.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Every insert into events marks its (experiment, unit) dirty in the same transaction, so the
# rollups can be brought up to date by recomputing just those units. A trigger rather than code
# in abtest.ingest: every writer (the API, the demo, the study runner, a bulk load) is covered.
_SQLITE_TRIGGER = """
CREATE TRIGGER events_mark_rollup_dirty AFTER INSERT ON events
BEGIN
    INSERT INTO rollup_dirty (experiment_id, unit, version) VALUES (NEW.experiment_id, NEW.unit, 1)
    ON CONFLICT (experiment_id, unit) DO UPDATE SET version = version + 1;
END
"""
# PostgreSQL: once per statement over its transition table (one upsert per batch, not per row),
# in a fixed order so concurrent batches lock the same marks in the same order.
_PG_FUNCTION = """
CREATE FUNCTION abtest_mark_rollup_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (experiment_id, unit, version)
    SELECT DISTINCT experiment_id, unit, 1 FROM inserted_events ORDER BY experiment_id, unit
    ON CONFLICT (experiment_id, unit) DO UPDATE SET version = rollup_dirty.version + 1;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER events_mark_rollup_dirty AFTER INSERT ON events
REFERENCING NEW TABLE AS inserted_events FOR EACH STATEMENT EXECUTE FUNCTION abtest_mark_rollup_dirty()
"""


def upgrade() -> None:
    op.create_table('rollup_units',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('variant_lo', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('variant_hi', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('forced', sa.Integer(), nullable=False),
    sa.Column('first_ts', abtest.models.UTCDateTime(), nullable=False),
    sa.Column('first_day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'unit'),
    )
    op.create_table('rollup_measures',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('first_ts', abtest.models.UTCDateTime(), nullable=False),
    sa.Column('first_day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('post', sa.Float(), nullable=False),
    sa.Column('pre', sa.Float(), nullable=False),
    sa.Column('converted_day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('log_n', sa.Integer(), nullable=False),
    sa.Column('log_sum', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'kind', 'name', 'unit'),
    )
    op.create_table('rollup_dirty',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'unit'),
    )
    op.create_table('rollup_state',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.Text(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', abtest.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)
    # Events stored before this migration: every unit starts dirty, so the first refresh of each
    # experiment builds its rollups (run `abtest db rollup` to do that ahead of the first report).
    op.execute('INSERT INTO rollup_dirty (experiment_id, unit, version) '
               'SELECT DISTINCT experiment_id, unit, 1 FROM events')


def downgrade() -> None:
    op.execute('DROP TRIGGER IF EXISTS events_mark_rollup_dirty' +
               (' ON events' if op.get_bind().dialect.name == 'postgresql' else ''))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS abtest_mark_rollup_dirty()')
    op.drop_table('rollup_state')
    op.drop_table('rollup_dirty')
    op.drop_table('rollup_measures')
    op.drop_table('rollup_units')
