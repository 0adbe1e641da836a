"""tree tests and first-click tests: a study's method, trees, right answers and a tree-test trail (issue 19)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('studies') as batch:
        batch.add_column(sa.Column('method', sa.String(length=16), nullable=False, server_default='usability'))
        batch.add_column(sa.Column('seq', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('trees', sa.JSON(), nullable=True))
    with op.batch_alter_table('study_tasks') as batch:
        batch.add_column(sa.Column('correct', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('screens', sa.JSON(), nullable=True))
    with op.batch_alter_table('study_participants') as batch:
        batch.add_column(sa.Column('trail', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('study_participants') as batch:
        batch.drop_column('trail')
    with op.batch_alter_table('study_tasks') as batch:
        batch.drop_column('screens')
        batch.drop_column('correct')
    with op.batch_alter_table('studies') as batch:
        batch.drop_column('trees')
        batch.drop_column('seq')
        batch.drop_column('method')
