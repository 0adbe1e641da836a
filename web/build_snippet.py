"""Build the served snippet files from their readable sources: ``python -m web.build_snippet``.

web/snippet_src/*.js are the sources; web/static/abtest.js, abtest-study.js, abtest-vitals.js and abtest-survey.js
are what sites load, minified by a pinned terser from the npm registry (run through npx, so node
is needed to build, never to run or test abtest). The built files are checked in: a release needs
no node, and tests/test_snippet_build.py fails when one is older than its source, because each
build starts with a comment naming the SHA-256 of what it was built from.

abtest-vitals.js is the vendored web-vitals IIFE, byte for byte, followed by the minified module,
both inside one function so the library's ``var webVitals`` stays local (one request instead of
two in a row: the module could not start measuring before the library had arrived anyway).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from web.snippet_files import FILES

TERSER = "terser@5.51.4"
# Modern browsers only (the snippet uses ?. and ??); two compress passes gain a few bytes.
TERSER_ARGS = ["--ecma", "2020", "--compress", "passes=2", "--mangle", "--comments", "false"]
WEB = Path(__file__).resolve().parent
SOURCES = WEB / "snippet_src"
STATIC = WEB / "static"
WEB_VITALS = STATIC / "vendor" / "web-vitals-6.2.3.iife.js"


def source_digest(name: str) -> str:
    """SHA-256 (first 12 hex digits) of what ``name`` is built from: its source, and for
    abtest-vitals.js the library too."""
    digest = hashlib.sha256((SOURCES / name).read_bytes())
    if name == "abtest-vitals.js":
        digest.update(WEB_VITALS.read_bytes())
    # 12 hex digits (48 bits) tell a stale build as surely as 64 (a stale file would have to hit
    # one value in 2^48) and cost the core snippet 52 bytes fewer on every page view.
    return digest.hexdigest()[:12]


def header(name: str) -> str:
    """The first line of a built file; tests compare its digest with the source's."""
    return f"/*! {name} (MIT) sha256:{source_digest(name)} */\n"


def minify(path: Path) -> str:
    done = subprocess.run(["npx", "--yes", TERSER, str(path), *TERSER_ARGS],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"terser failed on {path}:\n{done.stderr}")
    return done.stdout.strip()


def build(name: str) -> str:
    """The text of the built file ``name``."""
    code = minify(SOURCES / name)
    if name == "abtest-vitals.js":
        library = WEB_VITALS.read_text(encoding="utf-8")
        code = "(()=>{\n" + library.rstrip("\n") + "\n" + code + "\n})();"
    return header(name) + code + "\n"


def main() -> None:
    for name in FILES:
        text = build(name)
        (STATIC / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(text.encode())} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
