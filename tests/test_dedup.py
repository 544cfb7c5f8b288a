"""A GenAI call traced by two instrumentors is counted once: in one export or split across exports, in either
order, with three instrumentors, with retried exports, and through a real collector with tail sampling on."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanhouse.collector.batch import DUPLICATE_OF, SpanBatch
from spanhouse.collector.processors.dedup import DedupConfig, DedupProcessor
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.receiver.decode import Decoder
from spanhouse.collector.store import Store
from spanhouse.collector.writer import ClickHouseSink

from collector_harness import start_collector

_ids = itertools.count(1)
T0 = (time.time_ns() // 1_000_000_000 - 600) * 1_000_000_000  # ten minutes ago: inside every retention


def span(trace: int, span_id: int, parent: int = 0, start_ms: int = 0, end_ms: int = 1000, name: str = "chat gpt-4o",
         **attributes: Any) -> dict[str, Any]:
    return {"trace": trace, "span": span_id, "parent": parent, "start": T0 + start_ms * 1_000_000,
            "end": T0 + end_ms * 1_000_000, "name": name, "attributes": attributes}


def chat(response_id: str = "chatcmpl-1", model: str = "gpt-4o", input_tokens: int = 120, output_tokens: int = 8,
         provider: str = "openai", operation: str = "chat") -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
                                  "gen_ai.request.model": model, "gen_ai.response.model": f"{model}-2025-01-01",
                                  "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    return attributes


def request(spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add()
    scope.resource.attributes.add(key="service.name").value.string_value = "app"
    out = scope.scope_spans.add()
    for s in spans:
        pb = out.spans.add(trace_id=s["trace"].to_bytes(16, "big"), span_id=s["span"].to_bytes(8, "big"),
                           parent_span_id=s["parent"].to_bytes(8, "big") if s["parent"] else b"", name=s["name"],
                           kind=3, start_time_unix_nano=s["start"], end_time_unix_nano=s["end"])
        for key, value in s["attributes"].items():
            kv = pb.attributes.add(key=key)
            if isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.string_value = value
    return req


def batch(spans: list[dict[str, Any]]) -> SpanBatch:
    return NormalizeProcessor().process(Decoder().decode(request(spans), "default").batch)


def marks(processor: DedupProcessor, *exports: list[dict[str, Any]]) -> dict[str, str]:
    """Span id -> the span it duplicates ('' when counted), over the exports in order."""
    out: dict[str, str] = {}
    for spans in exports:
        b = processor.process(batch(spans))
        column = b.columns.get(DUPLICATE_OF, [""] * b.size)
        out.update(dict(zip(b["SpanId"], column)))
    return out


def hexid(n: int) -> str:
    return f"{n:016x}"


OUTER = span(1, 1, name="chat gpt-4o", **chat())  # our instrumentor's span
INNER = span(1, 2, parent=1, start_ms=5, end_ms=990, **chat())  # the other instrumentor's, inside it


@pytest.mark.parametrize("exports", [
    pytest.param([[OUTER, INNER]], id="one-export"),
    pytest.param([[INNER, OUTER]], id="one-export-child-listed-first"),
    pytest.param([[INNER], [OUTER]], id="child-exported-first"),
])
def test_the_inner_span_counts_and_the_outer_names_it(exports: list[list[dict[str, Any]]]) -> None:
    processor = DedupProcessor(DedupConfig())
    assert marks(processor, *exports) == {hexid(1): hexid(2), hexid(2): ""}
    assert processor.counters()["calls_duplicate_total"] == 1


def test_an_outer_span_exported_first_is_counted_and_the_inner_one_marked() -> None:
    assert marks(DedupProcessor(DedupConfig()), [OUTER], [INNER]) == {hexid(1): "", hexid(2): hexid(1)}


@pytest.mark.parametrize(("outer", "inner", "duplicate"), [
    pytest.param(chat(), chat(), True, id="same-response-id"),
    pytest.param(chat(response_id=""), chat(response_id=""), True, id="no-id-same-model-and-tokens"),
    pytest.param(chat(response_id=""), chat(response_id="", output_tokens=9), False, id="no-id-other-tokens"),
    pytest.param(chat(response_id="a"), chat(response_id="b", input_tokens=1), False, id="other-ids-other-tokens"),
    pytest.param(chat(), chat(provider="anthropic"), False, id="other-provider"),
    pytest.param(chat(operation="invoke_agent"), chat(), False, id="agent-over-its-call"),
    pytest.param(chat(response_id="", input_tokens=0, output_tokens=0), chat(response_id="", input_tokens=0,
                 output_tokens=0), True, id="zero-usage-is-usage"),
])
def test_what_makes_two_nested_spans_one_call(outer: dict[str, Any], inner: dict[str, Any], duplicate: bool) -> None:
    result = marks(DedupProcessor(DedupConfig()), [span(7, 1, **outer), span(7, 2, parent=1, start_ms=1,
                                                                                end_ms=999, **inner)])
    assert result[hexid(1)] == (hexid(2) if duplicate else "")


def test_a_child_outside_its_parents_time_is_another_call() -> None:
    late = span(1, 2, parent=1, start_ms=500, end_ms=2000, **chat())
    assert marks(DedupProcessor(DedupConfig()), [OUTER, late]) == {hexid(1): "", hexid(2): ""}


def test_sibling_calls_with_equal_usage_are_both_counted() -> None:
    root = span(3, 1, name="agent", end_ms=5000)
    first = span(3, 2, parent=1, start_ms=1, end_ms=100, **chat(response_id=""))
    second = span(3, 3, parent=1, start_ms=200, end_ms=300, **chat(response_id=""))
    assert set(marks(DedupProcessor(DedupConfig()), [root, first, second]).values()) == {""}


def test_three_instrumentors_count_the_innermost_once() -> None:
    a = span(5, 1, **chat())
    b = span(5, 2, parent=1, start_ms=1, end_ms=999, **chat())
    c = span(5, 3, parent=2, start_ms=2, end_ms=998, **chat())
    assert marks(DedupProcessor(DedupConfig()), [c], [b], [a]) == {hexid(1): hexid(3), hexid(2): hexid(3), hexid(3): ""}


def test_a_retried_export_gets_the_same_decision() -> None:
    processor = DedupProcessor(DedupConfig())
    assert marks(processor, [INNER], [OUTER], [OUTER]) == {hexid(1): hexid(2), hexid(2): ""}
    assert processor.counters()["calls_seen_total"] == 2


def test_calls_are_forgotten_after_the_window() -> None:
    now = [0.0]
    processor = DedupProcessor(DedupConfig(window_s=10), clock=lambda: now[0])
    marks(processor, [INNER])
    now[0] = 11.0
    assert marks(processor, [OUTER]) == {hexid(1): ""}
    assert processor.counters()["calls_remembered"] == 1



def test_the_oldest_calls_are_forgotten_past_max_calls_and_their_twins_counted() -> None:
    processor = DedupProcessor(DedupConfig(max_calls=2))
    own_trace = span(12, 2, start_ms=3, end_ms=990, **chat(response_id="msg_9"))  # matched by response id only
    marks(processor, [INNER, own_trace])
    marks(processor, [span(20, 5, **chat(response_id="other")), span(21, 6, **chat(response_id="other-2"))])
    # The first export's calls are forgotten when the next arrives: what comes for them now stands alone.
    assert marks(processor, [OUTER, span(11, 3, **chat(response_id="msg_9"))]) == {hexid(1): "", hexid(3): ""}
    assert processor.counters()["calls_remembered"] == 4  # expiry runs as a batch arrives, before it is added
    # Remembered, the same two would have been marked (the control for the assertion above).
    fresh = DedupProcessor(DedupConfig(max_calls=2))
    marks(fresh, [INNER, own_trace])
    assert marks(fresh, [OUTER, span(11, 3, **chat(response_id="msg_9"))]) == {hexid(1): hexid(2), hexid(3): hexid(2)}


def test_one_response_id_in_two_tenants_is_two_calls() -> None:
    processor = DedupProcessor(DedupConfig())
    ours = processor.process(tenant_batch([span(11, 1, **chat(response_id="msg_7"))], "acme"))
    theirs = processor.process(tenant_batch([span(12, 2, start_ms=3, end_ms=990, **chat(response_id="msg_7"))],
                                            "globex"))
    assert DUPLICATE_OF not in ours.columns and DUPLICATE_OF not in theirs.columns
    assert processor.counters()["calls_duplicate_total"] == 0


def tenant_batch(spans: list[dict[str, Any]], tenant: str) -> SpanBatch:
    return NormalizeProcessor().process(Decoder().decode(request(spans), tenant).batch)


def test_spans_with_no_response_id_and_no_usage_are_counted_but_not_remembered() -> None:
    """A tool or an agent span can be no call's twin: remembering it would only hold memory."""
    processor = DedupProcessor(DedupConfig())
    agent = span(8, 1, name="invoke_agent", end_ms=5000, **{"gen_ai.operation.name": "invoke_agent",
                                                           "gen_ai.provider.name": "openai"})
    tool = span(8, 2, parent=1, start_ms=10, end_ms=20, name="execute_tool", **{"gen_ai.operation.name": "execute_tool"})
    call = span(8, 3, parent=1, start_ms=30, end_ms=900, **chat())
    assert marks(processor, [agent, tool], [call]) == {hexid(1): "", hexid(2): "", hexid(3): ""}
    assert processor.counters() == {"calls_seen_total": 3, "calls_duplicate_total": 0, "calls_remembered": 1}

