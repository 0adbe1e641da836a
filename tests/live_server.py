"""Start ``abtest serve`` as a real process on a free 127.0.0.1 port, for tests that need real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ABTEST = [sys.executable, "-c", "from web.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def read_output(self) -> None:
        """Drain what the server prints while it runs. Unread, the pipe fills up (64 KiB: a few
        hundred access-log lines) and every worker thread then blocks writing its log line, so
        the server stops answering mid-test."""
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=lambda: self.output.extend(self.process.stdout), daemon=True)
        self._reader.start()

    def stop(self) -> str:
        """Stop the server and return everything it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return "".join(self.output)


def abtest_env(instance: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABTEST_")}
    env["ABTEST_INSTANCE_PATH"] = str(instance)
    if database_url:
        env["ABTEST_DATABASE_URL"] = database_url
    return env


def run_abtest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ABTEST, *args], env=env, cwd=env["ABTEST_INSTANCE_PATH"], capture_output=True,
                          text=True, timeout=120)


def synced_instance(folder: Path, experiments: dict[str, str], token_name: str) -> tuple[Path, dict[str, str], str]:
    """A SQLite instance in ``folder`` with these experiments (key → TOML text) synced through the
    CLI, which also creates the schema, and a public key: (database, environment, key)."""
    database = folder / "x.db"
    env = abtest_env(folder, f"sqlite:///{database}")
    for key, text in experiments.items():
        (folder / f"{key}.toml").write_text(text)
    for args in (["sync", *(str(folder / f"{key}.toml") for key in experiments)],
                 ["token", "create", "--public", "--name", token_name]):
        done = run_abtest(env, *args)
        assert done.returncode == 0, f"abtest {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    public = done.stdout.strip().splitlines()[-1]
    assert public.startswith("pk_")
    return database, env, public


@contextmanager
def app_thread(folder: Path, experiments: dict[str, str], token_name: str) -> Iterator[tuple[str, str, Path]]:
    """The real Flask app, run in this process on 127.0.0.1 (so a test may read its database and
    patch nothing), over a synced SQLite instance: yields (base URL, public key, database)."""
    from werkzeug.serving import make_server

    from abtest.config import Settings
    from web import create_app

    database, _env, key = synced_instance(folder, experiments, token_name)
    app = create_app(Settings(database_url=f"sqlite:///{database}", secret_key="test-secret", instance_path=folder))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", key, database
    finally:
        http.shutdown()


@contextmanager
def live_server(env: dict[str, str], *args: str, workers: int = 2) -> Iterator[LiveServer]:
    port = free_port()
    cmd = [*ABTEST, "serve", "--port", str(port), "--workers", str(workers), *args]
    proc = subprocess.Popen(cmd, env=env, cwd=env["ABTEST_INSTANCE_PATH"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    server = LiveServer(f"http://127.0.0.1:{port}", proc, env)
    server.read_output()
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"abtest serve exited early:\n{server.stop()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"abtest serve did not answer within 60 s:\n{server.stop()}") from None
                time.sleep(0.2)
        yield server
    finally:
        server.stop()


# ---- a running server's workers, seen through Linux /proc -------------------------------------

def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: children of the master process (the server process a test started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == master:
            found.append(int(stat.parent.name))
    return sorted(found)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # exited meanwhile
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _established_on(port: int) -> set[str]:
    """Inodes of the server side of established TCP connections on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                found.add(fields[9])
    return found


def connections_per_worker(master: int, port: int) -> dict[int, int]:
    """How many established client connections on ``port`` each worker of ``master`` holds."""
    established = _established_on(port)
    return {pid: len(_socket_inodes(pid) & established) for pid in worker_pids(master)}
