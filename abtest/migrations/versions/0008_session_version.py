"""designer sessions: users.session_version, and the failed-login table the throttle counts

Why: a session cookie carries its user's session version; logging out or setting a new password
bumps it, so every cookie issued before (a copied one too) stops working. Failed logins are
counted in the database, not in a worker's memory, so the throttle holds across gunicorn workers.

A plain ADD COLUMN, not a batch copy (a batch operation would recreate the table on SQLite).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

import abtest.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', abtest.models.UTCDateTime(), nullable=False),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('address', sa.String(64), nullable=False),
    )
    op.create_index('ix_login_failures_account_at', 'login_failures', ['account', 'at'])
    op.create_index('ix_login_failures_address_at', 'login_failures', ['address', 'at'])


def downgrade() -> None:
    op.drop_index('ix_login_failures_address_at', table_name='login_failures')
    op.drop_index('ix_login_failures_account_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_column('users', 'session_version')  # SQLite ≥ 3.35 drops a column in place
