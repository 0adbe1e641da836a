"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, the app, a seeded experiment.

PostgreSQL tests use a throwaway database created for the test session and dropped after it.
When the server cannot be reached they skip with the reason, unless ABTEST_REQUIRE_POSTGRES=1
(set by .ci/run), in which case they fail: CI must never pass without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from abtest.config import Settings
from abtest.db import make_engine, upgrade
from tests.own_postgres import own_postgres  # noqa: F401 - a fixture: a PostgreSQL cluster a test may crash

POSTGRES_ADMIN_URL = os.environ.get(
    "ABTEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("ABTEST_REQUIRE_POSTGRES") == "1"


def _clear(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    path = tmp_path_factory.mktemp("sqlite") / "abtest.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"abtest_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}".splitlines()[0]
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (ABTEST_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded ClickHouse (chdb) with the events table, for this test session."""
    pytest.importorskip("chdb", reason="chdb (ClickHouse in-process) is not installed: pip install 'abtest[clickhouse]'")
    from abtest.clickhouse.client import connect
    from abtest.clickhouse.schema import create_schema

    url = f"chdb://{tmp_path_factory.mktemp('chdb')}"
    create_schema(connect(url))
    return url


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory, chdb_url: str) -> Iterator[sa.Engine]:
    """A SQLite registry whose events live in chdb (ABTEST_EVENTS_URL=chdb:///…)."""
    from abtest.store.target import attach, detach

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('registry') / 'abtest.db'}")
    upgrade(engine)
    attach(engine, chdb_url)
    yield engine
    detach(engine)
    engine.dispose()


def clear_events_store(engine: sa.Engine) -> None:
    from abtest.clickhouse.schema import truncate_statements
    from abtest.store.target import clickhouse_of

    clickhouse = clickhouse_of(engine)
    if clickhouse is not None:
        for statement in truncate_statements(clickhouse):  # the events and the units
            clickhouse.command(statement)


def backend_engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """The engine named by the fixture's param, emptied before and after the test."""
    engine: sa.Engine = request.getfixturevalue(f"{request.param}_engine")
    _clear(engine)
    clear_events_store(engine)
    yield engine
    _clear(engine)
    clear_events_store(engine)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# The analysis suites also run with the events in ClickHouse (chdb), whose reports must match.
BACKENDS_WITH_CHDB = [*BACKENDS, "chdb"]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """A migrated, empty database; every test that stores something runs on both backends."""
    yield from backend_engine(request)


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def database_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, secret_key="test-secret", instance_path=tmp_path)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for CLI runs against the test database."""
    env = {"ABTEST_DATABASE_URL": database_url, "ABTEST_INSTANCE_PATH": str(tmp_path / "instance"),
           "ABTEST_SECRET_KEY": "test-secret"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def app(settings: Settings, engine: sa.Engine):  # type: ignore[no-untyped-def]
    from web import create_app

    app = create_app(settings, engine=engine)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


CHECKOUT_TOML = """\
key = "checkout-button"
name = "Green checkout button"
status = "running"
[[variants]]
key = "control"
weight = 0.5
[[variants]]
key = "green"
weight = 0.5
[[metrics]]
name = "purchase"
type = "conversion"
primary = true
"""


@pytest.fixture
def seeded_experiment(session: Session):  # type: ignore[no-untyped-def]
    """A running 50/50 checkout-button experiment stored in the registry."""
    import tomllib

    from abtest import pipeline
    from abtest.kinds import parse_definition

    definition = parse_definition(tomllib.loads(CHECKOUT_TOML))
    pipeline.create(session, definition)
    session.commit()
    return definition


DESIGNER = ("designer@example.com", "correct horse battery")


@pytest.fixture
def designer(session):  # type: ignore[no-untyped-def]
    """A designer login stored in the database."""
    from abtest.accounts import create_user

    create_user(session, *DESIGNER)
    session.commit()
    return DESIGNER


def csrf_token_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def logged_in(client, designer):  # type: ignore[no-untyped-def]
    """A test client with a designer session (CSRF tokens are read from the pages it gets)."""
    page = client.get("/login")
    response = client.post("/login", data={"email": designer[0], "password": designer[1],
                                           "csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
