"""rollup_units and rollup_measures lose their foreign key to experiments

Why: on PostgreSQL the key is checked row by row, by a trigger per inserted row, and that check
was three quarters of the time a rollup build spent writing unit rows (3 s of 4.2 s at a million
events). The rows are derived data written only by a refresh, from events whose own foreign key
already guarantees the experiment; experiments are archived, never deleted. The marks
(rollup_dirty) and the state row keep theirs.

SQLite recreates the two tables (batch mode) to drop the key; the events trigger writes only
rollup_dirty, so it is not affected.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TABLES = ('rollup_units', 'rollup_measures')
# SQLite's keys have no name; reflected under this convention they get PostgreSQL's default one.
NAMING = {'fk': '%(table_name)s_%(column_0_name)s_fkey'}


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(f'{table}_experiment_id_fkey', type_='foreignkey')


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(f'{table}_experiment_id_fkey', 'experiments', ['experiment_id'], ['id'],
                                     ondelete='CASCADE')
