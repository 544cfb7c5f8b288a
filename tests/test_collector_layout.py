"""The collector's shape (docs/architecture.md): no import circles, and only the command line imports the service
that assembles everything."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "collector"
PACKAGE = "spanhouse.collector"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


MODULES = {_module_name(p) for p in SOURCE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Modules of ours that `path` imports anywhere (in functions and under TYPE_CHECKING too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            if not node.level and not module.startswith(PACKAGE):
                continue
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                found.add(candidate if candidate in MODULES else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
    found.discard(name)
    return found


GRAPH = {_module_name(p): _imports(p) for p in SOURCE.rglob("*.py")}


def test_no_import_circles() -> None:
    # A package's __init__ importing its own submodules is how packages work, not a circle.
    graph = {module: {d for d in deps if not module.startswith(d + ".")} for module, deps in GRAPH.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting[visiting.index(module):], module])
        visiting.append(module)
        for dep in sorted(graph.get(module, ())):
            visit(dep)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_only_the_command_line_imports_the_service() -> None:
    importers = sorted(m for m, deps in GRAPH.items() if f"{PACKAGE}.service" in deps)
    assert importers == [f"{PACKAGE}.cli"]


def test_components_meet_through_the_protocols_not_through_each_other() -> None:
    """Receivers, workers and the read side never import the pipeline or each other's modules."""
    for module, deps in GRAPH.items():
        if module.startswith((f"{PACKAGE}.receiver", f"{PACKAGE}.workers", f"{PACKAGE}.query")):
            assert f"{PACKAGE}.pipeline" not in deps or module == f"{PACKAGE}.workers.worker", module
        if module.startswith(f"{PACKAGE}.query"):
            assert not any(d.startswith((f"{PACKAGE}.receiver", f"{PACKAGE}.workers")) for d in deps), module
