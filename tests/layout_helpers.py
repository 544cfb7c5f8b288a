"""Reading a package's import graph from its source, for the layout tests of the collector and the instrumentation."""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(source: Path, package: str, path: Path) -> str:
    parts = list(path.relative_to(source).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def import_graph(source: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports anywhere (in functions and under TYPE_CHECKING too)."""
    modules = {module_name(source, package, p) for p in source.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in source.rglob("*.py"):
        name = module_name(source, package, path)
        parent = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = parent.rsplit(".", node.level - 1)[0] if node.level > 1 else parent
                module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
                if not node.level and not module.startswith(package):
                    continue
                for alias in node.names:  # `from . import _config` imports a module, not a name
                    candidate = f"{module}.{alias.name}"
                    found.add(candidate if candidate in modules else module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith(package))
        found.discard(name)
        graph[name] = found
    return graph


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (a package's __init__ importing its own submodules does not count), or None."""
    graph = {module: {d for d in deps if not module.startswith(d + ".")} for module, deps in graph.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in done:
            return None
        if module in visiting:
            return [*visiting[visiting.index(module):], module]
        visiting.append(module)
        for dep in sorted(graph.get(module, ())):
            circle = visit(dep)
            if circle:
                return circle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module)
        if circle:
            return circle
    return None
