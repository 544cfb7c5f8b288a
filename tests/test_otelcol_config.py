"""deploy/otelcol/loadbalancer.yaml: the OpenTelemetry Collector config that routes whole traces to one of many collectors.

No otelcol-contrib binary runs here, so the file is checked structurally: it parses, and it has what trace-id routing
to spanhouse collectors needs (docs/scaling.md says so).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "otelcol" / "loadbalancer.yaml"


def load(text: str) -> dict[str, Any]:
    tree = yaml.safe_load(text)
    assert isinstance(tree, dict), "the config is not a YAML mapping"
    return tree


def commented_variant() -> str:
    """The per-caller-key variant: the commented block from its `# extensions:` line on, uncommented."""
    lines = CONFIG.read_text(encoding="utf-8").splitlines()
    start = lines.index("# extensions:")
    return "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines[start:])


def check_wiring(tree: dict[str, Any]) -> dict[str, Any]:
    """The checks both variants must pass; returns the loadbalancing exporter's settings."""
    assert "grpc" in tree["receivers"]["otlp"]["protocols"]
    balancer = tree["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "traceID"  # whole traces to one collector: the tail sampler needs them
    assert isinstance(balancer["protocol"]["otlp"], dict)
    assert "endpoint" not in balancer["protocol"]["otlp"]  # the resolver supplies the endpoints
    hostnames = balancer["resolver"]["static"]["hostnames"]
    assert len(hostnames) >= 2
    for host in hostnames:
        assert re.fullmatch(r"[a-z0-9.-]+:4317", host), f"{host!r} is not HOST:PORT on spanhouse's OTLP/gRPC port"
    pipeline = tree["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["exporters"] == ["loadbalancing"]
    for processor in pipeline.get("processors", []):
        assert processor in tree.get("processors", {}), f"pipeline names undefined processor {processor!r}"
    for extension in tree["service"].get("extensions", []):
        assert extension in tree.get("extensions", {}), f"service names undefined extension {extension!r}"
    return balancer


def test_loadbalancer_config_routes_traces_by_trace_id() -> None:
    tree = load(CONFIG.read_text(encoding="utf-8"))
    balancer = check_wiring(tree)
    otlp = balancer["protocol"]["otlp"]
    assert otlp["headers"]["authorization"] == "Bearer ${env:SPANHOUSE_API_KEY}"  # spanhouse's key header
    assert otlp["retry_on_failure"]["enabled"] is True  # a full spool answers UNAVAILABLE: retry, do not drop
    # Only one resolver may be active; the dns and k8s variants stay commented.
    assert set(balancer["resolver"]) == {"static"}


def test_commented_per_key_variant_is_valid_too() -> None:
    tree = load(commented_variant())
    balancer = check_wiring(tree)
    assert tree["receivers"]["otlp"]["protocols"]["grpc"]["include_metadata"] is True
    assert balancer["protocol"]["otlp"]["auth"]["authenticator"] == "headers_setter"
    (header,) = tree["extensions"]["headers_setter"]["headers"]
    assert header == {"action": "upsert", "key": "authorization", "from_context": "authorization"}


@pytest.mark.parametrize("resolver, keys", [("dns", {"hostname", "port"}), ("k8s", {"service", "ports"})])
def test_commented_resolver_variants_parse(resolver: str, keys: set[str]) -> None:
    text = CONFIG.read_text(encoding="utf-8")
    block = re.search(rf"^      # {resolver}:\n((?:      #   .*\n)+)", text, re.MULTILINE)
    assert block, f"no commented {resolver} resolver in {CONFIG.name}"
    body = "\n".join(line.replace("      #   ", "  ", 1) for line in block.group(1).splitlines())
    settings = load(f"{resolver}:\n{body}")[resolver]
    assert keys <= set(settings)


def test_scaling_doc_points_at_the_config() -> None:
    scaling = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    assert "## Many collectors" in scaling
    assert "deploy/otelcol/loadbalancer.yaml" in scaling
    assert "validated structurally only" in scaling
