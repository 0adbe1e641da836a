"""api_tokens.origins: the web origins a public key may be used from (NULL: any)

Revision ID: 0010
Revises: 0008 (rechain after 0009 when merging)
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: a plain ADD COLUMN on SQLite and PostgreSQL alike.
    op.add_column('api_tokens', sa.Column('origins', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) drops a plain column in place.
    op.drop_column('api_tokens', 'origins')
