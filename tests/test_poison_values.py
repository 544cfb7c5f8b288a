"""Values the store cannot keep, sent through the real receivers (OTLP/gRPC, OTLP/HTTP protobuf and JSON).

Each poison span must be refused through partial_success with its reason while a normal span of the
same request is stored, and the writer must go on storing what comes after (a poison value that got
through would fail its batch for good and hold up every batch behind it).
"""

from __future__ import annotations

import datetime
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.collector.receiver.decode import ORIGINAL_EVENT_TIME, Decoder

from collector_harness import RunningCollector, start_collector

# Every test here runs with the native decoder and with the pure-Python reference (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("decoder_path")
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
DAY_NS = 86_400 * 10**9
PAST_2106 = "past 2106-02-07T06:28:15Z"


def _ns(year: int) -> int:
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return int((datetime.datetime(year, 1, 1, tzinfo=datetime.UTC) - epoch).total_seconds()) * 10**9


@dataclass
class Span:
    name: str
    start: int
    end: int
    event_times: list[int] = field(default_factory=list)
    deep_value_levels: int = 0  # an attribute value of this many nested key-value lists (0: none)
    trace_id: bytes = field(default_factory=lambda: os.urandom(16))
    span_id: bytes = field(default_factory=lambda: os.urandom(8))


def _deep_value_pb(value: Any, levels: int) -> None:
    for _ in range(levels - 1):
        kv = value.kvlist_value.values.add()
        kv.key = "k"
        value = kv.value
    value.string_value = "leaf"


def _deep_value_json(levels: int) -> str:
    """The JSON text of an AnyValue of `levels` nested key-value lists (as text: json.dumps recurses)."""
    return ('{"kvlistValue":{"values":[{"key":"k","value":' * (levels - 1) + '{"stringValue":"leaf"}'
            + "}]}}" * (levels - 1))


def protobuf_request(spans: list[Span]) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "poison-test"
    scope = resource_spans.scope_spans.add()
    for s in spans:
        span = scope.spans.add(trace_id=s.trace_id, span_id=s.span_id, name=s.name,
                               start_time_unix_nano=s.start, end_time_unix_nano=s.end)
        for t in s.event_times:
            span.events.add(time_unix_nano=t, name="e")
        if s.deep_value_levels:
            kv = span.attributes.add()
            kv.key = "deep"
            _deep_value_pb(kv.value, s.deep_value_levels)
    return request.SerializeToString()


def json_request(spans: list[Span]) -> bytes:
    """OTLP/JSON as the specification writes it: hex ids, 64-bit integers as strings."""
    out = []
    deep: dict[str, str] = {}
    for s in spans:
        span: dict[str, Any] = {"traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "name": s.name,
                                "startTimeUnixNano": str(s.start), "endTimeUnixNano": str(s.end),
                                "events": [{"timeUnixNano": str(t), "name": "e"} for t in s.event_times]}
        if s.deep_value_levels:
            placeholder = f"@deep-{len(deep)}@"
            deep[f'"{placeholder}"'] = _deep_value_json(s.deep_value_levels)
            span["attributes"] = [{"key": "deep", "value": placeholder}]
        out.append(span)
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                            "value": {"stringValue": "poison-test"}}]},
                              "scopeSpans": [{"spans": out}]}]}
    text = json.dumps(doc)
    for placeholder, value in deep.items():
        text = text.replace(placeholder, value)
    return text.encode()


@dataclass
class Answer:
    status: int  # HTTP status; 200 for a gRPC OK
    rejected: int
    message: str


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Transports:
    def __init__(self, running: RunningCollector) -> None:
        self.running = running
        self.channel = grpc.insecure_channel(running.grpc_endpoint)
        self._export = self.channel.unary_unary(EXPORT, request_serializer=None,
                                                response_deserializer=ExportTraceServiceResponse.FromString)

    def send(self, transport: str, spans: list[Span]) -> Answer:
        if transport == "grpc":
            response = self._export(protobuf_request(spans), timeout=60)
            return Answer(200, response.partial_success.rejected_spans, response.partial_success.error_message)
        url = self.running.collector.http_url
        if transport == "http-protobuf":
            status, body = post(url, protobuf_request(spans), "application/x-protobuf")
            response = ExportTraceServiceResponse.FromString(body) if status == 200 else None
            return Answer(status, response.partial_success.rejected_spans if response else -1,
                          response.partial_success.error_message if response else body.decode(errors="replace"))
        status, body = post(url, json_request(spans), "application/json")
        doc = json.loads(body)
        partial = doc.get("partialSuccess", {})
        return Answer(status, int(partial.get("rejectedSpans", 0)), partial.get("errorMessage", doc.get("message", "")))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = start_collector(tmp_path_factory.mktemp("poison") / "store")  # retention.spans_days: 30
    try:
        yield collector
    finally:
        collector.collector.stop()


