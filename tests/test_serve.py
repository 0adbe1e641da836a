"""``abtest serve --demo`` as a newcomer runs it: a real server process answering real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "ABTEST_INSTANCE_PATH": str(tmp_path)}
    env.pop("ABTEST_DATABASE_URL", None)
    env.pop("ABTEST_SECRET_KEY", None)
    cmd = [sys.executable, "-c", "from abtest.cli import main; main()", "serve", "--demo", "--port", str(port),
           "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"abtest serve exited early:\n{proc.stdout.read()}")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("abtest serve did not answer within 60 s")
    yield url, tmp_path, proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_serve_demo_answers_and_seeds(demo_server):
    url, instance, proc = demo_server
    with urllib.request.urlopen(url + "/healthz") as response:
        assert json.load(response)["status"] == "ok"
    assert (instance / "abtest.db").exists()
    assert (instance / "secret_key").exists()
    env = {**os.environ, "ABTEST_INSTANCE_PATH": str(instance)}
    env.pop("ABTEST_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", "from abtest.cli import main; main()", "assign",
                          "checkout-button", "alice"], env=env, cwd=instance, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] in {"control", "green"}
    proc.terminate()
    output = proc.communicate(timeout=15)[0]
    assert "demo login: demo@abtest.local" in output
    assert "gunicorn" in output.lower()  # a production WSGI server, not Flask's debug server
