"""usability studies: study settings, tasks and participant progress

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import abtest.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('within_subjects', sa.Boolean(), nullable=False),
    sa.Column('questionnaires', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Boolean(), nullable=False),
    sa.Column('completion_code', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('consent', sa.Text(), nullable=False),
    sa.Column('design_urls', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', name='uq_studies_experiment_id')
    )
    op.create_table('study_participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('pid', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('designs', sa.JSON(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('phase', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('task_started_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('abandoned_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'number', name='uq_study_participants_experiment_number'),
    sa.UniqueConstraint('experiment_id', 'pid', name='uq_study_participants_experiment_pid')
    )
    op.create_table('study_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('start_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('success_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('time_limit', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'key', name='uq_study_tasks_experiment_key')
    )
    op.create_index('ix_study_tasks_experiment_id', 'study_tasks', ['experiment_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_study_tasks_experiment_id', table_name='study_tasks')
    op.drop_table('study_tasks')
    op.drop_table('study_participants')
    op.drop_table('studies')
