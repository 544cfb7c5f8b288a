"""Sampling through a real collector: OTLP/gRPC in, embedded ClickHouse out."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from collector_harness import RunningCollector, start_collector
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from sampling_traffic import T0, Span, request
from spanhouse.collector.store import Store

TAIL = {"rate": 0.01, "keep_errors": True, "keep_duration_over_ms": 4900, "keep_cost_over_usd": 0.5,
        "keep_attributes": [{"key": "user.tier", "values": ["enterprise"]}], "rate_limit_traces_per_s": 1}


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stats(running: RunningCollector) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{running.query_endpoint}/stats", timeout=10) as response:
        return json.loads(response.read())


def partial_traces(running: RunningCollector) -> list[tuple[Any, ...]]:
    """Stored spans whose parent is not stored."""
    return running.query(
        "SELECT c.TraceId, c.SpanId FROM spans AS c LEFT ANTI JOIN spans AS p "
        "ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId WHERE c.ParentSpanId != ''")


# --- real SDKs, two services, spans arriving in any order -------------------------------------


def test_no_stored_trace_is_partial_and_every_call_is_stored(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", sampling={"rate": 0.3, "keep_errors": True})
    try:
        providers = {}
        for service in ("frontend", "llm-worker"):
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=running.grpc_endpoint,
                                                                            insecure=True)))
            providers[service] = provider
        front = providers["frontend"].get_tracer("e2e")
        worker = providers["llm-worker"].get_tracer("e2e")
        rng = random.Random(5)
        error_traces = set()
        for n in range(120):
            root = front.start_span("POST /answer", start_time=T0)
            parent_ctx = trace.set_span_in_context(root)
            token = context.attach(parent_ctx)
            try:
                agent = worker.start_span("invoke_agent planner", start_time=T0 + 1000,
                                          attributes={"gen_ai.operation.name": "invoke_agent"})
                with trace.use_span(agent, end_on_exit=False):
                    for c in range(2):
                        call = worker.start_span("chat gpt-4o-mini", start_time=T0 + 2000 + c, attributes={
                            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 100 + n,
                            "gen_ai.usage.output_tokens": 10 + c})
                        if n % 10 == 0 and c == 1:
                            call.set_status(Status(StatusCode.ERROR, "rate limited"))
                            error_traces.add(f"{root.get_span_context().trace_id:032x}")
                        call.end(end_time=T0 + 3_000_000 + c)
                agent.end(end_time=T0 + 4_000_000)
            finally:
                context.detach(token)
            root.end(end_time=T0 + 5_000_000)
            # Half the traces reach the collector root first (their children are late), half root last;
            # traces with an error root last, so the error is seen before the decision.
            root_last = n % 10 == 0 or rng.random() < 0.5
            order = ("llm-worker", "frontend") if root_last else ("frontend", "llm-worker")
            for service in order:
                assert providers[service].force_flush(30_000)
        for provider in providers.values():
            provider.shutdown()

        assert partial_traces(running) == []
        sizes = running.query("SELECT TraceId, count(), min(SampleRate), max(SampleRate) FROM spans GROUP BY TraceId")
        assert all(size == 4 for _, size, _, _ in sizes), "a stored trace is missing spans"
        stored = {row[0]: row[2:] for row in sizes}
        assert error_traces <= set(stored), "a trace with an error was sampled out"
        assert all(stored[t] == (1.0, 1.0) for t in error_traces)
        assert {v for t, v in stored.items() if t not in error_traces} <= {(0.3, 0.3)}
        assert len(error_traces) < len(stored) < 120 - 40
        assert running.query("SELECT Operation, count(), sum(InputTokens) FROM genai_calls GROUP BY Operation "
                             "ORDER BY Operation") == [("chat", 240, sum(2 * (100 + n) for n in range(120))),
                                                       ("invoke_agent", 120, None)]
        counters = stats(running)
        assert counters["sample_traces_kept_error_total"] == len(error_traces)
        assert counters["sample_spans_sampled_out_total"] == 4 * (120 - len(stored))
        assert counters["sample_late_spans_total"] > 0
    finally:
        running.collector.stop()


# --- exact aggregates ----------------------------------------------------------------------


def traffic() -> list[list[Span]]:
    """120 traces of three calls; some have errors, slow spans, or an enterprise user."""
    from sampling_traffic import trace as make_trace

    rng = random.Random(2024)
    return [make_trace(rng, n_children=3, error=i % 17 == 0, slow_ns=6_000_000_000 if i % 23 == 0 else 0,
                       **({"user.tier": "enterprise"} if i % 29 == 0 else {})) for i in range(120)]


def send(endpoint: str, traces: list[list[Span]]) -> None:
    """Each trace in two requests: its calls first, its root later, a few traces at a time."""
    with grpc.insecure_channel(endpoint) as channel:
        stub = TraceServiceStub(channel)
        for start in range(0, len(traces), 10):
            group = traces[start:start + 10]
            stub.Export(request([s for t in group for s in t[1:]]), timeout=30)
            stub.Export(request([t[0] for t in group]), timeout=30)


ROLLUP = """
SELECT {bucket}, TenantId, ServiceName, Provider, Model, Operation,
       sum(Calls), sum(Errors), sum(InputTokens), sum(OutputTokens), round(sum(CostTotal), 9), sum(PricedCalls),
       arrayMap(q -> round(q, 6), quantilesTDigestMerge(0.5, 0.9, 0.99)(DurationMs))
