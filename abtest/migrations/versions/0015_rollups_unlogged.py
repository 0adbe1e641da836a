"""Rollup tables unlogged on PostgreSQL: derived data skips the write-ahead log (issue 12)

Why: writing a rollup row cost more than computing it. A first report after a bulk load of 1 M
events wrote 48 MB of WAL for the 222 k unit rows alone, and inserting them took 0.55 s against
0.25 s unlogged; every event batch also logged its dirty marks. The rollups are derived from the
events, which stay logged: after a crash PostgreSQL empties every unlogged table (units, measures,
dirty marks and the state rows together, at the end of recovery), an experiment without a state
row is rebuilt from its events by the next report, so nothing can be lost, only recomputed once.
A streaming standby has no rollup rows either; reports run on the primary, which writes them.

SQLite has no such table kind: nothing changes there.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# The state rows go with the rows they describe: a crash empties both or neither.
TABLES = ('rollup_units', 'rollup_measures', 'rollup_dirty', 'rollup_state')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} SET UNLOGGED')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} SET LOGGED')
