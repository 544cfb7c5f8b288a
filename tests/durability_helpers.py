"""Helpers for the durability tests: GenAI OTLP requests, a client that counts OK answers, a store gate."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanhouse.collector.writer.clickhouse import ClickHouseSink
from faults import GatedSink


def StoreGate(store: Any) -> GatedSink:  # noqa: N802 - reads as the class it builds
    """The real ClickHouse sink over `store`, behind a gate a test can close or slow down."""
    return GatedSink(ClickHouseSink(store))

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def genai_request(spans: int, service: str = "durable-app") -> tuple[bytes, list[str]]:
    """A serialized export request of `spans` GenAI chat spans (new trace each) and their span ids (hex)."""
    now = time.time_ns()
    out: list[Span] = []
    ids: list[str] = []
    for i in range(spans):
        span_id = os.urandom(8)
        ids.append(span_id.hex())
        out.append(Span(
            trace_id=os.urandom(16), span_id=span_id, name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=now + i, end_time_unix_nano=now + i + 250_000_000,
            attributes=[_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
                        _kv("gen_ai.request.model", "gpt-4o"), _kv("gen_ai.usage.input_tokens", 100 + i),
                        _kv("gen_ai.usage.output_tokens", 7)],
        ))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": [_kv("service.name", service)]},
        scope_spans=[ScopeSpans(scope={"name": "durability-test"}, spans=out)],
    )])
    return request.SerializeToString(), ids


class OkCounter:
    """Sends export requests over a raw gRPC channel and remembers the span ids of every OK answer."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self._export = self.channel.unary_unary(EXPORT)
        self._lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.refusals: list[grpc.RpcError] = []

    def send(self, payload: bytes, span_ids: list[str], timeout_s: float = 30.0) -> bool:
        """True when the collector answered OK; False (and the error kept) when it said to retry."""
        try:
            self._export(payload, timeout=timeout_s)
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            with self._lock:
                self.refusals.append(exc)
            return False
        with self._lock:
            self.acknowledged.extend(span_ids)
        return True

    def close(self) -> None:
        self.channel.close()


def table_counts(query: Callable[[str], list[tuple[Any, ...]]]) -> dict[str, int]:
    """Rows in each table a span reaches; rollups as summed Calls."""
    return {
        "spans": query("SELECT count() FROM spans")[0][0],
        "spans_distinct": query("SELECT uniqExact(SpanId) FROM spans")[0][0],
        "spans_trace_id_ts": query("SELECT count() FROM spans_trace_id_ts")[0][0],
        "genai_calls": query("SELECT count() FROM genai_calls")[0][0],
        "genai_usage_1m": query("SELECT sum(Calls) FROM genai_usage_1m")[0][0],
        "genai_usage_1h": query("SELECT sum(Calls) FROM genai_usage_1h")[0][0],
        "trace_costs": query("SELECT sum(Calls) FROM trace_costs")[0][0],
    }


def missing_span_ids(query: Callable[[str], list[tuple[Any, ...]]], acknowledged: list[str]) -> list[str]:
    stored = {row[0] for row in query("SELECT SpanId FROM spans")}
    return [span_id for span_id in acknowledged if span_id not in stored]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)
