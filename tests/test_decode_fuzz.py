"""Fuzzing the decoder and the store's column conversion with hostile OTLP requests.

Hypothesis builds OTLP trace requests, binary protobuf and OTLP/JSON, with extreme values in every
integer field (times, flags, kinds, status codes, counts, int and double attribute values), ids of
every length, strings that are not UTF-8 (protobuf) or hold lone surrogates (JSON), attribute values
nested up to 60 levels, and odd JSON (integers as numbers, strings, floats or null). Each request goes
through the decoder, the normalize and price processors and `ClickHouseSink` into a migrated embedded
store (chDB), and the test asserts:

- nothing but RequestDecodeError (a whole request refused with a reason) escapes the decoder;
- every span sent is either accepted or refused with a reason: accepted + rejected == sent;
- every accepted span is inserted: the store holds exactly the accepted rows afterwards, with the
  materialized views (which add Duration to Timestamp) fed too.

CI runs a bounded number of examples (a few seconds). For a longer run set the number of examples:

    SPANHOUSE_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/test_decode_fuzz.py
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spanhouse.collector.config import Config
from spanhouse.collector.processors import registry
from spanhouse.collector.receiver import lenient
from spanhouse.collector.receiver.decode import MAX_TIME_NS, Decoder, RequestDecodeError
from spanhouse.collector.receiver.http import json_to_protobuf
from spanhouse.collector.store import Store
from spanhouse.collector.writer import ClickHouseSink

# Every test here runs with the native decoder and with the pure-Python reference (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("decoder_path")
EXAMPLES = int(os.environ.get("SPANHOUSE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NOW = time.time_ns()
DAY_NS = 86_400 * 10**9
U64_EDGES = [0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1,
             MAX_TIME_NS, MAX_TIME_NS + 1, NOW - 31 * DAY_NS, NOW + 2 * DAY_NS]
I64_EDGES = [-(2**63), -(2**63) + 1, -1, 0, 1, 2**53 + 1, 2**63 - 1]
I32_EDGES = [-(2**31), -1, 0, 1, 2, 3, 5, 6, 2**31 - 1]
U32_EDGES = [0, 1, 0xFF, 0x1FF, 2**32 - 1]


def _edged(edges: list[int], low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


u64 = _edged(U64_EDGES, 0, 2**64 - 1)
i64 = _edged(I64_EDGES, -(2**63), 2**63 - 1)
i32 = _edged(I32_EDGES, -(2**31), 2**31 - 1)
u32 = _edged(U32_EDGES, 0, 2**32 - 1)
raw_text = st.one_of(st.binary(max_size=12), st.sampled_from([b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"a\x00b"]))
# Ids: mostly well-formed (so that spans get as far as the store), else any length or all zeros.
good_trace_id = st.integers(1, 2**128 - 1).map(lambda i: i.to_bytes(16, "big"))
good_span_id = st.integers(1, 2**64 - 1).map(lambda i: i.to_bytes(8, "big"))


def _mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` seven times in eight (one_of would weigh each branch alike)."""
    return st.integers(0, 7).flatmap(lambda n: odd if n == 7 else good)


# Mostly plausible times, so that many spans reach the store, and every extreme.
times = _mostly(st.integers(NOW - 3_600 * 10**9, NOW + 3_600 * 10**9), u64)
trace_ids = _mostly(good_trace_id, st.one_of(st.binary(max_size=17), st.just(bytes(16))))
span_ids = _mostly(good_span_id, st.one_of(st.binary(max_size=17), st.just(bytes(8))))
GENAI_KEYS = [b"gen_ai.operation.name", b"gen_ai.usage.input_tokens", b"gen_ai.usage.output_tokens",
              b"gen_ai.request.model", b"gen_ai.provider.name", b"gen_ai.response.finish_reasons"]

# An attribute value as a small tree: (kind, payload).
scalar = st.one_of(
    st.tuples(st.just("s"), raw_text),
    st.tuples(st.just("i"), i64),
    st.tuples(st.just("d"), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("y"), st.binary(max_size=8)),
    st.tuples(st.just("none"), st.none()),
)
shallow_value = st.recursive(
    scalar, lambda inner: st.one_of(st.tuples(st.just("a"), st.lists(inner, max_size=3)),
                                    st.tuples(st.just("k"), st.lists(st.tuples(raw_text, inner), max_size=3))),
    max_leaves=8)


@st.composite
def deep_value(draw: st.DrawFn) -> tuple[str, Any]:
    """A chain of arrays and key-value lists around one scalar, 1 to 60 levels deep."""
    value = draw(scalar)
    for kind in draw(st.lists(st.sampled_from("ak"), min_size=0, max_size=59)):
        value = ("a", [value]) if kind == "a" else ("k", [(b"k", value)])
    return value


