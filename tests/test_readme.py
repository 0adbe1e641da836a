"""The README's two commands are the contract with a newcomer; CI must run the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(python3 -m venv[^\n]+)\n```", (ROOT / "README.md").read_text())


def test_readme_has_start_and_test_commands():
    start, test = readme_commands()
    assert start.endswith("abtest serve --demo")
    assert test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    _start, test = readme_commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
