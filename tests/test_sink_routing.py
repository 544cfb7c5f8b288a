"""The routing columns decide which tables a span reaches; without them every span is stored."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanhouse.collector.batch import WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.receiver.decode import Decoder
from spanhouse.collector.store import Store
from spanhouse.collector.writer import ClickHouseSink


def four_spans() -> SpanBatch:
    """Two chat spans and two plain spans, in one trace."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i, name in enumerate(["chat a", "plain b", "chat c", "plain d"]):
        span = scope.spans.add(trace_id=b"\x01" * 16, span_id=bytes([0, 0, 0, 0, 0, 0, 0, i + 1]), name=name,
                               start_time_unix_nano=1_700_000_000_000_000_000,
                               end_time_unix_nano=1_700_000_001_000_000_000)
        if name.startswith("chat"):
            attribute = span.attributes.add(key="gen_ai.operation.name")
            attribute.value.string_value = "chat"
    return NormalizeProcessor().process(Decoder(1 << 20).decode(request, "t").batch)


def stored(store: Store) -> tuple[list[str], list[str]]:
    calls = [r[0] for r in store.query_rows("SELECT SpanName FROM genai_calls ORDER BY SpanName")]
    spans = [r[0] for r in store.query_rows("SELECT SpanName FROM spans ORDER BY SpanName")]
    return calls, spans


def test_without_routing_columns_every_span_and_every_call_is_stored(store: Store) -> None:
    ClickHouseSink(store).write(four_spans())
    assert stored(store) == (["chat a", "chat c"], ["chat a", "chat c", "plain b", "plain d"])


def test_routing_columns_select_rows_per_table(store: Store) -> None:
    batch = four_spans()
    batch.set_column(WRITE_CALL, [True, True, False, True])   # chat c's call was written before
    batch.set_column(WRITE_SPAN, [False, True, True, False])  # sampled out: chat a, plain d
    ClickHouseSink(store).write(batch)
    assert stored(store) == (["chat a"], ["chat c", "plain b"])


def test_concat_fills_missing_routing_columns_with_write_everything() -> None:
    routed = four_spans()
    routed.set_column(WRITE_SPAN, [False] * 4)
    merged = SpanBatch.concat([routed, four_spans()])
    assert merged[WRITE_SPAN] == [False] * 4 + [True] * 4