any_value = _mostly(shallow_value, deep_value())
attributes = st.lists(st.tuples(st.one_of(raw_text, st.sampled_from(GENAI_KEYS)), any_value), max_size=4)

span_spec = st.fixed_dictionaries({
    "trace_id": trace_ids, "span_id": span_ids, "parent_span_id": st.one_of(st.just(b""), span_ids),
    "name": raw_text, "trace_state": raw_text,
    "kind": i32, "start": times, "end": times, "flags": u32, "status_code": i32, "status_message": raw_text,
    "attributes": attributes, "dropped": u32,
    "events": st.lists(st.tuples(times, raw_text, attributes), max_size=2),
    "links": st.lists(st.tuples(trace_ids, span_ids, attributes, u32), max_size=2),
})
request_spec = st.lists(st.tuples(attributes, st.lists(st.lists(span_spec, max_size=4), max_size=2)),
                        min_size=1, max_size=2)


def _fill_value(target: Any, value: tuple[str, Any]) -> None:
    kind, payload = value
    if kind == "s":
        target.string_value = payload
    elif kind == "i":
        target.int_value = payload
    elif kind == "d":
        target.double_value = payload
    elif kind == "b":
        target.bool_value = payload
    elif kind == "y":
        target.bytes_value = payload
    elif kind == "a":
        target.array_value.SetInParent()
        for item in payload:
            _fill_value(target.array_value.values.add(), item)
    elif kind == "k":
        target.kvlist_value.SetInParent()
        for key, item in payload:
            kv = target.kvlist_value.values.add()
            kv.key = key
            _fill_value(kv.value, item)


def _fill_attributes(target: Any, attrs: list[tuple[bytes, Any]]) -> None:
    for key, value in attrs:
        kv = target.add()
        kv.key = key
        _fill_value(kv.value, value)


def protobuf_bytes(spec: list[Any]) -> bytes:
    """The request as binary protobuf, strings as raw bytes (the byte-tolerant twin schema)."""
    def build(twin: Any) -> Any:
        request = twin()
        for resource_attrs, scopes in spec:
            resource_spans = request.resource_spans.add()
            _fill_attributes(resource_spans.resource.attributes, resource_attrs)
            for spans in scopes:
                scope = resource_spans.scope_spans.add()
                for s in spans:
                    span = scope.spans.add(trace_id=s["trace_id"], span_id=s["span_id"],
                                           parent_span_id=s["parent_span_id"], name=s["name"],
                                           trace_state=s["trace_state"], kind=s["kind"],
                                           start_time_unix_nano=s["start"], end_time_unix_nano=s["end"],
                                           flags=s["flags"], dropped_attributes_count=s["dropped"])
                    span.status.code = s["status_code"]
                    span.status.message = s["status_message"]
                    _fill_attributes(span.attributes, s["attributes"])
                    for t, name, attrs in s["events"]:
                        event = span.events.add(time_unix_nano=t, name=name)
                        _fill_attributes(event.attributes, attrs)
                    for trace_id, span_id, attrs, flags in s["links"]:
                        link = span.links.add(trace_id=trace_id, span_id=span_id, flags=flags)
                        _fill_attributes(link.attributes, attrs)
        return request

    twin, _ = lenient.twin_request_class()  # every string field declared as bytes
    return build(twin).SerializeToString()


# --- OTLP/JSON ---------------------------------------------------------------------------------

def _json_text(raw: bytes) -> str:
    # Invalid UTF-8 becomes lone surrogates: a str JSON can carry but UTF-8 cannot.
    return raw.decode("utf-8", "surrogateescape")


def _json_int(value: int, style: str) -> Any:
    if style == "number":
        return value
    if style == "float":
        return float(value)
    if style == "null":
        return None
    return str(value)  # what the OTLP/JSON specification says for 64-bit integers


def _json_value(value: tuple[str, Any], style: str) -> Any:
    kind, payload = value
    if kind == "s":
        return {"stringValue": _json_text(payload)}
    if kind == "i":
        return {"intValue": _json_int(payload, style)}
    if kind == "d":
        return {"doubleValue": payload if math.isfinite(payload) else str(payload)}
    if kind == "b":
        return {"boolValue": payload}
    if kind == "y":
        return {"bytesValue": base64.b64encode(payload).decode() if style != "utf8" else payload.hex()}
    if kind == "a":
        return {"arrayValue": {"values": [_json_value(v, style) for v in payload]}}
    if kind == "k":
        return {"kvlistValue": {"values": [{"key": _json_text(k), "value": _json_value(v, style)}
                                           for k, v in payload]}}
    return {}


