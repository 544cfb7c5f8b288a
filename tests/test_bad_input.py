"""Bad OTLP input through the real gRPC server: refused or repaired per span, never fatal to the collector."""

from __future__ import annotations

import gzip
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.collector.receiver import lenient
from spanhouse.collector.writer import InMemorySink

from collector_harness import RunningCollector, start_collector, start_memory_collector

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
DEFAULT_MAX_ATTRIBUTE_VALUE_LENGTH = 1 << 20


# --- helpers ------------------------------------------------------------------------


class Client:
    """Raw-bytes OTLP/gRPC client: sends exactly the bytes a test built."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 64 << 20)])
        self.export = self.channel.unary_unary(EXPORT, request_serializer=None,
                                               response_deserializer=ExportTraceServiceResponse.FromString)

    def send(self, data: bytes, **kwargs: Any) -> ExportTraceServiceResponse:
        return self.export(data, timeout=30, **kwargs)

    def refused(self, data: bytes, **kwargs: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            self.send(data, **kwargs)
        return info.value


def add_span(request: Any, trace_id: bytes, name: str, span_id: bytes | None = None,
             attributes: dict[str, Any] | None = None, service: str = "svc") -> Any:
    """Append a span (in its own resource) to `request`; works for the real and the lenient twin class."""
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    raw = isinstance(kv.key, bytes)  # the lenient twin declares every string field as bytes
    kv.key = b"service.name" if raw else "service.name"
    kv.value.string_value = service.encode() if raw else service
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id = trace_id
    span.span_id = os.urandom(8) if span_id is None else span_id
    span.name = name
    span.start_time_unix_nano = time.time_ns()  # recent: older rows fall under the spans TTL at insert
    span.end_time_unix_nano = span.start_time_unix_nano + 500_000_000
    for key, value in (attributes or {}).items():
        kv = span.attributes.add()
        kv.key = key
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value
    return span


def good_request(trace_id: bytes, *names: str) -> bytes:
    request = ExportTraceServiceRequest()
    for name in names:
        add_span(request, trace_id, name)
    return request.SerializeToString()


def stored(running: RunningCollector, trace_id: bytes, what: str = "SpanName") -> list[tuple[Any, ...]]:
    return running.query(f"SELECT {what} FROM spans WHERE TraceId = {{t:String}} ORDER BY SpanName",
                         {"t": trace_id.hex()})


def assert_still_serving(running: RunningCollector, client: Client) -> None:
    trace_id = os.urandom(16)
    response = client.send(good_request(trace_id, "after"))
    assert not response.HasField("partial_success")
    assert stored(running, trace_id) == [("after",)]


@pytest.fixture
def collector(running_collector: RunningCollector) -> RunningCollector:
    return running_collector


@pytest.fixture
def client(running_collector: RunningCollector) -> Iterator[Client]:
    c = Client(running_collector.grpc_endpoint)
    yield c
    c.channel.close()


# --- whole-request refusals -------------------------------------------------------------


def _truncated_request() -> bytes:
    data = good_request(bytes(range(1, 17)), "a", "b")
    return data[:-3]  # cut inside the last span


@pytest.mark.parametrize("data", [
    pytest.param(random.Random(0).randbytes(4096), id="random-bytes"),
    pytest.param(_truncated_request(), id="truncated-protobuf"),
    pytest.param(gzip.compress(good_request(bytes(range(1, 17)), "x")), id="gzip-body-without-grpc-compression"),
])
def test_undecodable_request_is_invalid_argument_and_collector_keeps_serving(
        collector: RunningCollector, client: Client, data: bytes) -> None:
    invalid_before = collector.collector.counters()["receiver_requests_invalid_total"]
    error = client.refused(data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP ExportTraceServiceRequest" in error.details()
    assert collector.query("SELECT count() FROM spans") == [(0,)]
    assert collector.collector.counters()["receiver_requests_invalid_total"] == invalid_before + 1
    assert_still_serving(collector, client)


def test_empty_request_is_ok_and_stores_nothing(collector: RunningCollector, client: Client) -> None:
    response = client.send(b"")
    assert not response.HasField("partial_success")
    assert collector.query("SELECT count() FROM spans") == [(0,)]
    assert_still_serving(collector, client)


# --- per-span problems: partial_success, neighbours stored ------------------------------------


@pytest.mark.parametrize("bad_ids, problem", [
    ({"trace_id": os.urandom(15)}, "trace_id must be 16 bytes, got 15"),
    ({"trace_id": os.urandom(17)}, "trace_id must be 16 bytes, got 17"),
    ({"trace_id": b""}, "trace_id must be 16 bytes, got 0"),
    ({"trace_id": bytes(16)}, "trace_id is all zeros"),
    ({"span_id": os.urandom(4)}, "span_id must be 8 bytes, got 4"),
    ({"span_id": bytes(8)}, "span_id is all zeros"),
    ({"parent_span_id": os.urandom(9)}, "parent_span_id must be empty or 8 bytes, got 9"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_span_with_bad_id_is_rejected_and_neighbours_are_stored(
        collector: RunningCollector, client: Client, bad_ids: dict[str, bytes], problem: str) -> None:
    trace_id = os.urandom(16)
    request = ExportTraceServiceRequest()
    add_span(request, trace_id, "first")
    bad = add_span(request, trace_id, "bad")
    for field, value in bad_ids.items():
        setattr(bad, field, value)
    add_span(request, trace_id, "third")

    response = client.send(request.SerializeToString())

    assert response.partial_success.rejected_spans == 1
    assert problem in response.partial_success.error_message
    assert "spans[0]" in response.partial_success.error_message  # says where: resource_spans[1]...spans[0]
    assert "resource_spans[1]" in response.partial_success.error_message
    assert stored(collector, trace_id) == [("first",), ("third",)]
    assert collector.query("SELECT count() FROM spans WHERE SpanName = 'bad'") == [(0,)]
    assert_still_serving(collector, client)


def test_invalid_utf8_is_stored_with_replacement_character(collector: RunningCollector, client: Client) -> None:
    trace_id = os.urandom(16)

    def build(twin: Callable[[], Any]) -> Any:
        request = twin()
        add_span(request, trace_id, "before".encode())
        span = add_span(request, trace_id, b"bad \xff name")
        kv = span.attributes.add()
        kv.key = b"prompt"
        kv.value.string_value = b"caf\xc3 ok"
        add_span(request, trace_id, "after".encode())
        return request

    twin, _ = lenient.twin_request_class()  # every string field declared as bytes
    data = build(twin).SerializeToString()
    with pytest.raises(Exception):  # the premise: protobuf itself refuses this request
        ExportTraceServiceRequest.FromString(data)

    response = client.send(data)

    assert response.partial_success.rejected_spans == 0
    assert "not valid UTF-8" in response.partial_success.error_message
    assert "U+FFFD" in response.partial_success.error_message
    rows = stored(collector, trace_id, "SpanName, SpanAttributes['prompt']")
    assert rows == [("after", ""), ("bad \ufffd name", "caf\ufffd ok"), ("before", "")]
    assert_still_serving(collector, client)


def test_five_megabyte_attribute_is_stored_truncated_with_marker(collector: RunningCollector, client: Client) -> None:
    trace_id = os.urandom(16)
    request = ExportTraceServiceRequest()
    huge = "x" * (5 * 1024 * 1024)
    add_span(request, trace_id, "huge", attributes={"gen_ai.prompt": huge, "small": "kept"})
    add_span(request, trace_id, "neighbour")

    response = client.send(request.SerializeToString())

    assert response.partial_success.rejected_spans == 0
    assert f"longer than {DEFAULT_MAX_ATTRIBUTE_VALUE_LENGTH} chars were truncated" in \
        response.partial_success.error_message
    rows = stored(collector, trace_id,
                  "SpanName, length(SpanAttributes['gen_ai.prompt']), "
                  "substring(SpanAttributes['gen_ai.prompt'], 1048570), SpanAttributes['small']")
    cut = len(huge) - DEFAULT_MAX_ATTRIBUTE_VALUE_LENGTH
    marker = f"...[truncated {cut} chars]"
    assert rows == [
        ("huge", DEFAULT_MAX_ATTRIBUTE_VALUE_LENGTH + len(marker), "x" * 7 + marker, "kept"),
        ("neighbour", 0, "", ""),
    ]
    assert_still_serving(collector, client)


def test_request_over_max_recv_msg_size_is_resource_exhausted(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", receiver={"grpc": {
        "endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 4}})
    client = Client(running.grpc_endpoint)
    try:
        request = ExportTraceServiceRequest()
        add_span(request, os.urandom(16), "huge", attributes={"big": "x" * (5 * 1024 * 1024)})
        error = client.refused(request.SerializeToString())
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert running.query("SELECT count() FROM spans") == [(0,)]
        assert_still_serving(running, client)
    finally:
        client.channel.close()
        running.collector.stop()


@pytest.mark.parametrize("raw_value", [
    pytest.param(b"", id="anyvalue-with-no-value"),
    pytest.param(b"\x98\x06\x01", id="unknown-field-99"),
])
def test_unknown_attribute_value_type_is_stored_empty_and_reported(
        collector: RunningCollector, client: Client, raw_value: bytes) -> None:
    trace_id = os.urandom(16)
    request = ExportTraceServiceRequest()
    span = add_span(request, trace_id, "odd", attributes={"known": "yes"})
    kv = span.attributes.add()
    kv.key = "mystery"
    kv.value.SetInParent()
    kv.value.MergeFromString(raw_value)
    add_span(request, trace_id, "plain")

    response = client.send(request.SerializeToString())

    assert response.partial_success.rejected_spans == 0
    assert "unknown type" in response.partial_success.error_message
    rows = stored(collector, trace_id, "SpanName, mapContains(SpanAttributes, 'mystery'), "
                                       "SpanAttributes['mystery'], SpanAttributes['known']")
    assert rows == [("odd", True, "", "yes"), ("plain", False, "", "")]
    assert_still_serving(collector, client)


def test_gzip_compressed_request_is_accepted(collector: RunningCollector, client: Client) -> None:
    trace_id = os.urandom(16)
    response = client.send(good_request(trace_id, "a", "b"), compression=grpc.Compression.Gzip)
    assert not response.HasField("partial_success")
    assert stored(collector, trace_id) == [("a",), ("b",)]
    assert_still_serving(collector, client)


def test_unrepresentable_token_count_does_not_poison_the_writer(collector: RunningCollector, client: Client) -> None:
    # A token count ClickHouse cannot hold (UInt64) must become NULL, not an insert that fails forever.
    trace_id = os.urandom(16)
    request = ExportTraceServiceRequest()
    span = add_span(request, trace_id, "chat", attributes={"gen_ai.operation.name": "chat",
                                                           "gen_ai.usage.output_tokens": "inf"})
    kv = span.attributes.add()
    kv.key = "gen_ai.usage.input_tokens"
    kv.value.double_value = 1e30

    response = client.send(request.SerializeToString())

    assert not response.HasField("partial_success")
    assert stored(collector, trace_id, "SpanName, InputTokens, OutputTokens") == [("chat", None, None)]
    assert_still_serving(collector, client)


# --- backpressure -------------------------------------------------------------------------------


def test_writer_full_is_unavailable_and_nothing_is_lost_once_the_sink_recovers(tmp_path: Path) -> None:
    sink = InMemorySink()
    sink.fail_next = 1_000_000
    collector = start_memory_collector(tmp_path / "unused", sink)
    client = Client(f"127.0.0.1:{collector.grpc_port}")
    try:
        first, second, third = os.urandom(16), os.urandom(16), os.urandom(16)
        client.send(good_request(first, "a", "b", "c"))  # accepted, but the sink keeps failing

        error = client.refused(good_request(second, "d"))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "retry later" in error.details()
        assert "writer.max_pending_rows=3" in error.details()

        deadline = time.monotonic() + 30.0  # the writer has tried (and failed) at least once
        while sink.fail_next == 1_000_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        sink.fail_next = 0
        assert collector.flush(30.0)
        client.send(good_request(third, "e"))
        assert collector.flush(30.0)
        spans = sink.spans()
        assert sorted((s["TraceId"], s["SpanName"]) for s in spans) == sorted(
            [(first.hex(), "a"), (first.hex(), "b"), (first.hex(), "c"), (third.hex(), "e")])
        assert collector.pipeline is not None
        counters = collector.pipeline.counters()
        assert counters["requests_refused_total"] == 1
        assert counters["writer_write_errors_total"] >= 1
    finally:
        sink.fail_next = 0
        client.channel.close()
        assert collector.stop() == 0
