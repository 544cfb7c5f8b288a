"""`spanhouse compare` end to end: the real OpenTelemetry SDK sends calls of two versions to a collector with
API keys and a low sampling rate; the command reads them back through the query endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanhouse.collector import cli
from spanhouse.collector import config as config_mod
from spanhouse.collector.query import client as query_client
from spanhouse.collector.query import compare

from access_harness import Key, auth_overrides
from collector_harness import RunningCollector, start_collector

ACME, GLOBEX, ADMIN = Key.new("acme"), Key.new("globex"), Key.new("ops", admin=True)
T0 = time.time_ns() - 30 * 60 * 1_000_000_000  # half an hour ago
CALLS = 300


def latency_ms(version: str, i: int) -> float:
    base = 400 + (i * 37) % 200  # 400..599 ms, every value about equally often
    return base * 1.5 if version == "1.1" else float(base)


def failed(version: str, i: int) -> bool:
    return i % 5 == 0 if version == "1.1" else i % 50 == 0  # 20 % against 2 %


def send(running: RunningCollector, key: Key, version: str, calls: int) -> None:
    """`calls` chat calls of checkout at `version`, each its own trace, through the SDK's OTLP/gRPC exporter."""
    resource = Resource.create({"service.name": "checkout", "service.version": version,
                                "deployment.environment.name": "production"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=running.grpc_endpoint, insecure=True, headers=(("authorization", f"Bearer {key.key}"),))))
    tracer = provider.get_tracer("compare.tests")
    for i in range(calls):
        start = T0 + i * 1_000_000
        duration_ns = int(latency_ms(version, i) * 1_000_000)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000 + i % 50, "gen_ai.usage.output_tokens": 200 + i % 30}
        if i % 2 == 0:  # streamed: time to first token is a fifth of the call
            attributes["gen_ai.response.time_to_first_chunk"] = duration_ns / 5e9
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=start, attributes=attributes)
        if failed(version, i):
            span.set_attribute("error.type", "openai.RateLimitError")
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=start + duration_ns)
    assert provider.force_flush(30_000)
    provider.shutdown()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    # One trace in ten kept: the full spans are sampled, genai_calls keeps every call.
    collector = start_collector(tmp_path_factory.mktemp("compare") / "store", **auth_overrides(ACME, GLOBEX, ADMIN),
                                sampling={"rate": 0.1, "honor_client_decision": False})
    try:
        send(collector, ACME, "1.0", CALLS)
        send(collector, ACME, "1.1", CALLS)
        send(collector, GLOBEX, "1.0", 100)
        deadline = time.monotonic() + 60
        while collector.query("SELECT count() FROM genai_calls") != [(2 * CALLS + 100,)]:
            assert time.monotonic() < deadline, collector.query("SELECT count() FROM genai_calls")
        yield collector
    finally:
        collector.collector.stop()


def spanhouse(running: RunningCollector, key: Key, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANHOUSE_")}
    env.update(SPANHOUSE_QUERY__ENDPOINT=running.query_endpoint, SPANHOUSE_API_KEY=key.key)
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", "compare", "--store", running.store_url,
                           "--quiet", *args], capture_output=True, text=True, env=env, timeout=180, check=False)