def _json_attributes(attrs: list[tuple[bytes, Any]], style: str) -> list[dict[str, Any]]:
    return [{"key": _json_text(k), "value": _json_value(v, style)} for k, v in attrs]


def json_body(spec: list[Any], style: str) -> bytes:
    resources = []
    for resource_attrs, scopes in spec:
        scope_spans = []
        for spans in scopes:
            out = []
            for s in spans:
                out.append({
                    "traceId": s["trace_id"].hex(), "spanId": s["span_id"].hex(),
                    "parentSpanId": s["parent_span_id"].hex(), "name": _json_text(s["name"]),
                    "traceState": _json_text(s["trace_state"]), "kind": s["kind"],
                    "startTimeUnixNano": _json_int(s["start"], style), "endTimeUnixNano": _json_int(s["end"], style),
                    "flags": s["flags"], "droppedAttributesCount": s["dropped"],
                    "status": {"code": s["status_code"], "message": _json_text(s["status_message"])},
                    "attributes": _json_attributes(s["attributes"], style),
                    "events": [{"timeUnixNano": _json_int(t, style), "name": _json_text(n),
                                "attributes": _json_attributes(a, style)} for t, n, a in s["events"]],
                    "links": [{"traceId": t.hex(), "spanId": sp.hex(), "flags": f,
                               "attributes": _json_attributes(a, style)} for t, sp, a, f in s["links"]],
                })
            scope_spans.append({"scope": {"name": "fuzz"}, "spans": out})
        resources.append({"resource": {"attributes": _json_attributes(resource_attrs, style)},
                          "scopeSpans": scope_spans})
    text = json.dumps({"resourceSpans": resources}, ensure_ascii=style != "utf8")
    return text.encode("utf-8", "surrogatepass")


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sink_and_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClickHouseSink, Store]]:
    store = Store.open(f"chdb://{tmp_path_factory.mktemp('fuzz') / 'store'}")
    store.migrate()
    yield ClickHouseSink(store), store
    store.close()


_tenants = itertools.count()


def _spans_sent(spec: list[Any]) -> int:
    return sum(len(spans) for _, scopes in spec for spans in scopes)


def _check(data: bytes, sent: int, sink: ClickHouseSink, store: Store) -> None:
    decoder = Decoder(max_attribute_value_length=64, max_spans_per_request=12, max_attributes_per_span=3,
                      retention_days=30)
    tenant = f"fuzz-{next(_tenants)}"  # each example's rows are its own (and never deduplicated)
    try:
        result = decoder.decode_bytes(data, tenant)
    except RequestDecodeError as exc:
        assert str(exc)  # refused whole, with a reason
        event("request refused")
        return
    event("some spans stored" if result.batch.size else "no span stored")
    assert result.batch.size + result.rejected_spans == sent, result.message()
    if result.rejected_spans:
        assert "span rejected: " in result.message()
    batch = result.batch
    for processor in _PROCESSORS:
        batch = processor.process(batch)
    sink.write(batch)
    [(stored,)] = store.query_rows("SELECT count() FROM spans WHERE TenantId = {t:String}", {"t": tenant})
    assert stored == batch.size


_PROCESSORS = [p for p in registry.build(Config()).all if p.name in ("normalize", "price")]


@FUZZ
@given(spec=request_spec)
def test_any_protobuf_request_is_decoded_refused_or_stored(
        sink_and_store: tuple[ClickHouseSink, Store], spec: list[Any]) -> None:
    sink, store = sink_and_store
    _check(protobuf_bytes(spec), _spans_sent(spec), sink, store)


@FUZZ
@given(spec=request_spec, style=st.sampled_from(["string", "number", "float", "null", "utf8"]))
def test_any_json_request_is_decoded_refused_or_stored(
        sink_and_store: tuple[ClickHouseSink, Store], spec: list[Any], style: str) -> None:
    sink, store = sink_and_store
    try:
        data, _ = json_to_protobuf(json_body(spec, style))
    except RequestDecodeError as exc:
        assert str(exc)  # a 400 with this reason
        event("JSON request refused")
        return
    _check(data, _spans_sent(spec), sink, store)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_are_decoded_or_refused_with_a_reason(data: bytes) -> None:
    try:
        result = Decoder().decode_bytes(data, "t")
    except RequestDecodeError as exc:
        assert "not a valid OTLP" in str(exc)
        return
    assert result.batch.size >= 0
