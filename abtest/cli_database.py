"""The CLI's way into the database, shared by the command modules (abtest.cli, abtest.cli_users)."""

from __future__ import annotations

from typing import Any

from abtest.config import Settings, load_settings
from abtest.errors import AbtestError


def open_database(upgrade_sqlite: bool = True) -> tuple[Settings, Any]:
    """Settings and an engine whose schema is current (SQLite is migrated on the spot)."""
    from abtest.db import make_engine, pending_migrations, upgrade
    from abtest.store.target import attach

    settings = load_settings()
    engine = make_engine(settings.database_url)
    attach(engine, settings.events_url)
    behind = pending_migrations(engine)  # asked first: alembic is imported only to migrate
    if behind and settings.is_sqlite and upgrade_sqlite:
        upgrade(engine)
    elif behind:
        raise AbtestError("the database schema is not up to date; run `abtest db upgrade` first")
    return settings, engine


def safe_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
