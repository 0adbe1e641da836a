"""Where a registry's events live: in its own database (the default) or in ClickHouse.

``ABTEST_EVENTS_URL`` names the events store; :func:`attach` binds it to the registry engine
once (the app factory and the CLI do), and the write path, the aggregate source and the export
ask :func:`clickhouse_of` instead of reading settings themselves.
"""

from __future__ import annotations

import weakref

import sqlalchemy as sa

from abtest.clickhouse.client import ClickHouseClient, connect, is_clickhouse_url

_ATTACHED: weakref.WeakKeyDictionary[sa.Engine, str] = weakref.WeakKeyDictionary()


def attach(engine: sa.Engine, events_url: str | None) -> None:
    """Keep this registry's events at ``events_url`` (a ClickHouse URL; anything else, or
    nothing: the registry database itself)."""
    if is_clickhouse_url(events_url):
        _ATTACHED[engine] = str(events_url)


def detach(engine: sa.Engine) -> None:
    _ATTACHED.pop(engine, None)


def events_elsewhere(engine: sa.Engine) -> bool:
    """Whether this registry's events live in ClickHouse (without connecting to it)."""
    return engine in _ATTACHED


def clickhouse_of(engine: sa.Engine) -> ClickHouseClient | None:
    """The ClickHouse client holding this registry's events, or None (they are in the registry)."""
    url = _ATTACHED.get(engine)
    return connect(url) if url is not None else None
