"""Helpers for the /metrics tests: scrape and parse, GenAI spans through the real OTel SDK exporters."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(endpoint: str, path: str, key: str | None = None) -> tuple[int, str, str]:
    """GET; (status, body, content type)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(f"http://{endpoint}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Content-Type", "")


def scrape(endpoint: str, key: str | None = None) -> Samples:
    """Every sample of GET /metrics, parsed by prometheus_client's own parser: (name, sorted labels) -> value."""
    status, body, content_type = get(endpoint, "/metrics", key)
    assert status == 200, body
    assert content_type.startswith("text/plain; version="), content_type  # the text exposition format
    out: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert found, f"no sample {name}{labels}"
    return sum(found)


def stats(endpoint: str, key: str | None = None) -> dict[str, int]:
    status, body, _ = get(endpoint, "/stats", key)
    assert status == 200, body
    return dict(json.loads(body))


def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.05)


def genai_spans(exporter: Any, service: str, count: int, model: str = "gpt-4o", error_every: int = 0,
                tenant_attrs: dict[str, str] | None = None) -> Any:
    """Make `count` chat spans with usage with the real SDK and export them with `exporter`; the export result."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, **(tenant_attrs or {})}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("metrics-test")
    from opentelemetry.trace import Status, StatusCode

    for i in range(count):
        with tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.response.model", model)
            span.set_attribute("gen_ai.usage.input_tokens", 1000)
            span.set_attribute("gen_ai.usage.cache_read.input_tokens", 200)
            span.set_attribute("gen_ai.usage.output_tokens", 50)
            span.set_attribute("gen_ai.response.time_to_first_chunk", 0.3)
            if error_every and i % error_every == 0:
                span.set_status(Status(StatusCode.ERROR, "rate limited"))
    try:
        return exporter.export(memory.get_finished_spans())
    finally:
        exporter.shutdown()
        provider.shutdown()


def prometheus_tool(name: str) -> str:
    """The path of Debian's `prometheus` or `promtool`, or skip; under CI a missing one fails (.ci/run installs it)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{name} is missing: install Prometheus (Debian: apt-get install -y prometheus)")
        pytest.skip(f"{name} is not installed (Debian: apt-get install -y prometheus)")
    return found
