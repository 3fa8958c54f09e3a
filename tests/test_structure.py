"""The shape of the code, checked: modules stay small, and no module imports itself round a circle.

Size: a module under services/ over ``MAX_LINES`` lines must say why on a ``# size:`` line near its
top (STYLE.md rule 1: one concept per module). Cycles: every import of a module of the same service
counts, ``TYPE_CHECKING`` and function-level ones included (an import cycle hidden from the runtime
is still two modules that cannot be read, tested or changed apart).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[1] / "services"
MAX_LINES = 400
#: A ``# size:`` reason counts within this many lines of the top.
REASON_WITHIN = 15


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every package of every service (services/<svc>/<pkg>/...)."""
    found: dict[str, Path] = {}
    for path in sorted(SERVICES.glob("*/*/**/*.py")):
        parts = path.relative_to(SERVICES).parts[1:]  # drop the service folder
        if ".venv" in parts or "tests" in parts[:1]:
            continue
        names = list(parts[:-1]) + ([] if path.name == "__init__.py" else [path.stem])
        found[".".join(names)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The in-repo modules ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in MODULES and t != name)
    return out


def _cycle(graph: dict[str, set[str]], roots: list[str]) -> list[str] | None:
    """One import cycle among ``roots`` (the modules round it, first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for root in roots:
        if root not in state and (found := visit(root)) is not None:
            return found
    return None


@pytest.mark.parametrize("relative", [str(p.relative_to(SERVICES)) for p in MODULES.values()])
def test_a_long_module_says_why(relative: str) -> None:
    lines = (SERVICES / relative).read_text(encoding="utf-8").splitlines()
    reason = any(line.startswith("# size:") for line in lines[:REASON_WITHIN])
    assert len(lines) <= MAX_LINES or reason, (
        f"{relative} has {len(lines)} lines (limit {MAX_LINES}): split it by concept, or say why on a "
        f"'# size:' line within its first {REASON_WITHIN}"
    )


@pytest.mark.parametrize("package", sorted({name.split(".")[0] for name in MODULES}))
def test_no_import_cycle(package: str) -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    roots = [name for name in graph if name.split(".")[0] == package]
    cycle = _cycle(graph, roots)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_what_they_check() -> None:
    """The cycle finder finds a planted cycle, and the module list holds the core's modules."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a"]) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}, ["a"]) is None
    assert {"taskq.queue", "taskq.commands.base", "worker.manager"} <= MODULES.keys()
    assert _imports("taskq.queue", MODULES["taskq.queue"]) >= {"taskq.commands", "taskq.config"}
