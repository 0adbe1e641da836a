"""Running it in production: private files, durable commits, lock contention answered as "busy",
an access log that keeps no query strings, referrers or erased unit ids (or none at all), no
shared gunicorn control socket, and the README's systemd unit."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sqlite3
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from abtest import db
from abtest.config import SETTINGS, load_settings
from abtest.db import is_busy, make_engine, upgrade
from abtest.errors import ValidationError
from tests.live_server import abtest_env, live_server

ROOT = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    """The usual umask (files world-readable unless created otherwise)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_database_wal_and_secret_files_are_private(tmp_path, open_umask):
    settings = load_settings({"ABTEST_INSTANCE_PATH": str(tmp_path / "instance")})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with engine.connect() as conn:  # an open connection keeps the -wal and -shm files
        conn.execute(sa.text("SELECT 1"))
        files = {p.name: mode(p) for p in (tmp_path / "instance").iterdir()}
    engine.dispose()
    assert files == {"abtest.db": 0o600, "abtest.db-wal": 0o600, "abtest.db-shm": 0o600, "secret_key": 0o600}
    assert mode(tmp_path / "instance") == 0o700


def test_an_existing_database_keeps_its_mode(tmp_path, open_umask):
    path = tmp_path / "shared.db"
    sqlite3.connect(path).close()
    path.chmod(0o640)
    make_engine(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o640


def test_sqlite_commits_reach_the_disk_and_the_wal_is_bounded(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == 64 * 1024 * 1024
    engine.dispose()


def test_the_access_log_setting_is_on_or_off(tmp_path):
    base = {"ABTEST_INSTANCE_PATH": str(tmp_path), "ABTEST_SECRET_KEY": "k"}
    assert load_settings(base).access_log
    assert not load_settings({**base, "ABTEST_ACCESS_LOG": "off"}).access_log
    with pytest.raises(ValidationError) as bad:
        load_settings({**base, "ABTEST_ACCESS_LOG": "quiet"})
    assert bad.value.field == "ABTEST_ACCESS_LOG"


# --- lock contention -----------------------------------------------------------------------------


@pytest.fixture
def locked_sqlite(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A migrated SQLite database with a short busy timeout, and a way to hold its write lock."""
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    yield engine, holder
    holder.close()
    engine.dispose()


def test_a_locked_sqlite_database_answers_503_busy_and_logs_it(locked_sqlite, tmp_path, caplog):
    from abtest.accounts import create_token
    from abtest.config import Settings
    from sqlmodel import Session
    from web import create_app

    engine, holder = locked_sqlite
    with Session(engine) as session:
        token = create_token(session, "secret", "t").secret
        session.commit()
    app = create_app(Settings(database_url=str(engine.url), secret_key="k", instance_path=tmp_path), engine=engine)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
    with caplog.at_level(logging.WARNING):
        response = app.test_client().delete("/api/v1/units/alice", headers={"Authorization": f"Bearer {token}"})
    holder.execute("ROLLBACK")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "busy" and error["message"].startswith("busy")
    assert response.headers["Retry-After"] == "2"
    assert any("database busy" in r.getMessage() and "/api/v1/units/" in r.getMessage() for r in caplog.records)


def test_lock_contention_is_told_from_an_unreachable_database(engine, tmp_path):
    """PostgreSQL: a lock timeout is contention; SQLite: "database is locked". A server that is
    not there is not."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as holder, engine.connect() as waiter:
            holder.execute(sa.text("SELECT pg_advisory_lock(4242)"))
            waiter.execute(sa.text("SET lock_timeout = '100ms'"))
            with pytest.raises(sa.exc.OperationalError) as contention:
                waiter.execute(sa.text("SELECT pg_advisory_lock(4242)"))
            holder.execute(sa.text("SELECT pg_advisory_unlock(4242)"))
        unreachable = make_engine(engine.url.set(port=1).render_as_string(hide_password=False))
    else:
        path = tmp_path / "c.db"
        db_engine = make_engine(f"sqlite:///{path}")
        with db_engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with db_engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
            with pytest.raises(sa.exc.OperationalError) as contention:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        holder.close()
        db_engine.dispose()
        unreachable = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")
    assert is_busy(contention.value)
    with pytest.raises(sa.exc.OperationalError) as down:
        unreachable.connect()
    assert not is_busy(down.value)


# --- the real server -----------------------------------------------------------------------------


def _private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = abtest_env(tmp_path / "instance")
    (tmp_path / "instance").mkdir()
    env.pop("XDG_RUNTIME_DIR", None)
    env["HOME"] = str(tmp_path / "home")  # where gunicorn would put its default control socket
    env.update(extra)
    return env


def _get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _delete(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_for(server, text: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while text not in "".join(server.output) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_access_log_keeps_no_query_string_referrer_or_erased_unit(tmp_path):
    env = _private_env(tmp_path)
    with live_server(env, workers=1) as server:
        assert _get(server.url + "/s/checkout-study?pid=alice@example.com",
                    Referer="https://shop.example/account?email=carol@example.com") == 404
        assert _get(server.url + "/api/v1/config?key=pk_not-a-real-key") == 401
        assert _delete(server.url + "/api/v1/units/bob@example.com") == 401
        _wait_for(server, "/api/v1/units/")
        output = server.stop()
    lines = [line for line in output.splitlines() if '" 40' in line]
    assert any('"GET /s/checkout-study HTTP/1.1" 404' in line for line in lines), output
    assert any('"GET /api/v1/config HTTP/1.1" 401' in line for line in lines), output
    assert any('"DELETE /api/v1/units/… HTTP/1.1" 401' in line for line in lines), output
    for secret in ("alice@example.com", "carol@example.com", "bob@example.com", "pk_not-a-real-key", "shop.example"):
        assert secret not in output
    assert not (tmp_path / "home" / ".gunicorn").exists()  # no shared control socket


def test_the_access_log_can_be_turned_off(tmp_path):
    env = _private_env(tmp_path, ABTEST_ACCESS_LOG="off")
    with live_server(env, workers=1) as server:
        assert _get(server.url + "/healthz") == 200
        assert _get(server.url + "/s/checkout-study?pid=alice@example.com") == 404
        time.sleep(0.5)
        output = server.stop()
    assert "/s/checkout-study" not in output and "/healthz" not in output
    assert "Booting worker" in output  # the server's own log still runs


# --- the README's service unit -------------------------------------------------------------------


def test_the_readme_systemd_unit_restarts_on_failure_and_runs_a_valid_command():
    from web.cli import main

    text = (ROOT / "README.md").read_text()
    unit = re.search(r"```ini\n(\[Unit\].*?)\n```", text, re.DOTALL)
    assert unit, "the README lost its systemd unit"
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in unit.group(1).splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
        elif "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            sections[current][name] = value
    service = sections["Service"]
    assert service["Restart"] == "on-failure" and sections["Install"]["WantedBy"] == "multi-user.target"
    assert service["UMask"] == "0077"
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/abtest") and command[1] == "serve"
    serve = main.get_command(None, "serve")  # type: ignore[arg-type]
    assert serve is not None
    serve.make_context("serve", command[2:])  # options `abtest serve` accepts (raises on a bad one)
    names = {assignment.split("=", 1)[0] for assignment in shlex.split(service["Environment"])}
    assert names <= set(SETTINGS), names - set(SETTINGS)
