"""Alembic environment: runs against the engine handed over by ``abtest.db.upgrade``."""

from alembic import context
from sqlmodel import SQLModel

import abtest.models  # noqa: F401  (registers the tables on the metadata)

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
