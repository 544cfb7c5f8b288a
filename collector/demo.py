"""Synthetic GenAI traffic over real OTLP/gRPC, and a summary read back with `spanhouse usage`'s query.

Each trace is an agent turn: `invoke_agent` -> LLM calls (some streaming) ->
tool calls -> a final LLM call, across several services, providers and models,
with rate-limit errors and a few slow calls. Span times are set explicitly, so
the traffic looks like minutes of real use but is sent in a moment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from spanhouse.collector.query.reports import RunSql

SERVICES = ("support-bot", "research-agent", "doc-summarizer")
MODELS = (  # provider, request model, response model, server address
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", "api.openai.com"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "api.anthropic.com"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "api.anthropic.com"),
    # As spanhouse's Google GenAI instrumentor records a Gemini API call (operation generate_content).
    ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", "generativelanguage.googleapis.com"),
)
# How the demo's agent runs end, and how often (the Sessions tab's outcomes); a surfaced run says why.
OUTCOMES = (("completed", 80), ("surfaced", 12), ("errored", 5), ("timed_out", 3))
SURFACE_REASONS = ("refund above the automatic limit", "the customer asked for a person", "low confidence")
TOOLS = ("search_docs", "get_order_status", "run_sql", "fetch_url")
QUESTIONS = ("Where is my order 4417?", "Summarize the attached design doc in three bullet points.",
             "Which customers churned last month?", "How do I rotate my API key?",
             "Compare the latency of our two search backends.")


def _messages(rng: random.Random, finish: str) -> dict[str, str]:
    """The call's conversation in the current conventions' JSON (what an instrumentor captures with content on)."""
    import json

    question = rng.choice(QUESTIONS)
    inputs = [{"role": "system", "parts": [{"type": "text", "content": "You are a concise support assistant."}]},
              {"role": "user", "parts": [{"type": "text", "content": question}]}]
    if finish == "tool_calls":
        tool = rng.choice(TOOLS)
        output = [{"role": "assistant", "finish_reason": finish, "parts": [
            {"type": "tool_call", "id": f"call_{rng.getrandbits(32):08x}", "name": tool,
             "arguments": {"query": question[:40]}}]}]
    else:
        output = [{"role": "assistant", "finish_reason": finish, "parts": [
            {"type": "text", "content": f"Here is what I found about: {question.lower().rstrip('?.')}."}]}]
    return {"gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(output)}


def _chat(tracer: Any, rng: random.Random, start_ns: int, model: tuple[str, str, str, str],
          conversation: str) -> int:
    """One chat span starting at `start_ns`; returns its end time."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider, request_model, response_model, host = model
    gemini = provider == "gcp.gemini"
    operation = "generate_content" if gemini else "chat"
    stream = rng.random() < 0.4
    slow = rng.random() < 0.05
    failed = rng.random() < 0.04
    duration_ms = rng.lognormvariate(6.6, 0.5) * (6 if slow else 1)
    span = tracer.start_span(f"{operation} {request_model}", kind=SpanKind.CLIENT, start_time=start_ns)
    input_tokens = rng.randint(200, 4000)
    cached = rng.choice((0, 0, input_tokens // 2))
    span.set_attributes({
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.request.stream": stream,
        "gen_ai.conversation.id": conversation,
        "server.address": host,
        "server.port": 443,
    })
    if failed:
        span.set_attributes({"error.type": "429"})
        span.set_status(Status(StatusCode.ERROR, "rate limit exceeded"))
        duration_ms = rng.uniform(40, 120)
    else:
        output_tokens = rng.randint(20, 800)
        finish = rng.choice(("stop", "stop", "max_tokens") if gemini else ("stop", "stop", "tool_calls", "length"))
        span.set_attributes(_messages(rng, finish))
        if gemini:
            # Thinking tokens: part of output_tokens (and billed as output), also given on their own.
            thoughts = rng.randint(0, 2 * output_tokens)
            output_tokens += thoughts
            span.set_attribute("gen_ai.usage.reasoning.output_tokens", thoughts)
        span.set_attributes({
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": f"resp_{rng.getrandbits(64):016x}",
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.usage.cache_read.input_tokens": cached,
        })
        if stream:
            span.set_attribute("gen_ai.response.time_to_first_chunk", round(duration_ms * rng.uniform(0.1, 0.3) / 1e3, 4))
    end_ns = start_ns + int(duration_ms * 1e6)
    span.end(end_time=end_ns)
    return end_ns


def _tool(tracer: Any, rng: random.Random, start_ns: int) -> int:
    from opentelemetry.trace import SpanKind

    name = rng.choice(TOOLS)
    span = tracer.start_span(f"execute_tool {name}", kind=SpanKind.INTERNAL, start_time=start_ns)
    span.set_attributes({
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):012x}",
        "gen_ai.tool.type": "function",
    })
    span.add_event("tool.result", {"bytes": rng.randint(100, 5000)}, timestamp=start_ns + 1000)
    end_ns = start_ns + int(rng.uniform(5, 400) * 1e6)
    span.end(end_time=end_ns)
    return end_ns


