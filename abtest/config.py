"""Settings from the environment, declared once in :data:`SETTINGS` and read once.

The table drives the CLI's help and a test that the README documents every setting.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SETTINGS: dict[str, str] = {
    "ABTEST_INSTANCE_PATH": "folder for the default SQLite database and the generated secret key (default: ./instance)",
    "ABTEST_DATABASE_URL": "SQLAlchemy URL of the registry, e.g. postgresql+psycopg://user@host/db (default: SQLite file abtest.db in the instance folder)",
    "ABTEST_EVENTS_URL": "where events are stored and aggregated: chdb:///path (ClickHouse in-process) or clickhouse://user:pass@host:8123/db, needs abtest[clickhouse] (default: the registry database)",
    "ABTEST_SECRET_KEY": "key signing sessions and CSRF tokens (default: generated once and kept in the instance folder)",
}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    secret_key: str
    instance_path: Path
    events_url: str = ""  # empty: the events live in the registry database

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _stored_secret(instance: Path) -> str:
    """A random key generated on first use and kept (mode 0600) so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def normalize_database_url(url: str) -> str:
    """Let people write ``postgresql://``; we talk to PostgreSQL through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    instance = Path(env.get("ABTEST_INSTANCE_PATH") or "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    url = env.get("ABTEST_DATABASE_URL") or f"sqlite:///{instance / 'abtest.db'}"
    secret = env.get("ABTEST_SECRET_KEY") or _stored_secret(instance)
    return Settings(database_url=normalize_database_url(url), secret_key=secret, instance_path=instance,
                    events_url=env.get("ABTEST_EVENTS_URL") or "")