@pytest.fixture(scope="module")
def transports(running: RunningCollector) -> Iterator[Transports]:
    t = Transports(running)
    yield t
    t.channel.close()


def stored_names(running: RunningCollector, *spans: Span) -> list[str]:
    rows = running.query("SELECT SpanName FROM spans WHERE TraceId IN {ids:Array(String)} ORDER BY SpanName",
                         {"ids": [s.trace_id.hex() for s in spans]})
    return [name for (name,) in rows]


NOW = time.time_ns()
POISON = [
    pytest.param(2**63, 2**63 + 1, f"start_time_unix_nano is {PAST_2106}", id="start-2^63"),
    pytest.param(2**64 - 1, 2**64 - 1, f"start_time_unix_nano is {PAST_2106}", id="start-end-2^64-1"),
    pytest.param(NOW, 2**63, f"end_time_unix_nano is {PAST_2106}", id="end-2^63"),
    pytest.param(2**63 - 1, 2**63 - 1, f"start_time_unix_nano is {PAST_2106}", id="start-end-2^63-1"),
    pytest.param(_ns(2500), _ns(2500) + 1, f"start_time_unix_nano is {PAST_2106}", id="year-2500"),
    pytest.param(_ns(2100), _ns(2100) + 1, "ahead of the collector's clock", id="year-2100"),
    pytest.param(0, 2**64 - 1, f"end_time_unix_nano is {PAST_2106}", id="start-0-end-2^64-1"),
    pytest.param(0, NOW, "start_time_unix_nano is 0 (not set)", id="start-0"),
    pytest.param(NOW - 31 * DAY_NS, NOW - 31 * DAY_NS + 1, "older than retention.spans_days (30 days)",
                 id="older-than-retention"),
    pytest.param(NOW + 2 * DAY_NS, NOW + 2 * DAY_NS + 1,
                 "more than receiver.max_future_skew_s (86400 s) ahead of the collector's clock", id="two-days-ahead"),
]
TRANSPORTS = ["grpc", "http-protobuf", "http-json"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("start", "end", "reason"), POISON)
def test_poison_time_is_refused_with_its_reason_and_the_rest_is_stored(
        running: RunningCollector, transports: Transports, transport: str, start: int, end: int,
        reason: str) -> None:
    now = time.time_ns()
    normal, poison = Span("normal", now, now + 1_000_000), Span("poison", start, end)

    answer = transports.send(transport, [normal, poison])

    assert (answer.status, answer.rejected) == (200, 1), answer.message
    assert reason in answer.message
    assert "resource_spans[0].scope_spans[0].spans[1]" in answer.message  # names the span
    after = Span("after", time.time_ns(), time.time_ns() + 1)
    assert transports.send(transport, [after]) == Answer(200, 0, "")
    assert stored_names(running, normal, poison, after) == ["after", "normal"]
    assert running.collector.counters()["writer_write_errors_total"] == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_event_time_out_of_range_is_stored_at_the_span_start_with_the_original(
        running: RunningCollector, transports: Transports, transport: str) -> None:
    now = time.time_ns()
    span = Span("with-events", now, now + 10, event_times=[2**64 - 1, now + 5, 0])

    answer = transports.send(transport, [span])

    assert (answer.status, answer.rejected) == (200, 0)
    assert ORIGINAL_EVENT_TIME in answer.message
    rows = running.query("SELECT arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`), "
                         f"arrayMap(a -> a['{ORIGINAL_EVENT_TIME}'], `Events.Attributes`) "
                         "FROM spans WHERE TraceId = {t:String}", {"t": span.trace_id.hex()})
    assert rows == [([now, now + 5, now], [str(2**64 - 1), "", "0"])]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("levels", [33, 50, 200])