def test_off_leaves_batches_alone() -> None:
    b = DedupProcessor(DedupConfig(enabled=False)).process(batch([OUTER, INNER]))
    assert DUPLICATE_OF not in b.columns


def test_the_sink_writes_one_call_and_both_spans(store: Store) -> None:
    b = DedupProcessor(DedupConfig()).process(batch([OUTER, INNER]))
    ClickHouseSink(store).write(b, token="dedup-1")
    assert store.query_rows("SELECT SpanId FROM genai_calls") == [(hexid(2),)]
    assert sorted(store.query_rows("SELECT SpanId, DuplicateOf FROM spans")) == [(hexid(1), hexid(2)), (hexid(2), "")]


@pytest.mark.parametrize("sampling", [{}, {"keep_errors": True, "rate": 0.0, "decision_wait_s": 0.2}],
                         ids=["no-sampling", "tail-sampling"])
def test_through_a_collector_every_table_counts_the_call_once(tmp_path: Path, sampling: dict[str, Any]) -> None:
    running = start_collector(tmp_path / "data", sampling=sampling)
    try:
        with grpc.insecure_channel(running.grpc_endpoint) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                         request_serializer=ExportTraceServiceRequest.SerializeToString,
                                         response_deserializer=lambda b: b)
            root = span(9, 100, name="POST /ask", end_ms=3000)
            calls = []
            for n in range(3):  # three calls, each traced twice, the inner span exported first
                outer = span(9, 10 + n, parent=100, start_ms=n * 900, end_ms=n * 900 + 800,
                             **chat(response_id=f"chatcmpl-{n}"))
                inner = span(9, 20 + n, parent=10 + n, start_ms=n * 900 + 5, end_ms=n * 900 + 790,
                             **chat(response_id=f"chatcmpl-{n}"))
                export(request([inner]))
                calls.append(outer)
            export(request([*calls, root]))
        assert running.query("SELECT count(), sum(InputTokens) FROM genai_calls") == [(3, 360)]
        assert running.query("SELECT sum(Calls), sum(InputTokens) FROM genai_usage_1m") == [(3, 360)]
        if not sampling:
            assert running.query("SELECT count(), countIf(DuplicateOf != '') FROM spans") == [(7, 3)]
        counters = running.collector.counters()
        assert counters["dedup_calls_duplicate_total"] == 3
    finally:
        running.collector.stop()


