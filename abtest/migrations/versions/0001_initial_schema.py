"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import abtest.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('hypothesis', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('coverage', sa.Float(), nullable=False),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('analysis', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('alpha', sa.Float(), nullable=False),
    sa.Column('cuped', sa.Boolean(), nullable=False),
    sa.Column('namespace_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('namespace_start', sa.Float(), nullable=True),
    sa.Column('namespace_end', sa.Float(), nullable=True),
    sa.Column('targeting', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('created_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stopped_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('archived_at', abtest.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('task', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('success', sa.Boolean(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('questionnaire', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=True),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('ts', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', abtest.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index('ix_events_experiment_type_unit', 'events', ['experiment_id', 'type', 'unit'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('task', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('primary', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'name', name='uq_metrics_experiment_name')
    )
    op.create_index('ix_metrics_experiment_id', 'metrics', ['experiment_id'], unique=False)

    op.create_table('variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'key', name='uq_variants_experiment_key')
    )
    op.create_index('ix_variants_experiment_id', 'variants', ['experiment_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_variants_experiment_id', table_name='variants')

    op.drop_table('variants')
    op.drop_index('ix_metrics_experiment_id', table_name='metrics')

    op.drop_table('metrics')
    op.drop_index('ix_events_experiment_type_unit', table_name='events')

    op.drop_table('events')
    op.drop_table('users')
    op.drop_table('experiments')
    op.drop_table('api_tokens')