def test_value_nested_too_deep_refuses_its_span_only(
        running: RunningCollector, transports: Transports, transport: str, levels: int) -> None:
    now = time.time_ns()
    normal, deep = Span("normal", now, now + 1), Span("deep", now, now + 1, deep_value_levels=levels)
    ok = Span("ok-32-levels", now, now + 1, deep_value_levels=32)

    answer = transports.send(transport, [normal, deep, ok])

    assert (answer.status, answer.rejected) == (200, 1), answer.message
    assert "an attribute value nests deeper than 32 levels" in answer.message
    assert "spans[1]" in answer.message
    assert stored_names(running, normal, deep, ok) == ["normal", "ok-32-levels"]


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000, id="100k-open-brackets"),
    pytest.param(json_request([Span("deep", NOW, NOW + 1, deep_value_levels=5000)]), id="kvlist-5000-deep"),
])
def test_json_nesting_beyond_the_parser_is_400_with_a_reason(
        running: RunningCollector, transports: Transports, body: bytes) -> None:
    status, answer = post(running.collector.http_url, body, "application/json")
    assert status == 400
    assert "nests" in json.loads(answer)["message"]
    after = Span("after-deep-json", time.time_ns(), time.time_ns() + 1)
    assert transports.send("http-json", [after]) == Answer(200, 0, "")
    assert stored_names(running, after) == ["after-deep-json"]


def test_a_failure_inside_the_collector_is_500_with_a_message(
        running: RunningCollector, transports: Transports, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = running.collector.http_receiver
    assert receiver is not None

    def broken(data: bytes, tenant: str) -> Any:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(receiver.decoder, "decode_bytes", broken)
    for content_type, body in (("application/json", json_request([Span("x", NOW, NOW + 1)])),
                               ("application/x-protobuf", protobuf_request([Span("x", NOW, NOW + 1)]))):
        status, answer = post(running.collector.http_url, body, content_type)
        assert status == 500
        assert b"RuntimeError: decoder exploded" in answer
    monkeypatch.undo()
    after = Span("after-500", time.time_ns(), time.time_ns() + 1)
    assert transports.send("http-protobuf", [after]) == Answer(200, 0, "")


def test_retention_zero_keeps_old_spans_but_not_unset_ones() -> None:
    # The decoder alone: the module's collector holds this process's one embedded engine.
    request = ExportTraceServiceRequest.FromString(
        protobuf_request([Span("year-2001", _ns(2001), _ns(2001) + 1), Span("unset", 0, 1)]))
    kept_forever = Decoder(retention_days=0).decode(request, "t")
    assert (kept_forever.batch["SpanName"], kept_forever.rejected_spans) == (["year-2001"], 1)
    assert "start_time_unix_nano is 0 (not set)" in kept_forever.message()
    one_year = Decoder(retention_days=365).decode(request, "t")
    assert (one_year.batch.size, one_year.rejected_spans) == (0, 2)
    assert "older than retention.spans_days (365 days)" in one_year.message()


def test_the_time_window_follows_the_clock_it_is_given() -> None:
    now = _ns(2030)
    decoder = Decoder(retention_days=1, max_future_skew_s=60, clock_ns=lambda: now)
    spans = [Span("in", now - DAY_NS + 10**9, now + 59 * 10**9), Span("old", now - DAY_NS - 1, now),
             Span("ahead", now, now + 61 * 10**9)]
    result = decoder.decode(ExportTraceServiceRequest.FromString(protobuf_request(spans)), "t")
    assert (result.batch["SpanName"], result.rejected_spans) == (["in"], 2)
    assert result.batch["Duration"] == [DAY_NS + 58 * 10**9]


def test_json_lone_surrogate_is_stored_with_replacement_character(
        running: RunningCollector, transports: Transports) -> None:
    now = time.time_ns()
    span, neighbour = Span("placeholder", now, now + 1), Span("neighbour", now, now + 1)
    body = json_request([span, neighbour]).replace(b'"placeholder"', b'"half \\ud83d pair"')

    status, answer = post(running.collector.http_url, body, "application/json")

    assert status == 200
    message = json.loads(answer)["partialSuccess"]["errorMessage"]
    assert "lone UTF-16 surrogates" in message and "U+FFFD" in message
    assert stored_names(running, span, neighbour) == ["half \ufffd pair", "neighbour"]

