"""The shape docs/architecture.md describes, checked: arrows one way, no module too big to read,
no face that ends a transaction by hand, settings read in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("portal", "blueprints", "models")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The application modules `name` imports anywhere in its body (type-checking-only aside)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(sub) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for sub in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            submodules = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            out |= submodules or {target}
    return (out & modules.keys()) - {name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_application_code():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_services_do_not_import_faces_or_the_factory():
    modules = _modules()
    for name, path in modules.items():
        if name.startswith(("portal.services", "models")):
            wrong = {m for m in _imports(name, path, modules)
                     if m.startswith("blueprints") or m in ("portal", "portal.cli")}
            assert not wrong, f"{name} imports {wrong}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_too_long_to_read(name):
    lines = _modules()[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_no_face_ends_a_transaction_by_hand():
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for path in (ROOT / "blueprints").rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"session\.(rollback|commit)\(", line)]
    assert offenders == []


def test_no_service_commits():
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for path in (ROOT / "portal" / "services").rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"session\.commit\(", line)]
    assert offenders == []


def test_settings_are_read_in_config_only():
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                 if path.name != "config.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"os\.environ|os\.getenv", line)]
    assert offenders == []


def test_every_setting_is_in_the_readme_table():
    source = (ROOT / "portal" / "config.py").read_text()
    read = set(re.findall(r"""env(?:\.get\(|\[)["']([A-Z][A-Z0-9_]+)["']""", source))
    read |= set(re.findall(r"""_count\(["']([A-Z][A-Z0-9_]+)["']""", source))
    table = "\n".join(line for line in (ROOT / "README.md").read_text().splitlines()
                      if line.startswith("| `"))
    prefixes = re.findall(r"`([A-Z_]+)\*`", table)
    missing = sorted(k for k in read
                     if f"`{k}`" not in table and not any(k.startswith(p) for p in prefixes))
    assert read and missing == []
