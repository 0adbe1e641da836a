"""The CLI starts fast because its heavy imports are lazy (issue 12): `--help`, `power` and an
experiment's `assign` must not load the database layer or the statistics libraries. A later
top-level import anywhere on those paths fails here instead of silently adding ~0.3-1 s.
Timings themselves are measured by tests/benchmarks/bench_cli.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from abtest import pipeline
from abtest.kinds import load_toml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "scipy", "statsmodels", "numpy", "pydantic", "flask", "psycopg")
# Runs the console script's entry point and, at exit, writes the heavy packages it imported.
PROBE = """
import atexit, json, sys
heavy = {heavy!r}
atexit.register(lambda: open({out!r}, "w").write(json.dumps(sorted(
    {{m.split(".")[0] for m in sys.modules}} & set(heavy)))))
from web.cli import main
main({args!r})
"""


def _imported(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> list[str]:
    out = tmp_path / "modules.json"
    code = PROBE.format(heavy=HEAVY, out=str(out), args=args)
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "ABTEST_INSTANCE_PATH": str(tmp_path / "instance"),
               "ABTEST_SECRET_KEY": "test", **(env or {})}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_importing_the_cli_loads_nothing_heavy(tmp_path):
    code = f"import sys, web.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("args", [["--help"], ["power", "--baseline", "0.1", "--mde", "0.02"]])
def test_help_and_power_load_nothing_heavy(tmp_path, args):
    assert _imported(tmp_path, args) == []


def test_assign_reads_without_the_database_layer(tmp_path, session, database_url, engine):
    pipeline.sync(session, [load_toml(ROOT / "experiments" / "checkout-button.toml")])
    session.commit()
    imported = _imported(tmp_path, ["assign", "checkout-button", "alice"], {"ABTEST_DATABASE_URL": database_url})
    # PostgreSQL needs its driver; nothing else heavy on either backend.
    assert imported == (["psycopg"] if engine.dialect.name == "postgresql" else [])


# What a report costs to import: the closed forms (Wilson, adjusted Wald, the SRM chi-square, the
# Welch test) need scipy.special only; statsmodels.stats.proportion with scipy.stats and pandas
# was 0.8 s of `abtest analyze` (1.7 -> 1.1 s in bench_cli when they went).
MODULES = """
import atexit, json, sys
atexit.register(lambda: open({out!r}, "w").write(json.dumps(sorted(
    m for m in sys.modules if m.split(".")[0] in ("statsmodels", "pandas") or m == "scipy.stats"))))
from web.cli import main
main({args!r})
"""


@pytest.mark.parametrize("key", ["checkout-button", "checkout-study"])
def test_analyze_needs_neither_statsmodels_nor_scipy_stats(tmp_path, key):
    from abtest.db import make_engine, upgrade
    from abtest.demo import seed_demo

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    for _line in seed_demo(engine):
        pass
    engine.dispose()
    out = tmp_path / "modules.json"
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "ABTEST_INSTANCE_PATH": str(tmp_path / "instance"),
               "ABTEST_SECRET_KEY": "test", "ABTEST_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-c", MODULES.format(out=str(out), args=["analyze", key])],
                          capture_output=True, text=True, env=environ, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "units: control" in done.stdout or "participants" in done.stdout, done.stdout[:500]
    assert json.loads(out.read_text()) == []


def test_power_for_means_needs_neither_statsmodels_nor_scipy_stats(tmp_path):
    """`abtest power --sd` is the noncentral t on scipy.special, not statsmodels."""
    out = tmp_path / "modules.json"
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "ABTEST_INSTANCE_PATH": str(tmp_path / "instance"),
               "ABTEST_SECRET_KEY": "test"}
    args = ["power", "--sd", "20", "--mde", "3", "--alpha", "0.01", "--power", "0.9"]
    done = subprocess.run([sys.executable, "-c", MODULES.format(out=str(out), args=args)],
                          capture_output=True, text=True, env=environ, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1,325" in done.stdout or "1325" in done.stdout, done.stdout
    assert json.loads(out.read_text()) == []
