"""A stored experiment read through the database driver itself (sqlite3, psycopg), for ``abtest assign``.

The command's whole job is one hash of one definition, yet SQLAlchemy and SQLModel take ~0.3 s
to import; with three plain ``SELECT`` statements the command starts in a fifth of that. This
read only answers the common case: an experiment on a current schema, at a URL of the simple
shapes below. Anything else (a study, an unknown key, URL query options, an unreachable or
outdated database) answers ``None`` and the caller takes the ordinary path through the pipeline,
which owns the error messages and migrations. Columns become a definition in
:mod:`abtest.store.columns`, shared with the ORM read, and a test compares the two reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from abtest import schema
from abtest.definitions import ExperimentDef
from abtest.store.columns import core_of, experiment_of

_SQLITE = "sqlite:///"
_PSYCOPG = "postgresql+psycopg://"
_EXPERIMENT_COLUMNS = ("id", "kind", "key", "name", "hypothesis", "status", "seed", "coverage", "analysis", "alpha",
                       "cuped", "namespace_name", "namespace_start", "namespace_end", "targeting", "plan")
_JSON_COLUMNS = {"targeting", "plan", "params"}


@contextmanager
def _connect(url: str) -> Iterator[tuple[Any, str]]:
    """A DB-API connection and its parameter placeholder; ``LookupError`` for a URL not handled here."""
    if "?" in url:  # driver options: SQLAlchemy's to interpret
        raise LookupError(url)
    if url.startswith(_SQLITE) and url != _SQLITE + ":memory:":
        import sqlite3

        path = url[len(_SQLITE):]
        if not os.path.isfile(path):  # the ordinary path creates and migrates it
            raise LookupError(url)
        conn = sqlite3.connect(path, timeout=5)
        try:
            yield conn, "?"
        finally:
            conn.close()
    elif url.startswith(_PSYCOPG):
        import psycopg  # ~0.1 s, the only import left on this path worth naming

        # SQLAlchemy's URL without its dialect is a libpq URI (same percent-encoding).
        with psycopg.connect("postgresql://" + url[len(_PSYCOPG):], connect_timeout=10) as conn:
            yield conn, "%s"
    else:
        raise LookupError(url)


def _rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[SimpleNamespace]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    out = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        for name in _JSON_COLUMNS & values.keys():  # JSON is text on SQLite, parsed already by psycopg
            if isinstance(values[name], str):
                values[name] = json.loads(values[name])
        out.append(SimpleNamespace(**values))
    return out


def load_experiment(url: str, key: str) -> ExperimentDef | None:
    """Experiment ``key`` at database ``url``, or ``None`` when only the ordinary read can answer."""
    try:
        with _connect(url) as (conn, mark):
            stored = {row.version_num for row in _rows(conn, schema.STORED_SQL, ())}
            if not schema.is_current(stored):
                return None
            found = _rows(conn, f"SELECT {', '.join(_EXPERIMENT_COLUMNS)} FROM experiments WHERE key = {mark}", (key,))
            if not found or found[0].kind != "experiment":
                return None
            row = found[0]
            variants = _rows(conn, "SELECT position, key, weight, name, description FROM variants "
                                   f"WHERE experiment_id = {mark}", (row.id,))
            metrics = _rows(conn, f'SELECT position, name, type, params, "primary" FROM metrics '
                                  f"WHERE experiment_id = {mark}", (row.id,))
    except LookupError:
        return None
    except Exception:  # noqa: BLE001 (any driver error: the ordinary path reports it properly)
        return None
    return experiment_of(row, core_of(row, variants), metrics)
