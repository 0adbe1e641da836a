"""Vendored browser assets stay byte for byte what their projects published: each file's SHA-256
is the one web/static/vendor/README.md lists, and every vendored file is listed with its licence."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "web" / "static" / "vendor"


def listed_hashes() -> dict[str, str]:
    text = (VENDOR / "README.md").read_text()
    return dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})`", text, flags=re.MULTILINE))


def test_every_vendored_file_matches_its_listed_sha256():
    hashes = listed_hashes()
    assets = sorted(p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css"))
    assert sorted(hashes) == assets
    for name, digest in hashes.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_file_has_its_licence_beside_it():
    text = (VENDOR / "README.md").read_text()
    for licence in re.findall(r"\(`([^`]+LICEN[CS]E[^`]*)`\)", text):
        assert (VENDOR / licence).is_file(), licence
    assert len(re.findall(r"\(`[^`]+LICEN[CS]E[^`]*`\)", text)) == len(listed_hashes())
