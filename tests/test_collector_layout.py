"""The collector's shape (docs/architecture.md): no import circles, and only the command line imports the service
that assembles everything."""

from __future__ import annotations

from pathlib import Path

from layout_helpers import import_circle, import_graph

SOURCE = Path(__file__).resolve().parents[1] / "collector"
PACKAGE = "spanhouse.collector"
GRAPH = import_graph(SOURCE, PACKAGE)


def test_no_import_circles() -> None:
    assert import_circle(GRAPH) is None, " -> ".join(import_circle(GRAPH) or [])


def test_only_the_command_line_imports_the_service() -> None:
    importers = sorted(m for m, deps in GRAPH.items() if f"{PACKAGE}.service" in deps)
    assert importers == [f"{PACKAGE}.cli"]


def test_components_meet_through_the_protocols_not_through_each_other() -> None:
    """Receivers, workers and the read side never import the pipeline or each other's modules."""
    for module, deps in GRAPH.items():
        if module.startswith((f"{PACKAGE}.receiver", f"{PACKAGE}.workers", f"{PACKAGE}.query", f"{PACKAGE}.ui")):
            assert f"{PACKAGE}.pipeline" not in deps or module == f"{PACKAGE}.workers.worker", module
        if module.startswith((f"{PACKAGE}.query", f"{PACKAGE}.ui")):
            assert not any(d.startswith((f"{PACKAGE}.receiver", f"{PACKAGE}.workers")) for d in deps), module


def test_the_circle_check_finds_a_circle() -> None:
    assert import_circle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert import_circle({"p": {"p.a"}, "p.a": {"p"}}) is None  # a package importing its own module
