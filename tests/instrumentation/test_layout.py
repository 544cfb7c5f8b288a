"""The shape docs/instrumentation.md ("Adding a provider") promises: layers without import circles, and
provider packages that only declare what differs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from layout_helpers import import_circle, import_graph

from spanhouse.instrumentation._patching import Patch
from spanhouse.instrumentation._provider import ProviderInstrumentor

SOURCE = Path(__file__).resolve().parents[2] / "instrumentation"
PACKAGE = "spanhouse.instrumentation"
PROVIDERS = sorted(p.parent.name for p in SOURCE.glob("*/__init__.py"))


def test_no_import_circles() -> None:
    circle = import_circle(import_graph(SOURCE, PACKAGE))
    assert circle is None, " -> ".join(circle or [])


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
