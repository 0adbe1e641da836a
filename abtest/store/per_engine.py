"""One object per (database engine, name) in this process: the registry caches and the group
committers. Keyed weakly by the engine, so each database keeps its own (tests open SQLite and
PostgreSQL side by side) and an engine's objects go with it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")

_OBJECTS: weakref.WeakKeyDictionary[sa.Engine, dict[str, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def per_engine(engine: sa.Engine, name: str, make: Callable[[], T]) -> T:
    """The process's object ``name`` for ``engine``, made by ``make`` on first use."""
    with _LOCK:
        found = _OBJECTS.setdefault(engine, {})
        if name not in found:
            found[name] = make()
        return found[name]  # type: ignore[no-any-return]