def test_the_trace_report_counts_a_call_traced_twice_once(tmp_path: Path) -> None:
    from spanhouse.collector.query import reports

    running = start_collector(tmp_path / "data")
    try:
        with grpc.insecure_channel(running.grpc_endpoint) as channel:
            channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                request_serializer=ExportTraceServiceRequest.SerializeToString,
                                response_deserializer=lambda b: b)(request([INNER, OUTER]))
        running.flush()

        def run_sql(sql: str) -> tuple[list[str], list[list[Any]]]:
            import json

            doc = json.loads(running.collector.store.raw_query(sql, "JSONCompact"))
            return [m["name"] for m in doc["meta"]], doc["data"]

        text = reports.trace_tree(run_sql, f"{1:032x}")
        assert "2 spans" in text and "128 tokens" in text  # one call's 120 + 8, not twice
        assert f"(same call as {hexid(2)}, counted there)" in text
    finally:
        running.collector.stop()


def test_an_instrumentor_that_starts_its_own_trace_is_matched_by_response_id() -> None:
    """Not nested: the other instrumentor's span is a root of a trace of its own, inside ours in time."""
    ours = span(11, 1, **chat(response_id="msg_7"))
    theirs = span(12, 2, start_ms=3, end_ms=990, **chat(response_id="msg_7"))
    assert marks(DedupProcessor(DedupConfig()), [theirs], [ours]) == {hexid(1): hexid(2), hexid(2): ""}
    assert marks(DedupProcessor(DedupConfig()), [ours], [theirs]) == {hexid(1): "", hexid(2): hexid(1)}