FROM {table}
GROUP BY {bucket}, TenantId, ServiceName, Provider, Model, Operation
ORDER BY Model, Operation
"""


def rollups(running: RunningCollector) -> dict[str, list[tuple[Any, ...]]]:
    return {table: running.query(ROLLUP.format(table=table, bucket=bucket))
            for table, bucket in (("genai_usage_1m", "Minute"), ("genai_usage_1h", "Hour"))}


def test_rollups_at_one_percent_with_tail_policies_equal_those_at_one_hundred_percent(tmp_path: Path) -> None:
    sent = traffic()
    results = {}
    for name, sampling in (("full", {}), ("sampled", TAIL)):
        running = start_collector(tmp_path / name, sampling=sampling)
        try:
            send(running.grpc_endpoint, sent)
            results[name] = rollups(running)
            results[name]["spans"] = running.query("SELECT count(), countDistinct(TraceId) FROM spans")
            results[name]["partial"] = partial_traces(running)
            results[name]["counters"] = stats(running)
        finally:
            running.collector.stop()
    full, sampled = results["full"], results["sampled"]
    assert full["genai_usage_1m"] and full["genai_usage_1m"][0][6] > 0
    assert sum(r[11] for r in full["genai_usage_1m"]) > 0, "no call was priced"
    assert sampled["genai_usage_1m"] == full["genai_usage_1m"]
    assert sampled["genai_usage_1h"] == full["genai_usage_1h"]
    # ...while most span rows were sampled out, and no stored trace is partial.
    assert full["spans"] == [(480, 120)]
    kept_spans, kept_traces = sampled["spans"][0]
    assert 0 < kept_traces < 60 and kept_spans == 4 * kept_traces
    assert sampled["partial"] == []
    counters = sampled["counters"]
    kept = sum(counters[f"sample_traces_kept_{p}_total"] for p in
               ("error", "duration", "cost", "attribute", "rate_limit", "probabilistic"))
    assert kept == kept_traces and kept + counters["sample_traces_dropped_total"] == 120
    assert counters["sample_traces_kept_error_total"] > 0 and counters["sample_traces_kept_duration_total"] > 0


# --- held spans: the wait, and shutdown --------------------------------------------------


def test_a_trace_whose_root_never_comes_is_written_when_the_wait_passes(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", sampling={"keep_errors": True, "decision_wait_s": 0.5})
    try:
        from sampling_traffic import trace as make_trace

        orphans = make_trace(random.Random(1), n_children=3)[1:]
        send_raw = TraceServiceStub(grpc.insecure_channel(running.grpc_endpoint)).Export
        send_raw(request(orphans), timeout=30)
        store = running.collector.store
        wait_for(lambda: store.query_rows("SELECT count() FROM spans")[0][0] == 3, "held spans to be written")
        assert stats(running)["sample_wait_decisions_total"] == 1
    finally:
        running.collector.stop()


def test_stopping_the_collector_writes_held_traces(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", sampling={"keep_errors": True, "decision_wait_s": 600})
    from sampling_traffic import trace as make_trace

    children = [s for t in (make_trace(random.Random(i), n_children=2) for i in range(5)) for s in t[1:]]
    TraceServiceStub(grpc.insecure_channel(running.grpc_endpoint)).Export(request(children), timeout=30)
    assert stats(running)["sample_spans_held"] == 10
    assert running.collector.stop() == 0
    store = Store.open(running.store_url)
    try:
        assert store.query_rows("SELECT count() FROM spans") == [(10,)]
        assert store.query_rows("SELECT count() FROM genai_calls") == [(10,)]
    finally:
        store.close()
