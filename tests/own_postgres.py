"""A PostgreSQL cluster of a test's own (``initdb`` in a temporary folder, on a free port) that the
test can crash and restart: what a shared server cannot be put through."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live_server import free_port


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or ([shutil.which("initdb")] if shutil.which("initdb") else [])
    return Path(found[-1]).parent if found else None


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[], None]]]:
    """A throwaway PostgreSQL cluster on a free port: its URL and a function that crashes it
    (``pg_ctl stop -m immediate``: no shutdown checkpoint, as a power cut) and starts it again."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no initdb (looked in /usr/lib/postgresql/*/bin and PATH): cannot start an own cluster")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root; run the cluster as the postgres account if there is one
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no postgres account to run initdb as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and no runuser to run initdb as postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="abtest-pg-"))
    data, port = folder / "data", free_port()
    if as_user:
        shutil.chown(folder, "postgres")

    def pg(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=timeout)

    def start() -> None:
        done = pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "20",
                  "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=on", "start")
        assert done.returncode == 0, done.stdout + done.stderr + (folder / "log").read_text()

    try:
        done = pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        if done.returncode != 0:
            pytest.skip(f"initdb failed, cannot start an own cluster: {done.stderr.strip()[:300]}")
        start()

        def crash_and_restart() -> None:
            done = pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
            assert done.returncode == 0, done.stderr
            time.sleep(0.5)  # the server answers 503 meanwhile; the clients retry
            start()

        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", crash_and_restart
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