def _trace(tracer: Any, rng: random.Random, start_ns: int) -> int:
    """One agent turn; returns the number of spans made."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    model = rng.choice(MODELS)
    conversation = f"conv_{rng.getrandbits(32) % 64:04d}"  # a few turns per conversation (sessions)
    agent = tracer.start_span("invoke_agent assistant", kind=SpanKind.INTERNAL, start_time=start_ns)
    agent.set_attributes({
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "assistant",
        "gen_ai.agent.id": "asst_demo_1",
        "gen_ai.provider.name": model[0],
        "gen_ai.conversation.id": conversation,
    })
    # Who asked, which agent version ran, and how the task ended: drawn from a generator of their own, so the
    # demo's calls, tokens and costs are those of earlier releases.
    task = random.Random(start_ns)
    status = task.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
    agent.set_attributes({
        "spanhouse.user.id_hash": hashlib.sha256(f"demo-user-{int(conversation[5:]) % 24}".encode()).hexdigest(),
        "gen_ai.agent.version": task.choice(("1.4.0", "1.5.0")),
        "spanhouse.outcome": status,
        **({"spanhouse.outcome.reason": task.choice(SURFACE_REASONS)} if status == "surfaced" else {}),
    })
    spans = 1
    t = start_ns + 1_000_000
    with trace.use_span(agent, end_on_exit=False):
        t = _chat(tracer, rng, t, model, conversation)
        spans += 1
        for _ in range(rng.randint(0, 3)):
            t = _tool(tracer, rng, t + 500_000)
            spans += 1
        if spans > 2:
            t = _chat(tracer, rng, t + 500_000, model, conversation)
            spans += 1
    agent.end(end_time=t + 1_000_000)
    return spans


@dataclass
class SendResult:
    """What the collector did with the demo's spans, as the OTLP exporter saw its answers."""

    spans: int = 0  # spans the demo made
    exported: int = 0  # spans in exports the collector accepted
    refused: int = 0  # spans in exports that failed (refused, e.g. without a valid API key, or unreachable)
    exports_failed: int = 0
    reason: str = ""  # the exporter's words for the last failure, e.g. the collector's refusal


class _FailureLog(logging.Handler):
    """Keeps the OTLP exporter's last failure message, so the demo can say why in one line of its own."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(logging.WARNING)
        self._result = result

    def emit(self, record: logging.LogRecord) -> None:
        self._result.reason = record.getMessage()


class _CountingExporter:
    """Wraps the OTLP exporter to count the spans of each export by its result: the SDK's batch processor
    drops a failed export after logging it, so its result is the only place a refusal shows."""

    def __init__(self, inner: Any, result: SendResult, lock: threading.Lock) -> None:
        self._inner = inner
        self._result = result
        self._lock = lock

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        outcome = self._inner.export(spans)
        with self._lock:
            if outcome == SpanExportResult.SUCCESS:
                self._result.exported += len(spans)
            else:
                self._result.refused += len(spans)
                self._result.exports_failed += 1
        return outcome

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


def send(endpoint: str, traces: int = 200, seed: int = 7, key: str = "") -> SendResult:
    """Send `traces` agent turns to an OTLP/gRPC `endpoint` (HOST:PORT); returns what got through.

    `key`: an API key sent as `authorization: Bearer`; without it the exporter's own configuration
    (OTEL_EXPORTER_OTLP_HEADERS) decides what is sent."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    rng = random.Random(seed)
    now = time.time_ns()
    result = SendResult()
    lock = threading.Lock()
    providers = {}
    for service in SERVICES:
        provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "demo"}))
        headers = {"authorization": f"Bearer {key}"} if key else None
        exporter = _CountingExporter(OTLPSpanExporter(endpoint=f"http://{endpoint}", insecure=True, timeout=30,
                                                      headers=headers), result, lock)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000))  # type: ignore[arg-type]
        providers[service] = provider
    # The exporter logs each failure on its own; the demo reports them once, with the count (see SendResult).
    exporter_log = logging.getLogger(_EXPORTER_LOGGER)
    handler, propagate = _FailureLog(result), exporter_log.propagate
    exporter_log.addHandler(handler)
    exporter_log.propagate = False
    try:
        for i in range(traces):
            service = SERVICES[i % len(SERVICES)]
            tracer = providers[service].get_tracer("spanhouse.demo")
            start = now - int(rng.uniform(0, 600) * 1e9)
            result.spans += _trace(tracer, rng, start)
        for provider in providers.values():
            if not provider.force_flush(60_000):
                raise TimeoutError(f"the collector at {endpoint} did not take the demo spans within 60 s")
            provider.shutdown()
    finally:
        exporter_log.removeHandler(handler)
        exporter_log.propagate = propagate
    return result


_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


SUMMARY_WINDOW = dt.timedelta(hours=24)


def summary_table(run_sql: RunSql, now: dt.datetime | None = None) -> str:
    """Calls, errors, tokens, cost and latency per model over the last day: `spanhouse usage`'s own query and
    table, so the two agree; a model without a price shows an empty cost, not 0."""
    from spanhouse.collector.query import reports
    from spanhouse.collector.query.render import format_table

    until = now or dt.datetime.now(dt.UTC)
    names, rows = reports.usage(run_sql, "model", until - SUMMARY_WINDOW, until)
    return "GenAI usage by model, last 24 h (as `spanhouse usage` prints it):\n" + format_table(names, rows)
