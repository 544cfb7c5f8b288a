"""The shape docs/instrumentation.md ("Adding a provider") promises: layers without import circles, and
provider packages that only declare what differs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from spanhouse.instrumentation._patching import Patch
from spanhouse.instrumentation._provider import ProviderInstrumentor

SOURCE = Path(__file__).resolve().parents[2] / "instrumentation"
PACKAGE = "spanhouse.instrumentation"
PROVIDERS = sorted(p.parent.name for p in SOURCE.glob("*/__init__.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


MODULES = {_module_name(p) for p in SOURCE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Modules of ours that `path` imports, anywhere in the file (a late import in a function counts)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            if not node.level and not module.startswith(PACKAGE):
                continue
            for alias in node.names:  # `from . import _config` imports a module, not a name
                candidate = f"{module}.{alias.name}"
                found.add(candidate if candidate in MODULES else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
    found.discard(name)
    return found


def test_no_import_circles() -> None:
    graph = {_module_name(p): _imports(p) for p in SOURCE.rglob("*.py")}
    # A package's __init__ importing its own submodules is how packages work, not a circle.
    for module, deps in graph.items():
        graph[module] = {d for d in deps if not module.startswith(d + ".")}
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


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_package_only_declares_its_instrumentor(provider: str) -> None:
    module = importlib.import_module(f"{PACKAGE}.{provider}")
    classes = [n for n in ast.parse((SOURCE / provider / "__init__.py").read_text()).body
               if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    assert [type(n) for n in classes] == [ast.ClassDef], "__init__.py holds the instrumentor and nothing else"
    instrumentor = getattr(module, classes[0].name)
    assert issubclass(instrumentor, ProviderInstrumentor)
    assert set(vars(instrumentor)) >= {"provider", "instruments", "patches"}
    for patch in instrumentor.patches:
        assert isinstance(patch, Patch)
        factory = patch.factory.__name__
        # Factories are named after the method they patch, `async_` for the async client's.
        assert factory.endswith(patch.method), (patch, factory)
        assert factory.startswith("async_") == patch.cls.startswith("Async"), (patch, factory)
        assert patch.factory.__module__ == f"{PACKAGE}.{provider}.patch"
