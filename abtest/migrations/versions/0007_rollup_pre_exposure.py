"""rollups count conversions stamped before their unit's first exposure (k_pre)

Why: such conversions count 0 in every metric, and the report says how many there were instead
of dropping them silently. Every unit is marked dirty, so the next report rebuilds the rollups
with the new column filled (``abtest db rollup`` does it ahead of time).

A plain ADD COLUMN, not a batch copy: on SQLite a batch operation recreates the table, and the
events trigger that marks rollups dirty would have to be recreated with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('rollup_measures', sa.Column('k_pre', sa.Integer(), nullable=False, server_default='0'))
    op.execute('DELETE FROM rollup_dirty')
    op.execute('INSERT INTO rollup_dirty (experiment_id, unit, version) '
               'SELECT DISTINCT experiment_id, unit, 1 FROM events')


def downgrade() -> None:
    op.drop_column('rollup_measures', 'k_pre')  # SQLite ≥ 3.35 drops a column in place
