"""``abtest serve --demo`` as a newcomer runs it: a real server process answering real HTTP."""

from __future__ import annotations

import json
import urllib.request

from tests.live_server import abtest_env, live_server, run_abtest


def test_serve_demo_answers_and_seeds(tmp_path):
    env = abtest_env(tmp_path)
    with live_server(env, "--demo", workers=1) as server:
        with urllib.request.urlopen(server.url + "/healthz") as response:
            assert json.load(response)["status"] == "ok"
        assert (tmp_path / "abtest.db").exists()
        assert (tmp_path / "secret_key").exists()
        with urllib.request.urlopen(server.url + "/login") as response:
            assert "demo@abtest.local" in response.read().decode()  # --demo reaches the login page
        out = run_abtest(env, "assign", "checkout-button", "alice")
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] in {"control", "green"}
        output = server.stop()
    assert "demo login: demo@abtest.local" in output
    assert "gunicorn" in output.lower()  # a production WSGI server, not Flask's debug server
