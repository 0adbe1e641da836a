"""Settings from the environment, declared once in :data:`SETTINGS` and read once.

The table drives the CLI's help and a test that the README documents every setting.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from abtest.errors import ValidationError

SETTINGS: dict[str, str] = {
    "ABTEST_INSTANCE_PATH": "folder for the default SQLite database and the generated secret key (default: ./instance)",
    "ABTEST_DATABASE_URL": "SQLAlchemy URL of the registry, e.g. postgresql+psycopg://user@host/db (default: SQLite file abtest.db in the instance folder)",
    "ABTEST_EVENTS_URL": "where events are stored and aggregated: chdb:///path (ClickHouse in-process) or clickhouse://user:pass@host:8123/db, needs abtest[clickhouse] (default: the registry database)",
    "ABTEST_CLICKHOUSE_CLUSTER": "with ABTEST_EVENTS_URL on a ClickHouse cluster: its name in remote_servers; abtest db upgrade then creates, ON CLUSTER, events_local (ReplicatedReplacingMergeTree) on every shard and events (Distributed over them); see abtest db clickhouse-sql (default: empty, one server)",
    "ABTEST_SECRET_KEY": "key signing sessions and CSRF tokens (default: generated once and kept in the instance folder)",
    "ABTEST_SESSION_IDLE_MINUTES": "a designer session unused this long ends and asks for the password again (default: 480, i.e. 8 hours; every session ends 14 days after its login anyway)",
    "ABTEST_ACCESS_LOG": "on (default: one line per request, without query string or Referer) or off",
    "ABTEST_RATELIMIT_ADDRESS": "most requests to /api/v1/events and /api/v1/assign per client address with a public key (default: 600/minute)",
    "ABTEST_RATELIMIT_KEY": "most requests to /api/v1/events and /api/v1/assign per public key, all addresses together (default: 30000/minute)",
    "ABTEST_RATELIMIT_URL": "where rate-limit counters live: memory:// (default, one process) or redis://host:6379 shared by every worker (needs the redis package)",
    "ABTEST_SURVEY_QUIET_DAYS": "after any survey prompt, a visitor is shown no other for this many days (default: 14; 0: no quiet period)",
    "ABTEST_TRUSTED_PROXIES": "how many reverse proxies in front of the app set X-Forwarded-For/-Proto; the client address is read from them (default: 0, the socket's address)",
}

DEFAULT_SESSION_IDLE_MINUTES = 480
DEFAULT_SURVEY_QUIET_DAYS = 14
# An API request that waited this long for a free server thread is answered 503 at once (the
# worker is overloaded; the client retries) instead of being served seconds late.
DEFAULT_QUEUE_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    secret_key: str
    instance_path: Path
    session_idle_minutes: int = DEFAULT_SESSION_IDLE_MINUTES
    # Set by ``abtest serve --demo`` only (never from the environment): the login page may then
    # show the demo login.
    demo: bool = False
    access_log: bool = True
    ratelimit_address: str = "600/minute"
    ratelimit_key: str = "30000/minute"
    ratelimit_url: str = "memory://"
    trusted_proxies: int = 0
    events_url: str = ""  # empty: the events live in the registry database
    clickhouse_cluster: str = ""  # empty: one ClickHouse server (abtest.clickhouse.schema)
    survey_quiet_days: int = DEFAULT_SURVEY_QUIET_DAYS
    queue_timeout_ms: int = DEFAULT_QUEUE_TIMEOUT_MS

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


def _idle_minutes(raw: str | None) -> int:
    if not raw:
        return DEFAULT_SESSION_IDLE_MINUTES
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if minutes < 1:
        raise ValidationError(f"{raw!r} is not a whole number of minutes (at least 1)",
                              field="ABTEST_SESSION_IDLE_MINUTES")
    return minutes


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    instance = Path(env.get("ABTEST_INSTANCE_PATH") or "instance").resolve()
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the database and the key
    url = env.get("ABTEST_DATABASE_URL") or f"sqlite:///{instance / 'abtest.db'}"
    secret = env.get("ABTEST_SECRET_KEY") or _stored_secret(instance)
    proxies = env.get("ABTEST_TRUSTED_PROXIES") or "0"
    if not proxies.isdigit():
        raise ValidationError(f"ABTEST_TRUSTED_PROXIES must be a whole number of proxies, not {proxies!r}",
                              field="ABTEST_TRUSTED_PROXIES")
    defaults = Settings("", "", instance)
    return Settings(database_url=normalize_database_url(url), secret_key=secret, instance_path=instance,
                    session_idle_minutes=_idle_minutes(env.get("ABTEST_SESSION_IDLE_MINUTES")),
                    access_log=_on_off(env, "ABTEST_ACCESS_LOG", True),
                    ratelimit_address=env.get("ABTEST_RATELIMIT_ADDRESS") or defaults.ratelimit_address,
                    ratelimit_key=env.get("ABTEST_RATELIMIT_KEY") or defaults.ratelimit_key,
                    ratelimit_url=env.get("ABTEST_RATELIMIT_URL") or defaults.ratelimit_url,
                    trusted_proxies=int(proxies), events_url=env.get("ABTEST_EVENTS_URL") or "",
                    clickhouse_cluster=(env.get("ABTEST_CLICKHOUSE_CLUSTER") or "").strip(),
                    survey_quiet_days=_whole(env, "ABTEST_SURVEY_QUIET_DAYS", DEFAULT_SURVEY_QUIET_DAYS, 3650, "days"),
                    queue_timeout_ms=_whole(env, "ABTEST_QUEUE_TIMEOUT_MS", DEFAULT_QUEUE_TIMEOUT_MS, 600_000,
                                            "milliseconds"))


def _whole(env: Mapping[str, str], name: str, default: int, most: int, unit: str) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.strip().isdigit() or int(raw) > most:
        raise ValidationError(f"{raw!r} is not a whole number of {unit} from 0 to {most}", field=name)
    return int(raw)


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value not in ("on", "off"):
        raise ValidationError(f"{name} is on or off, not {value!r}", field=name)
    return value == "on"
