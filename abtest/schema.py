"""Which schema revision this code expects, read from the migration files without importing alembic.

Every CLI command first asks whether the database is current; importing alembic and loading
every migration script to answer that costs ~80 ms, so the answer comes from the ``revision`` /
``down_revision`` lines of the files (a test checks it against alembic's own ``get_heads()``).
Applying migrations still goes through alembic (:func:`abtest.db.upgrade`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")
# The SQL that reads what a database holds (alembic's own table); the same text on every backend.
STORED_SQL = "SELECT version_num FROM alembic_version"


@cache
def head_revisions() -> frozenset[str]:
    """The newest revision(s): those no other migration names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found, down = _REVISION.search(text), _DOWN.search(text)
        if found is None or down is None:
            raise RuntimeError(f"{path.name}: no `revision = ...` / `down_revision = ...` line")
        revisions.add(found.group(1))
        parents.update(_QUOTED.findall(down.group(1)))  # None, 'x' or ('x', 'y') for a merge
    return frozenset(revisions - parents)


def is_current(stored: set[str]) -> bool:
    """Whether the revisions a database holds (the rows of ``alembic_version``) are the heads."""
    return stored == head_revisions()