def test_calls_one_after_another_with_one_response_id_are_both_counted() -> None:
    """A fake or a cache may answer twice with one id: calls that do not overlap are two calls."""
    first = span(13, 1, start_ms=0, end_ms=100, **chat(response_id="msg_1"))
    second = span(14, 2, start_ms=200, end_ms=300, **chat(response_id="msg_1"))
    assert marks(DedupProcessor(DedupConfig()), [first, second]) == {hexid(1): "", hexid(2): ""}


@given(st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whatever_the_export_order_each_call_is_counted_once(data: st.DataObject) -> None:
    """Calls traced by one to three instrumentors (nested, or one starting a trace of its own), sent in any order
    and any split into exports: exactly one span per call is counted, and every mark names a span of that call."""
    calls = data.draw(st.integers(1, 6))
    spans: list[dict[str, Any]] = []
    call_of: dict[str, int] = {}
    next_id = itertools.count(1)
    for c in range(calls):
        trace = 100 + c
        layers = data.draw(st.integers(1, 3))
        separate_root = layers > 1 and data.draw(st.booleans())
        attributes = chat(response_id=f"resp-{c}", input_tokens=10 + c)
        parent = 0
        for depth in range(layers):
            sid = next(next_id)
            own_trace = separate_root and depth == layers - 1
            spans.append(span(1000 + c if own_trace else trace, sid, 0 if own_trace else parent,
                              start_ms=c * 2000 + depth, end_ms=c * 2000 + 1000 - depth, **attributes))
            call_of[hexid(sid)] = c
            parent = sid
    order = data.draw(st.permutations(spans))
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=3, unique=True)))
    exports = [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(order)]) if order[a:b]]
    result = marks(DedupProcessor(DedupConfig()), *exports)
    counted = [s for s, duplicate_of in result.items() if not duplicate_of]
    assert sorted(call_of[s] for s in counted) == list(range(calls))
    assert all(call_of[duplicate_of] == call_of[s] and not result[duplicate_of]
               for s, duplicate_of in result.items() if duplicate_of)
