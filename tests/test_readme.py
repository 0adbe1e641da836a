"""The README's two commands are the contract with a newcomer; CI must run the same test command.
The snippet a site pastes is the one web/snippet.py makes (and the browser tests load)."""

from __future__ import annotations

import re
from pathlib import Path

from web.snippet import paste_snippet

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


def _html_blocks(path: Path, after: str) -> list[str]:
    text = path.read_text()
    return re.findall(r"```html\n(.*?)\n```", text[text.index(after):], re.DOTALL)


def test_readme_shows_the_paste_ready_snippet():
    blocks = _html_blocks(ROOT / "README.md", "## Put it on a site")
    assert blocks[0] == paste_snippet("http://127.0.0.1:8000/static/abtest.js", "pk_…")


def test_snippet_docs_show_the_same_snippet():
    blocks = _html_blocks(ROOT / "web" / "static" / "README.md", "# abtest.js")
    assert blocks[0] == paste_snippet("https://HOST/static/abtest.js", "pk_…")


def test_readme_assign_example_is_what_assignment_answers():
    """The `abtest assign` example shows real output: the bucket of alice in the shipped
    experiments/checkout-button.toml (a pure function of its seed and weights)."""
    from abtest.assignment import assign
    from abtest.kinds import load_toml

    example = re.search(r"\$ abtest assign checkout-button alice\n(\S+)\nreason: (\w+): (.+)\n",
                        (ROOT / "README.md").read_text())
    assert example, "the README lost its `abtest assign checkout-button alice` example"
    result = assign(load_toml(ROOT / "experiments" / "checkout-button.toml"), "alice")
    assert (example.group(1), example.group(2), example.group(3)) == (result.variant, result.reason, result.detail)
