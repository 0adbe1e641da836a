"""Make the repository root importable when pytest is run without an installed package."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("abtest") is None:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
