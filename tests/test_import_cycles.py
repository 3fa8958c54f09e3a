"""No first-party module imports itself back, directly or through others.

A cycle makes the order of imports matter, hides which module owns what, and is usually papered over
with ``if TYPE_CHECKING:`` imports; those count here too, since they are the same dependency. The graph
is read from the source with ``ast`` (nothing is imported), over every package under ``services/*/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "services"


def first_party_modules() -> dict[str, Path]:
    """Module name -> file, for every package directly under ``services/<service>/``."""
    modules: dict[str, Path] = {}
    for init in sorted(SERVICES.glob("*/*/__init__.py")):
        root = init.parent.parent
        for path in init.parent.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The first-party modules ``name`` imports (anywhere in the file, ``TYPE_CHECKING`` included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module.
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    yield sub
                elif target in modules:
                    yield target


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graphs here are a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_reader_sees_a_cycle_through_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import B\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n")
    (pkg / "c.py").write_text("from pkg import a\n")
    modules = {"pkg": pkg / "__init__.py", **{f"pkg.{m}": pkg / f"{m}.py" for m in "abc"}}
    graph = {name: set(imports_of(name, path, modules)) for name, path in modules.items()}
    assert graph["pkg.c"] == {"pkg.a"}
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_first_party_import_cycle() -> None:
    modules = first_party_modules()
    assert {"taskq", "producer", "worker.handlers"} <= modules.keys()  # the walk found the services
    graph = {name: set(imports_of(name, path, modules)) - {name} for name, path in modules.items()}
    assert find_cycles(graph) == []