def compared(running: RunningCollector, key: Key, *args: str) -> dict[str, Any]:
    result = spanhouse(running, key, *args, "--since", "2h", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def metrics(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in report["metrics"]}


def test_a_slower_failing_version_is_worse_with_every_number_as_sent(running: RunningCollector) -> None:
    report = compared(running, ACME, "--by", "service.version", "1.0", "1.1")
    assert report["groups"] == {"a": {"calls": CALLS, "errors": 6, "calls_fetched": CALLS},
                                "b": {"calls": CALLS, "errors": 60, "calls_fetched": CALLS}}
    found = metrics(report)
    assert (found["error rate"]["a"], found["error rate"]["b"]) == (pytest.approx(0.02), pytest.approx(0.2))
    for version, side in (("1.0", "a"), ("1.1", "b")):
        sent = np.array([latency_ms(version, i) for i in range(CALLS)])
        assert found["latency p50"][side] == pytest.approx(np.quantile(sent, 0.5))
        assert found["latency p95"][side] == pytest.approx(np.quantile(sent, 0.95))
        assert found["TTFT p50"][side] == pytest.approx(np.quantile(sent[::2] / 5, 0.5))
        assert found["input tokens per call"][side] == pytest.approx(np.mean([1000 + i % 50 for i in range(CALLS)]))
    assert found["latency p50"]["ratio"] == pytest.approx(1.5)
    for name in ("error rate", "latency p50", "latency p95", "TTFT p50", "TTFT p95"):
        assert found[name]["verdict"] == "worse" and found[name]["ci_low"] > 0, found[name]
    # Same tokens on both sides: no evidence there, and so none for the cost they set.
    assert {found[n]["verdict"] for n in ("input tokens per call", "output tokens per call", "cost per call")} \
        == {"no evidence"}
    assert report["verdict"] == "worse"
    assert report["method"]["resamples"] == 2000 and report["method"]["seed"] == 0
    assert report["method"]["sample"] == ""


def test_the_count_is_exact_whatever_the_sampling_kept(running: RunningCollector) -> None:
    kept = running.query("SELECT count() FROM spans")[0][0]
    assert 0 < kept < CALLS  # about a tenth of the 700 calls kept their span row
    # Both tables carry the resource's version and environment (migration 013, filled by normalize).
    for table in ("genai_calls", "spans"):
        assert set(running.query(f"SELECT DISTINCT ServiceVersion, DeploymentEnvironment FROM {table}")) \
            == {("1.0", "production"), ("1.1", "production")}
    report = compared(running, ADMIN, "--by", "service.version", "1.0", "1.1", "--operation", "chat", "--model",
                      "gpt-4o", "--service", "checkout")
    assert report["groups"]["a"]["calls"] == CALLS + 100 and report["groups"]["b"]["calls"] == CALLS
    assert report["filters"] == {"operation": "chat", "model": "gpt-4o", "service": "checkout", "tenant": ""}


def test_by_tenant_needs_a_key_that_sees_both_tenants(running: RunningCollector) -> None:
    report = compared(running, ADMIN, "--by", "tenant", "acme", "globex")
    assert (report["groups"]["a"]["calls"], report["groups"]["b"]["calls"]) == (2 * CALLS, 100)
    assert (report["groups"]["a"]["errors"], report["groups"]["b"]["errors"]) == (66, 2)
    # A tenant key is confined to its own rows: the other tenant has no calls it can see.
    refused = spanhouse(running, ACME, "--by", "tenant", "acme", "globex", "--since", "2h")
    assert refused.returncode == 1 and refused.stdout == ""
    assert 'no LLM calls with tenant = "globex"' in refused.stderr


def test_the_table_states_the_groups_the_verdict_and_the_method(running: RunningCollector) -> None:
    result = spanhouse(running, ADMIN, "--by", "deployment.environment", "production", "staging", "--since", "2h")
    assert result.returncode == 1 and 'deployment.environment = "staging"' in result.stderr
    result = spanhouse(running, ADMIN, "--by", "service.version", "1.0", "1.1", "--tenant", "acme", "--since", "2h",
                       "--seed", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('service.version: A = "1.0", B = "1.1", from ') and "(tenant 'acme')" in lines[0]
    header = lines[2].split()
    assert header[:3] == ["metric", "A", "(1.0)"]
    assert any(line.startswith("calls ") and line.split()[1:3] == ["300", "300"] for line in lines)
    assert any(line.startswith("error rate") and "2.00%" in line and "20.00%" in line for line in lines)
    overall = next(line for line in lines if line.startswith("overall: "))
    assert overall.startswith("overall: WORSE - B is worse than A: error rate, latency p50")
    method = "\n".join(lines[lines.index(next(line for line in lines if line.startswith("method: "))):])
    assert "Newcombe" in method and "2000 resamples" in method and "seed 3" in method and "99.2%" in method


def test_bad_options_are_named(running: RunningCollector) -> None:
    parser = next(action for action in cli.build_parser()._subparsers._group_actions
                  if action.dest == "command").choices["compare"]
    by = next(action for action in parser._actions if action.dest == "by")
    assert tuple(by.choices) == tuple(compare.BY_COLUMNS)  # the command line offers what the query knows
    result = spanhouse(running, ADMIN, "--by", "version", "1.0", "1.1")
    assert result.returncode == 2 and "--by" in result.stderr and "service.version" in result.stderr
    result = spanhouse(running, ADMIN, "--by", "service.version", "1.0", "1.0")
    assert result.returncode == 2 and "A and B are the same service.version" in result.stderr
    result = spanhouse(running, ADMIN, "--by", "service.version", "1.0", "1.1", "--since", "yesterday")
    assert result.returncode == 2 and "--since" in result.stderr


def test_a_group_larger_than_the_cap_is_a_uniform_sample_named_in_the_output(
        running: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "MAX_CALLS_PER_GROUP", 100)
    monkeypatch.setenv(query_client.API_KEY_ENV, ACME.key)
    cfg = config_mod.load(None, environ={}, overrides={"store": {"url": running.store_url},
                                                       "query": {"endpoint": running.query_endpoint}})
    now = datetime.now(UTC)
    request = compare.Request("service.version", "1.0", "1.1", now - timedelta(hours=2), now)
    with query_client.Reader(cfg) as reader:
        result = compare.run(reader.run, request)
    assert reader.source.startswith("the collector at")
    assert (result.a.calls, result.a.fetched, result.b.calls, result.b.fetched) == (CALLS, 100, CALLS, 100)
    assert result.b.errors == 60  # counted over every call, not the sample
    smallest = running.query("SELECT Duration / 1e6 FROM genai_calls WHERE TenantId = 'acme' AND "
                             "ServiceVersion = '1.1' ORDER BY cityHash64(SpanId) LIMIT 100")
    assert sorted(result.b.duration_ms.tolist()) == sorted(d for (d,) in smallest)
    assert "100 of 300 calls of A, 100 of 300 calls of B" in compare.render_table(result)
    assert compare.to_json(result)["groups"]["b"] == {"calls": CALLS, "errors": 60, "calls_fetched": 100}
