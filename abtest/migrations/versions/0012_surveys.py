"""surveys: a survey's settings beside its experiments row (issue 17)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'surveys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=False),
        sa.Column('linked_key', sa.String(length=64), nullable=True),
        sa.Column('pages', sa.JSON(), nullable=False),
        sa.Column('show', sa.String(length=16), nullable=False),
        sa.Column('delay', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=64), nullable=True),
        sa.Column('share', sa.Float(), nullable=False),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('questions', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('experiment_id', name='uq_surveys_experiment_id'),
    )


def downgrade() -> None:
    op.drop_table('surveys')
