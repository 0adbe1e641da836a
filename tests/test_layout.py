"""The layout's promises (DESIGN §3), read from the code: no import cycles between the project's
modules (function-level imports included), the core never imports the web app, modules stay
short, and the web layer dispatches on kinds through its table instead of testing them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("abtest", "web")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (the longest known prefix of each)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            parts = target.split(".")
            for i in range(len(parts), 0, -1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    if candidate != name:
                        found.add(candidate)
                    break
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan); a package importing its
    own submodules (or the reverse) is not a cycle of the layout."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def related(a: str, b: str) -> bool:
        return a.startswith(b + ".") or b.startswith(a + ".")

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if related(v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a made-up graph with a cycle is reported."""
    graph = {"abtest.a": {"abtest.b"}, "abtest.b": {"abtest.c"}, "abtest.c": {"abtest.a"}, "abtest.d": set(),
             "abtest.pkg": {"abtest.pkg.sub"}, "abtest.pkg.sub": {"abtest.pkg"}}
    assert _cycles(graph) == [["abtest.a", "abtest.b", "abtest.c"]]


def test_the_core_never_imports_the_web_app():
    offenders = {m: sorted(t for t in targets if t.split(".")[0] == "web")
                 for m, targets in _graph().items() if m.split(".")[0] == "abtest"}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_modules_stay_short():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_LINES}
    assert long == {}


def test_the_web_layer_looks_kinds_up_instead_of_testing_them():
    pattern = re.compile(r"""kind\s*(==|!=|in)\s*\(?\s*["'](study|experiment)["']""")
    hits = [f"{p.relative_to(ROOT)}:{i}" for name, p in _modules().items() if name.startswith("web")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    templates = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "web" / "templates").rglob("*.html")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert hits + templates == []


def test_every_kind_has_its_pages():
    from abtest.kinds import KINDS
    from web.kind_pages import PAGES

    assert set(PAGES) == set(KINDS)
