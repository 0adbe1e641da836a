"""Alembic is the schema's source: migrating an empty database yields exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from abtest.db import pending_migrations, upgrade


# Kept by triggers only and never in the models' metadata, so that nothing that empties "every
# table" (the tests' fixtures, a reset) can set the counter back (abtest.store.freshness).
OUTSIDE_THE_MODELS = {"registry_version"}


def _modelled(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name in OUTSIDE_THE_MODELS)


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _modelled})
        diff = compare_metadata(context, SQLModel.metadata)
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


def test_rollups_built_before_0007_are_rebuilt_to_count_early_conversions(tmp_path):
    """0007 adds ``k_pre``: rollups built before it would report 0 early conversions for ever, so
    the migration marks every unit for a rebuild and the next report counts them."""
    import tomllib
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa
    from sqlmodel import Session

    from abtest import pipeline
    from abtest.db import make_engine
    from abtest.kinds import parse_definition
    from tests.conftest import CHECKOUT_TOML

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0006")
    with Session(engine) as session:
        pipeline.create(session, parse_definition(tomllib.loads(CHECKOUT_TOML)))
        session.commit()
        experiment_id = session.exec(sa.text("SELECT id FROM experiments")).scalar_one()
    t = datetime(2026, 11, 30, 12, tzinfo=UTC)
    rows = [("e1", "exposure", None, t), ("c1", "conversion", "purchase", t - timedelta(hours=1))]
    with engine.begin() as conn:
        for event_id, kind, event, ts in rows:
            conn.execute(sa.text("INSERT INTO events (experiment_id, event_id, type, unit, variant, forced, event, ts, "
                                 "received_at) VALUES (:x, :id, :type, 'ann', 'control', 0, :event, :ts, :ts)"),
                         {"x": experiment_id, "id": event_id, "type": kind, "event": event, "ts": ts})
        # As a refresh under 0006 leaves it: the unit rolled up, no mark left.
        conn.execute(sa.text("DELETE FROM rollup_dirty"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT unit FROM rollup_dirty")).scalars().all() == ["ann"]
    assert pipeline.analyze(engine, "checkout-button", now=t + timedelta(days=1)).before_exposure == {"purchase": 1}


def test_head_read_from_the_files_is_alembics_head():
    """`abtest.schema` reads the head from the migration files so the CLI need not import
    alembic to ask whether a database is current; it must agree with alembic itself."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from abtest.schema import MIGRATIONS, head_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revisions() == frozenset(ScriptDirectory.from_config(config).get_heads())


def test_an_empty_database_has_pending_migrations(tmp_path):
    from abtest.db import make_engine

    assert pending_migrations(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
