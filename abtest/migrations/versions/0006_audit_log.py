"""audit log: who created, edited, launched, stopped or archived each test, and what changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

import abtest.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('experiment_id', sa.Integer(), sa.ForeignKey('experiments.id', ondelete='CASCADE'), nullable=False),
        sa.Column('at', abtest.models.UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(200), nullable=False),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=True),
    )
    op.create_index('ix_audit_log_experiment_id', 'audit_log', ['experiment_id'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_experiment_id', table_name='audit_log')
    op.drop_table('audit_log')
