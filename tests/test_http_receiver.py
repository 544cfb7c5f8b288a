"""OTLP/HTTP: the real SDK's HTTP exporter, hand-written OTLP/JSON, and every refusal the protocol defines."""

from __future__ import annotations

import gzip
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.rpc.status_pb2 import Status


from access_harness import span_request
from collector_harness import RunningCollector, start_collector

PROTOBUF, JSON = "application/x-protobuf", "application/json"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = start_collector(tmp_path_factory.mktemp("http") / "store", receiver={"http": {
        "endpoint": "127.0.0.1:0", "max_request_mib": 1}})
    try:
        yield collector
    finally:
        collector.collector.stop()


def post(url: str, body: bytes, content_type: str = PROTOBUF, headers: dict[str, str] | None = None,
         method: str = "POST", context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def status_message(body: bytes, content_type: str = PROTOBUF) -> str:
    if content_type == JSON:
        return json.loads(body)["message"]
    return Status.FromString(body).message


def stored(running: RunningCollector, service: str) -> int:
    return running.query("SELECT count() FROM spans WHERE ServiceName = {s:String}", {"s": service})[0][0]


def otlp_json(service: str, trace_id: str, spans: list[dict[str, Any]]) -> bytes:
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "curl"}, "spans": [
            {"traceId": trace_id, "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 2_000_000),
             "kind": 3, **span} for span in spans]}],
    }]}).encode()


def test_the_sdk_http_exporter_with_gzip_stores_spans_and_genai_calls(running: RunningCollector) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "http-sdk-app"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=running.collector.http_url,
                                                                     compression=Compression.Gzip)))
    tracer = provider.get_tracer("http-test")
    with tracer.start_as_current_span("invoke_agent planner") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                 "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
                                 "gen_ai.usage.output_tokens": 100,
                                 "gen_ai.response.finish_reasons": ["stop"]})
    provider.shutdown()
    trace_id = f"{agent.get_span_context().trace_id:032x}"
    assert running.query("SELECT SpanName, ParentSpanId != '' FROM spans WHERE TraceId = {t:String} "
                         "ORDER BY SpanName", {"t": trace_id}) == [("chat gpt-4o", 1), ("invoke_agent planner", 0)]
    calls = running.query("SELECT Provider, Model, InputTokens, OutputTokens, FinishReasons, CostTotal "
                          "FROM genai_calls WHERE TraceId = {t:String} AND Operation = 'chat'", {"t": trace_id})
    assert calls == [("openai", "gpt-4o", 1000, 100, ["stop"], pytest.approx((1000 * 2.50 + 100 * 10.00) / 1e6))]


def test_otlp_json_with_hex_ids_is_stored_with_those_ids(running: RunningCollector) -> None:
    trace_id, root, child = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
    body = otlp_json("json-app", trace_id, [
        {"spanId": root, "name": "invoke_agent helper",
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}}]},
        {"spanId": child, "parentSpanId": root, "name": "chat claude-sonnet-4-5", "status": {"code": 2},
         "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.provider.name", "value": {"stringValue": "anthropic"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4-5"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "321"}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 54}}],
         "unknownField": {"ignored": True}},
    ])
    status, headers, reply = post(running.collector.http_url, body, JSON)
    assert status == 200 and headers["Content-Type"] == JSON
    assert json.loads(reply) == {}  # no partial_success: every span was taken
    rows = running.query("SELECT SpanId, ParentSpanId, SpanKind, StatusCode FROM spans WHERE TraceId = {t:String} "
                         "ORDER BY SpanId", {"t": trace_id})
    assert rows == [(child, root, "Client", "Error"), (root, "", "Client", "Unset")]
    assert running.query("SELECT Provider, InputTokens, OutputTokens FROM genai_calls WHERE SpanId = {s:String}",
                         {"s": child}) == [("anthropic", 321, 54)]


def test_a_span_with_an_id_that_is_not_hex_is_refused_alone(running: RunningCollector) -> None:
    trace_id = os.urandom(16).hex()
    body = otlp_json("json-bad-id", trace_id, [{"spanId": "not-hex-at-all!!", "name": "bad"},
                                                {"spanId": os.urandom(8).hex(), "name": "good"}])
    status, _, reply = post(running.collector.http_url, body, JSON)
    assert status == 200
    partial = json.loads(reply)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "ids were not hex strings" in partial["errorMessage"]
    assert running.query("SELECT SpanName FROM spans WHERE ServiceName = 'json-bad-id'") == [("good",)]


@pytest.mark.parametrize("content_type, body, headers, method, path, expected_status, expected_message", [
    ("text/plain", b"hello", {}, "POST", "/v1/traces", 415, "Content-Type must be application/x-protobuf"),
    (PROTOBUF, b"\xff\xff\xff\xff", {}, "POST", "/v1/traces", 400, "not a valid OTLP ExportTraceServiceRequest"),
    (JSON, b"{not json", {}, "POST", "/v1/traces", 400, "not valid JSON"),
    (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": {"not": "a string"}}]}]}]}', {}, "POST", "/v1/traces",
     400, "not a valid OTLP/JSON ExportTraceServiceRequest"),
    (JSON, b"[1, 2]", {}, "POST", "/v1/traces", 400, "must be a JSON object"),
    (PROTOBUF, b"not gzip", {"Content-Encoding": "gzip"}, "POST", "/v1/traces", 400, "not valid gzip"),
    (PROTOBUF, b"x", {"Content-Encoding": "br"}, "POST", "/v1/traces", 415, "Content-Encoding must be gzip"),
    (PROTOBUF, b"x" * (1024 * 1024 + 1), {}, "POST", "/v1/traces", 413, "max_request_mib (1 MiB)"),
    (PROTOBUF, gzip.compress(b"\0" * (3 * 1024 * 1024)), {"Content-Encoding": "gzip"}, "POST", "/v1/traces", 413,
     "after gzip decompression"),
    (PROTOBUF, b"", {}, "POST", "/v1/metrics", 404, "OTLP traces go to POST /v1/traces"),
    (PROTOBUF, b"", {}, "GET", "/v1/traces", 405, "POST /v1/traces only"),
], ids=["content-type", "protobuf", "json", "json-schema", "json-array", "gzip", "encoding", "too-large",
        "gzip-bomb", "path", "method"])
def test_bad_requests_get_the_protocols_status_and_a_reason_and_lose_nothing_else(
        running: RunningCollector, content_type: str, body: bytes, headers: dict[str, str], method: str, path: str,
        expected_status: int, expected_message: str) -> None:
    url = running.collector.http_url.replace("/v1/traces", path)
    status, reply_headers, reply = post(url, body, content_type, headers, method)
    assert status == expected_status
    reply_type = JSON if content_type == JSON and method == "POST" else PROTOBUF
    assert expected_message in status_message(reply, reply_type)
    # The receiver keeps working: the next good request from the same client is stored.
    service = f"after-{os.urandom(4).hex()}"
    assert post(running.collector.http_url, span_request(service, 2).SerializeToString())[0] == 200
    assert stored(running, service) == 2


def test_chunked_gzip_body_is_read(running: RunningCollector) -> None:
    import http.client

    body = gzip.compress(span_request("chunked-app", 4).SerializeToString())
    host, port = running.collector.http_url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", "/v1/traces", body=iter([body[:10], body[10:]]),
                           headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}, encode_chunked=True)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert stored(running, "chunked-app") == 4
