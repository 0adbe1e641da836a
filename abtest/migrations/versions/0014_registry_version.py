"""registry_version: one number that every committed change to the registry rows the public
routes read (experiments, variants, surveys, api_tokens) moves on, kept by triggers (issue 12)

Why: each event batch looked up its key and its experiments again (two queries of the ~13 ms a
request cost). Workers now keep those reads in memory under this number
(:mod:`abtest.store.freshness`) and read only this one row per request; a revoked key or a stopped
experiment changes the number, so no worker ever uses a stale read, whichever process made the
change (the UI, the CLI, another server). Triggers rather than code: every writer is covered.

On PostgreSQL the triggers are deferred constraint triggers, so the counter row is updated at
commit, as the transaction's last lock: two registry edits queue for it instead of deadlocking
against each other's row locks. The number only grows (never reset, never in SQLModel's
metadata), so a cache can never take an old state for a new one.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TABLES = ('experiments', 'variants', 'surveys', 'api_tokens')

_PG_FUNCTION = """
CREATE FUNCTION abtest_bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table('registry_version',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('n', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    op.execute('INSERT INTO registry_version (id, n) VALUES (1, 1)')
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        op.execute(_PG_FUNCTION)
    for table in TABLES:
        if postgres:
            op.execute(f'CREATE CONSTRAINT TRIGGER {table}_bump_registry_version '
                       f'AFTER INSERT OR UPDATE OR DELETE ON {table} DEFERRABLE INITIALLY DEFERRED '
                       'FOR EACH ROW EXECUTE FUNCTION abtest_bump_registry_version()')
            continue
        for change in ('INSERT', 'UPDATE', 'DELETE'):
            op.execute(f'CREATE TRIGGER {table}_bump_registry_version_{change.lower()} AFTER {change} ON {table} '
                       'BEGIN UPDATE registry_version SET n = n + 1 WHERE id = 1; END')


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table in TABLES:
        if postgres:
            op.execute(f'DROP TRIGGER IF EXISTS {table}_bump_registry_version ON {table}')
            continue
        for change in ('insert', 'update', 'delete'):
            op.execute(f'DROP TRIGGER IF EXISTS {table}_bump_registry_version_{change}')
    if postgres:
        op.execute('DROP FUNCTION IF EXISTS abtest_bump_registry_version()')
    op.drop_table('registry_version')
