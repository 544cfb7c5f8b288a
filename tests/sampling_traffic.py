"""Deterministic GenAI traces for the sampling tests: OTLP requests, and the batches the pipeline makes of them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector.batch import WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.receiver.decode import Decoder

# A whole minute an hour ago: inside retention, and every call in one minute bucket.
T0 = (time.time_ns() // 60_000_000_000 - 60) * 60_000_000_000
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")
PROVIDERS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-3-5-sonnet": "anthropic"}


@dataclass
class Span:
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    service: str = "chat-api"
    start: int = T0
    duration_ns: int = 1_000_000
    error: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    tracestate: str = ""
    flags: int = 0


def trace(rng: random.Random, n_children: int = 2, service: str = "chat-api", error: bool = False,
          slow_ns: int = 0, trace_id: bytes | None = None, **root_attributes: Any) -> list[Span]:
    """A root span and `n_children` chat calls under it (the last nested under the first)."""
    tid = trace_id or rng.randbytes(16)
    root = Span(tid, rng.randbytes(8), b"", "POST /answer", service, duration_ns=50_000_000 + slow_ns,
                attributes=dict(root_attributes))
    spans = [root]
    for c in range(n_children):
        parent = spans[1].span_id if c >= 2 else root.span_id
        model = MODELS[rng.randrange(len(MODELS))]
        spans.append(Span(tid, rng.randbytes(8), parent, f"chat {model}", service,
                          start=T0 + rng.randrange(1_000_000, 30_000_000_000),
                          duration_ns=rng.randrange(100_000_000, 5_000_000_000),
                          error=error and c == 0, attributes={
                              "gen_ai.operation.name": "chat", "gen_ai.provider.name": PROVIDERS[model],
                              "gen_ai.request.model": model, "gen_ai.response.model": model,
                              "gen_ai.usage.input_tokens": rng.randrange(10, 5000),
                              "gen_ai.usage.output_tokens": rng.randrange(1, 800),
                          }))
    return spans


def request(spans: list[Span]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    by_service: dict[str, Any] = {}
    for s in spans:
        scope = by_service.get(s.service)
        if scope is None:
            rs = req.resource_spans.add()
            kv = rs.resource.attributes.add(key="service.name")
            kv.value.string_value = s.service
            scope = by_service[s.service] = rs.scope_spans.add()
        span = scope.spans.add(trace_id=s.trace_id, span_id=s.span_id, parent_span_id=s.parent_id, name=s.name,
                               start_time_unix_nano=s.start, end_time_unix_nano=s.start + s.duration_ns,
                               trace_state=s.tracestate, flags=s.flags)
        if s.error:
            span.status.code = 2
        for key, value in s.attributes.items():
            attribute = span.attributes.add(key=key)
            if isinstance(value, int):
                attribute.value.int_value = value
            else:
                attribute.value.string_value = str(value)
    return req


def batch(spans: list[Span], tenant: str = "default") -> SpanBatch:
    """What the sampler receives: decoded and normalized."""
    return NormalizeProcessor().process(Decoder().decode(request(spans), tenant).batch)


def rows(batches: list[SpanBatch | None]) -> list[dict[str, Any]]:
    merged = SpanBatch.concat([b for b in batches if b is not None])
    return [{k: v[i] for k, v in merged.columns.items()} for i in range(merged.size)]


def stored_spans(batches: list[SpanBatch | None]) -> list[dict[str, Any]]:
    """Rows that would reach the `spans` table."""
    return [r for r in rows(batches) if r.get(WRITE_SPAN, True)]


def stored_calls(batches: list[SpanBatch | None]) -> list[dict[str, Any]]:
    """Rows that would reach `genai_calls`."""
    return [r for r in rows(batches) if r["Operation"] and r.get(WRITE_CALL, True)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
