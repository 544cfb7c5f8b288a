"""End to end: the real OpenTelemetry Python SDK exporter -> collector over gRPC -> embedded ClickHouse."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

# Span times are set explicitly so stored values can be asserted exactly: a whole
# minute an hour ago (inside the default retention, all spans in one minute bucket).
T0 = (time.time_ns() // 60_000_000_000 - 60) * 60_000_000_000


def _ts(ns: int) -> datetime:
    """How clickhouse-connect returns a DateTime64(9) value: naive UTC, microsecond precision."""
    return datetime(1970, 1, 1) + timedelta(microseconds=ns // 1000)


@pytest.fixture
def sent(running_collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=running_collector.grpc_endpoint,
                                                                     insecure=True)))
    tracer = provider.get_tracer("e2e.tests", "1.2.3")
    root = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=T0,
                             attributes={"http.request.method": "POST", "http.response.status_code": 200})
    root.add_event("cart.loaded", {"items": 3, "vip": True}, timestamp=T0 + 1_000)
    root_ctx = root.get_span_context()
    from opentelemetry import trace

    with trace.use_span(root, end_on_exit=False):
        chat = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=T0 + 2_000_000, attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.response.id": "chatcmpl-123",
            "gen_ai.response.finish_reasons": ["stop", "tool_calls"],
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 0,
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.conversation.id": "conv-9",
            "gen_ai.agent.name": "cashier",
            "gen_ai.agent.id": "agent-1",
            "temperatures": [0.1, 0.2],
        }, links=[Link(root_ctx, {"link.kind": "caused-by"})])
        chat.end(end_time=T0 + 802_000_000)
        tool = tracer.start_span("execute_tool lookup", start_time=T0 + 810_000_000, attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup", "gen_ai.tool.call.id": "call_7",
            "error.type": "TimeoutError"})
        tool.set_status(Status(StatusCode.ERROR, "lookup timed out"))
        tool.end(end_time=T0 + 1_010_000_000)
        legacy = tracer.start_span("chat claude", kind=SpanKind.CLIENT, start_time=T0 + 1_100_000_000, attributes={
            "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3-5-sonnet",
            "gen_ai.usage.prompt_tokens": 50, "gen_ai.usage.completion_tokens": 7})
        legacy.end(end_time=T0 + 1_500_000_000)
    root.end(end_time=T0 + 2_000_000_000)
    assert provider.force_flush(30_000)
    provider.shutdown()
    return {"root": root, "chat": chat, "tool": tool, "legacy": legacy}


COLUMNS = ("TenantId, Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, "
           "ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes, Duration, StatusCode, StatusMessage, "
           "Events.Timestamp, Events.Name, Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, "
           "Links.Attributes, Operation, Provider, RequestModel, ResponseModel, ResponseId, FinishReasons, "
           "InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens, CostTotal, "
           "TimeToFirstToken, ToolName, ToolCallId, AgentName, AgentId, ConversationId, ErrorType")


def _row(running_collector, span_name: str) -> dict:
    names = [c.strip() for c in COLUMNS.split(",")]
    rows = running_collector.query(f"SELECT {COLUMNS} FROM spans WHERE SpanName = {{n:String}}", {"n": span_name})
    assert len(rows) == 1, f"expected one stored {span_name!r} span, got {len(rows)}"
    return dict(zip(names, rows[0]))


def test_non_genai_span_keeps_every_otel_column(running_collector, sent):
    root = sent["root"].get_span_context()
    row = _row(running_collector, "POST /checkout")
    assert row["TenantId"] == "default"
    assert row["Timestamp"] == _ts(T0)
    assert row["TraceId"] == f"{root.trace_id:032x}"
    assert row["SpanId"] == f"{root.span_id:016x}"
    assert row["ParentSpanId"] == ""
    assert row["SpanKind"] == "Server"
    assert row["ServiceName"] == "checkout"
    assert row["ResourceAttributes"]["service.name"] == "checkout"
    assert row["ResourceAttributes"]["deployment.environment"] == "test"
    assert row["ResourceAttributes"]["telemetry.sdk.language"] == "python"
    assert (row["ScopeName"], row["ScopeVersion"]) == ("e2e.tests", "1.2.3")
    assert row["SpanAttributes"] == {"http.request.method": "POST", "http.response.status_code": "200"}
    assert row["Duration"] == 2_000_000_000
    assert (row["StatusCode"], row["StatusMessage"]) == ("Unset", "")
    assert row["Events.Name"] == ["cart.loaded"]
    assert row["Events.Attributes"] == [{"items": "3", "vip": "true"}]
    assert row["Events.Timestamp"] == [_ts(T0 + 1_000)]
    assert row["Links.TraceId"] == []
    assert row["Operation"] == "" and row["InputTokens"] is None and row["FinishReasons"] == []


def test_genai_span_fills_typed_columns_and_links(running_collector, sent):
    root = sent["root"].get_span_context()
    row = _row(running_collector, "chat gpt-4o")
    assert row["ParentSpanId"] == f"{root.span_id:016x}"
    assert row["SpanKind"] == "Client"
    assert row["Duration"] == 800_000_000
    assert row["SpanAttributes"]["temperatures"] == "[0.1,0.2]"
    assert row["SpanAttributes"]["gen_ai.response.finish_reasons"] == '["stop","tool_calls"]'
    assert row["Links.TraceId"] == [f"{root.trace_id:032x}"]
    assert row["Links.SpanId"] == [f"{root.span_id:016x}"]
    assert row["Links.Attributes"] == [{"link.kind": "caused-by"}]
    expected = {
        "Operation": "chat", "Provider": "openai", "RequestModel": "gpt-4o", "ResponseModel": "gpt-4o-2024-08-06",
        "ResponseId": "chatcmpl-123", "FinishReasons": ["stop", "tool_calls"], "InputTokens": 1200,
        "OutputTokens": 300, "CacheReadTokens": 1000, "CacheWriteTokens": 0, "ReasoningTokens": None,
        "TimeToFirstToken": 0.25, "ToolName": "", "ToolCallId": "", "AgentName": "cashier",
        "AgentId": "agent-1", "ConversationId": "conv-9", "ErrorType": "",
    }
    assert {k: row[k] for k in expected} == expected
    # gpt-4o list price: $2.50 uncached input, $1.25 cached input, $10 output per million tokens.
    assert row["CostTotal"] == pytest.approx((200 * 2.50 + 1000 * 1.25 + 300 * 10.00) / 1e6)


def test_error_tool_span_and_deprecated_names(running_collector, sent):
    tool = _row(running_collector, "execute_tool lookup")
    assert (tool["StatusCode"], tool["StatusMessage"]) == ("Error", "lookup timed out")
    assert (tool["Operation"], tool["ToolName"], tool["ToolCallId"], tool["ErrorType"]) == (
        "execute_tool", "lookup", "call_7", "TimeoutError")
    legacy = _row(running_collector, "chat claude")
    assert (legacy["Operation"], legacy["Provider"], legacy["InputTokens"], legacy["OutputTokens"]) == (
        "chat", "anthropic", 50, 7)


def test_genai_calls_rollups_and_trace_lookup(running_collector, sent):
    trace_id = f"{sent['root'].get_span_context().trace_id:032x}"
    calls = running_collector.query(
        "SELECT SpanName, Operation, Model, InputTokens, OutputTokens, CacheReadTokens, Duration, TimeToFirstToken,"
        " StatusCode, ErrorType, ServiceName, TraceId FROM genai_calls ORDER BY Timestamp")
    assert calls == [
        ("chat gpt-4o", "chat", "gpt-4o-2024-08-06", 1200, 300, 1000, 800_000_000, 0.25, "Unset", "", "checkout",
         trace_id),
        ("execute_tool lookup", "execute_tool", "", None, None, None, 200_000_000, None, "Error", "TimeoutError",
         "checkout", trace_id),
        ("chat claude", "chat", "claude-3-5-sonnet", 50, 7, None, 400_000_000, None, "Unset", "", "checkout", trace_id),
    ]
    for table, bucket in (("genai_usage_1m", "Minute"), ("genai_usage_1h", "Hour")):
        rollup = running_collector.query(
            f"SELECT Model, Operation, sum(Calls), sum(Errors), sum(InputTokens), sum(OutputTokens),"
            f" sum(CacheReadTokens), quantilesTDigestMerge(0.5)(DurationMs)[1], count(DISTINCT {bucket})"
            f" FROM {table} GROUP BY Model, Operation ORDER BY Model")
        assert rollup == [
            ("", "execute_tool", 1, 1, 0, 0, 0, 200.0, 1),
            ("claude-3-5-sonnet", "chat", 1, 0, 50, 7, 0, 400.0, 1),
            ("gpt-4o-2024-08-06", "chat", 1, 0, 1200, 300, 1000, 800.0, 1),
        ], table
    lookup = running_collector.query(
        "SELECT min(Start), max(End) FROM spans_trace_id_ts WHERE TraceId = {t:String}", {"t": trace_id})
    assert lookup == [(_ts(T0), _ts(T0 + 2_000_000_000))]
