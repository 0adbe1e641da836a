"""The ClickHouse client seam: one SQL dialect, two ways to reach the engine.

``chdb:///path`` runs ClickHouse's engine inside this process (one machine, and the tests);
``clickhouse://user:pass@host:8123/db`` talks HTTP to a server or cluster through
``clickhouse-connect`` (``clickhouses://`` for TLS). Every query is written once with ClickHouse's
``{name:Type}`` parameters and answered as rows of Python values by either client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from abtest.errors import AbtestError, Unavailable

Params = Mapping[str, Any]
# How rows are inserted: a JSON array of column values per line (the column names once, in the
# INSERT). Against JSONEachRow objects, a batch of 1,000 events inserts in 17.6 instead of 19.1 ms
# into chdb, and the lines are built faster.
FORMAT = "JSONCompactEachRow"


class EventsUnavailable(Unavailable):
    """ClickHouse did not acknowledge a write or answer a read: nothing may be assumed stored, so
    the same batch (same ids) may be retried."""


class ClickHouseClient(Protocol):
    database: str

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        """Rows of a SELECT, as Python values (datetimes aware UTC, NULL as None)."""
        ...

    def command(self, sql: str, params: Params | None = None) -> None:
        """A statement without rows (DDL, ALTER)."""
        ...

    def insert_json(self, table: str, columns: Sequence[str], lines: Sequence[str]) -> None:
        """Insert ``lines`` (one JSON array of the ``columns``' values each: :data:`FORMAT`);
        returns only once ClickHouse has written them."""
        ...


def is_clickhouse_url(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0] in ("chdb", "clickhouse", "clickhouses")  # type: ignore[union-attr]


def text_param(value: Any) -> str:
    """A parameter value in ClickHouse's text form (what chdb expects for ``{name:Type}``)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_quoted(v) for v in value) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _quoted(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error(exc: Exception) -> AbtestError:
    return EventsUnavailable(f"the events store is unavailable; retry later with the same event ids ({str(exc)[:200]})",
                             field=None)


_SESSIONS: dict[str, tuple[Any, threading.Lock]] = {}


class ChdbClient:
    """ClickHouse embedded in the process (``chdb``). chdb serves one data folder per process,
    so every URL on it shares one session; ``?db=NAME`` picks a database in it (default abtest)."""

    def __init__(self, path: str, database: str = "abtest") -> None:
        if not database.isidentifier():
            raise AbtestError(f"{database!r} is not a database name", field="ABTEST_EVENTS_URL")
        self.path, self.database = path, database
        if path not in _SESSIONS:
            from chdb import session  # the optional extra: imported only when configured

            if _SESSIONS:
                raise AbtestError(f"chdb already serves {next(iter(_SESSIONS))} in this process; one folder per "
                                  "process (use ?db=NAME for another database in it)", field="ABTEST_EVENTS_URL")
            _SESSIONS[path] = (session.Session(path), threading.Lock())
        self._session, self._lock = _SESSIONS[path]
        self.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                table = self._session.query(sql, "ArrowTable", params=_texts(params))
            except Exception as exc:  # chdb raises its own error type for every failure
                raise _error(exc) from exc
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def command(self, sql: str, params: Params | None = None) -> None:
        with self._lock:
            try:
                self._session.query(sql, "CSV", params=_texts(params))
            except Exception as exc:
                raise _error(exc) from exc

    def insert_json(self, table: str, columns: Sequence[str], lines: Sequence[str]) -> None:
        if lines:
            self.command(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT {FORMAT}\n" + "\n".join(lines))


def _texts(params: Params | None) -> dict[str, str] | None:
    return {name: text_param(value) for name, value in params.items()} if params else None


class HttpClient:
    """A ClickHouse server (or a cluster's entry node) over HTTP, through ``clickhouse-connect``."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect  # the optional extra

        parts = urlsplit(url)
        self.database = database_of(url)
        self._client = clickhouse_connect.get_client(
            host=parts.hostname or "localhost", port=parts.port or 8123, username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""), database=self.database, secure=parts.scheme == "clickhouses",
            # Synchronous inserts: the HTTP answer comes once the rows are in a part on disk, on
            # every shard they go to when the table is Distributed (a cluster; otherwise queued on
            # the node asked and sent later). insert_distributed_sync is the name every server
            # knows (newer ones also call it distributed_foreground_insert); one server ignores it.
            settings={"async_insert": 0, "insert_distributed_sync": 1})
        self._lock = threading.Lock()  # one HTTP session serves one query at a time

    def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                rows = self._client.query(sql, parameters=dict(params or {})).result_rows
        except Exception as exc:
            raise _error(exc) from exc
        return [tuple(_aware(v) for v in row) for row in rows]

    def command(self, sql: str, params: Params | None = None) -> None:
        try:
            with self._lock:
                self._client.command(sql, parameters=dict(params or {}))
        except Exception as exc:
            raise _error(exc) from exc

    def insert_json(self, table: str, columns: Sequence[str], lines: Sequence[str]) -> None:
        if not lines:
            return
        try:
            with self._lock:
                self._client.raw_insert(table, list(columns), insert_block=("\n".join(lines)).encode(),
                                        fmt=FORMAT)
        except Exception as exc:
            raise _error(exc) from exc


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_CLIENTS: dict[str, ClickHouseClient] = {}
_CLIENTS_LOCK = threading.Lock()


def database_of(url: str) -> str:
    """The database a ClickHouse URL names, without connecting: ``?db=`` for chdb (default
    abtest), the path for a server (default ``default``)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        options = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        return options.get("db", "abtest")
    return (parts.path or "/").strip("/") or "default"


def connect(url: str) -> ClickHouseClient:
    """The client for ``url``, one per URL and process (chdb holds its data folder open)."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            scheme = url.split(":", 1)[0]
            if scheme == "chdb":
                parts = urlsplit(url)
                if not parts.path.startswith("/") or parts.netloc:
                    raise AbtestError(f"{url!r}: write chdb:///absolute/path", field="ABTEST_EVENTS_URL")
                client = ChdbClient(parts.path, database_of(url))
            elif scheme in ("clickhouse", "clickhouses"):
                client = HttpClient(url)
            else:
                raise AbtestError(f"{url!r} is not a ClickHouse URL (chdb:///path or clickhouse://host:8123/db)",
                                  field="ABTEST_EVENTS_URL")
            _CLIENTS[url] = client
        return client


# One encoder for every line: json.dumps with options builds a new one per call (a third of its time).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(row: Any) -> str:
    """One line of JSON (a :data:`FORMAT` line when ``row`` is a list of column values)."""
    return _ENCODER.encode(row)
