"""Alembic is the schema's source: migrating an empty database yields exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from abtest.db import pending_migrations, upgrade


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == []


def test_no_pending_migrations_after_upgrade(engine):
    upgrade(engine)  # idempotent
    assert not pending_migrations(engine)


def test_downgrade_to_base_and_back(tmp_path):
    from alembic import command

    from abtest.db import _alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    command.downgrade(_alembic_config(engine), "base")
    assert pending_migrations(engine)
    upgrade(engine)
    assert not pending_migrations(engine)
