"""The native (C) decoder against the pure-Python reference: identical results on any bytes.

Requests are written byte by byte here (a small protobuf encoder), so that they can hold what no
protobuf library would write: invalid UTF-8, duplicated fields, two members of one AnyValue,
unknown fields, string-table indexes, nesting past the depth limit. Every request is decoded by
a Decoder with the C path (`native_decode="auto"`) and one without (`"off"`), configured alike on
a fixed clock, and the two DecodeResults must be equal value by value, with equal types, the same
sharing of ResourceAttributes dicts, the same refusals and the same problem notes in the same
order. Well-formed requests must actually be decoded natively (not handed back), or the
comparison would prove nothing about the C code.

CI runs a bounded number of examples. A longer run:

    SPANHOUSE_FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest -q tests/test_native_decode.py
"""

from __future__ import annotations

import gc
import math
import os
import random
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanhouse.collector.config import Config, ConfigError, ReceiverConfig
from spanhouse.collector.receiver import decode
from spanhouse.collector.receiver.decode import (
    EMPTY_VALUE_NOTE,
    EVENT_TIME_NOTE,
    MAX_TIME_NS,
    ORIGINAL_EVENT_TIME,
    Decoder,
    DecodeResult,
    RequestDecodeError,
)

fastdecode = pytest.importorskip(
    "spanhouse.collector.receiver._fastdecode",
    reason="the native decoder is not built (pip install -e . with a C compiler)",
)

EXAMPLES = int(os.environ.get("SPANHOUSE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NOW = 1_764_000_000 * 10**9
DAY = 86_400 * 10**9
VALUE_LIMIT = 400
LIMITS = {
    "max_attribute_value_length": VALUE_LIMIT,
    "max_spans_per_request": 24,
    "max_attributes_per_span": 8,
    "retention_days": 30,
    "max_future_skew_s": 3600.0,
}


def decoders(**limits: Any) -> tuple[Decoder, Decoder]:
    settings_ = {**LIMITS, **limits}
    native = Decoder(**settings_, clock_ns=lambda: NOW, native_decode="auto")
    reference = Decoder(**settings_, clock_ns=lambda: NOW, native_decode="off")
    assert native.native and not reference.native
    return native, reference


# --- a protobuf writer that can write anything -------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ln(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def f64(number: int, value: int) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<Q", value & ((1 << 64) - 1))


def f32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value & 0xFFFFFFFF)


def any_value(value: tuple[str, Any]) -> bytes:
    """AnyValue bytes of a value tree: (kind, payload)."""
    kind, payload = value
    if kind == "s":
        return ln(1, payload)
    if kind == "b":
        return vi(2, int(payload))
    if kind == "i":
        return vi(3, payload)
    if kind == "d":
        return f64(4, struct.unpack("<Q", struct.pack("<d", payload))[0])
    if kind == "a":
        return ln(5, b"".join(ln(1, any_value(v)) for v in payload))
    if kind == "k":
        return ln(6, b"".join(ln(1, key_value(k, v)) for k, v in payload))
    if kind == "y":
        return ln(7, payload)
    if kind == "x":  # string_value_strindex: a member traces do not use
        return vi(8, payload)
    if kind == "two":  # two members of the oneof: protobuf keeps the last
        return any_value(payload[0]) + any_value(payload[1])
    if kind == "unknown":  # a string with an unknown field after it
        return any_value(payload) + vi(99, 7)
    return b""  # "none": no member set


def key_value(key: bytes, value: tuple[str, Any] | None) -> bytes:
    return ln(1, key) + (b"" if value is None else ln(2, any_value(value)))


def attributes(number: int, attrs: list[tuple[bytes, Any]]) -> bytes:
    return b"".join(ln(number, key_value(k, v)) for k, v in attrs)


def span_bytes(s: dict[str, Any]) -> bytes:
    out = (
        ln(1, s["trace_id"])
        + ln(2, s["span_id"])
        + ln(3, s["trace_state"])
        + ln(4, s["parent_span_id"])
        + ln(5, s["name"])
        + vi(6, s["kind"])
        + f64(7, s["start"])
        + f64(8, s["end"])
        + attributes(9, s["attributes"])
        + vi(10, s["dropped"])
    )
    for t, name, attrs in s["events"]:
        out += ln(11, f64(1, t) + ln(2, name) + attributes(3, attrs) + vi(4, 0))
    for trace_id, span_id, state, attrs, flags in s["links"]:
        out += ln(13, ln(1, trace_id) + ln(2, span_id) + ln(3, state) + attributes(4, attrs) + f32(6, flags))
    out += ln(15, ln(2, s["status_message"]) + vi(3, s["status_code"])) + f32(16, s["flags"])
    return out + s["extra"]


def request_bytes(spec: list[Any]) -> bytes:
    """spec: [(resource attrs | None, resource extra, [(scope | None, [span, ...]), ...]), ...]"""
    out = b""
    for resource_attrs, resource_extra, scopes in spec:
        body = b"" if resource_attrs is None else ln(1, attributes(1, resource_attrs) + resource_extra)
        for scope, spans in scopes:
            scope_body = (
                b"" if scope is None else ln(1, ln(1, scope[0]) + ln(2, scope[1]) + attributes(3, scope[2]))
            )
            scope_body += b"".join(ln(2, span_bytes(s)) for s in spans) + ln(
                3, b"https://opentelemetry.io/schemas/1.30"
            )
            body += ln(2, scope_body)
        out += ln(1, body)
    return out


# --- strategies: mostly well-formed, every kind of poison sometimes ------------------------------


def _mostly(
    good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], odds: int = 12
) -> st.SearchStrategy[Any]:
    return st.integers(0, odds - 1).flatmap(lambda n: odd if n == 0 else good)


clean_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16).map(lambda t: t.encode())
ascii_words = st.sampled_from(
    [
        b"chat",
        b"openai",
        b"gpt-4o",
        b"stop",
        b"",
        b"tool_calls",
        b'a"b\\c\n\t\x01\x7f',
        "caf\u00e9 \U0001f600".encode(),
    ]
)
bad_text = st.one_of(
    st.sampled_from([b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"ok\xe2\x82"]),
    st.binary(max_size=8),
    st.integers(VALUE_LIMIT - 2, VALUE_LIMIT + 40).map(lambda n: b"x" * n),  # around the truncation limit
)
text = _mostly(st.one_of(clean_text, ascii_words), bad_text)
i64 = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1]), st.integers(-(2**63), 2**63 - 1))
double = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, -0.0, 1e16, 1e-7, 123456789.0, 2.5e300]),
)

scalar = st.one_of(
    st.tuples(st.just("s"), text),
    st.tuples(st.just("s"), text),
    st.tuples(st.just("i"), i64),
    st.tuples(st.just("d"), double),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("y"), st.binary(max_size=10)),
    _mostly(
        st.tuples(st.just("s"), clean_text),
        st.one_of(
            st.tuples(st.just("none"), st.none()),
            st.tuples(st.just("x"), st.integers(0, 5)),
            st.tuples(st.just("unknown"), st.tuples(st.just("s"), clean_text)),
            st.tuples(
                st.just("two"), st.tuples(st.tuples(st.just("i"), i64), st.tuples(st.just("s"), clean_text))
            ),
        ),
        odds=4,
    ),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(st.just("a"), st.lists(inner, max_size=4)),
        st.tuples(st.just("a"), st.lists(st.tuples(st.just("s"), clean_text.filter(bool)), max_size=4)),
        st.tuples(
            st.just("k"), st.lists(st.tuples(st.sampled_from([b"k", b"role", b"content"]), inner), max_size=3)
        ),
    )


nested = st.recursive(scalar, _containers, max_leaves=10)


@st.composite
def deep(draw: st.DrawFn) -> tuple[str, Any]:
    """A chain of arrays and key-value lists around a scalar, near the depth limit."""
    value = draw(scalar)
    for kind in draw(st.lists(st.sampled_from("ak"), min_size=28, max_size=36)):
        value = ("a", [value]) if kind == "a" else ("k", [(b"k", value)])
    return value


value = _mostly(st.one_of(scalar, scalar, nested), deep(), odds=20)
keys = st.one_of(
    st.sampled_from(
        [
            b"gen_ai.operation.name",
            b"gen_ai.request.model",
            b"gen_ai.usage.input_tokens",
            b"service.name",
            b"http.method",
            b"dup",
        ]
    ),
    text,
)
attrs = st.lists(st.tuples(keys, _mostly(value, st.none(), odds=30)), max_size=9)
good_trace_id = st.binary(min_size=16, max_size=16).filter(any)
good_span_id = st.binary(min_size=8, max_size=8).filter(any)
odd_id = st.one_of(st.binary(max_size=17), st.just(bytes(16)), st.just(bytes(8)))
near = st.integers(NOW - 3_600 * 10**9, NOW + 1_800 * 10**9)
poison_time = st.sampled_from(
    [0, 1, NOW - 31 * DAY, NOW + 2 * 3_600 * 10**9, MAX_TIME_NS, MAX_TIME_NS + 1, 2**63, 2**64 - 1]
)
event_time = _mostly(near, st.sampled_from([0, MAX_TIME_NS, MAX_TIME_NS + 1, 2**64 - 1]), odds=6)
extra = _mostly(
    st.just(b""),
    st.sampled_from(
        [
            vi(99, 1),
            ln(100, b"\xff\xfe"),
            f32(77, 3),
            f64(78, 1),  # unknown fields, any content
            ln(5, b"dup-name"),
            vi(6, 2),
            ln(1, bytes(range(1, 17))),  # a singular field again
            ln(9, b""),
            ln(11, b""),
            ln(13, b""),  # an empty attribute, event, link
            ln(15, b""),  # a second status
            vi(6, 0)[:-1] + b"\x80",  # a truncated varint
            bytes([0x0B, 0x0C]),  # a group (start, end)
            bytes([0x06]),  # wire type 6
        ]
    ),
    odds=10,
)
span = st.fixed_dictionaries(
    {
        "trace_id": _mostly(good_trace_id, odd_id),
        "span_id": _mostly(good_span_id, odd_id),
        "parent_span_id": st.one_of(st.just(b""), _mostly(good_span_id, odd_id)),
        "name": text,
        "trace_state": _mostly(st.just(b""), text, odds=4),
        "kind": _mostly(st.integers(0, 5), st.sampled_from([-1, 6, 2**31 - 1, 2**32 + 2, 2**64 - 1])),
        "start": _mostly(near, poison_time),
        "end": _mostly(near, poison_time),
        "attributes": attrs,
        "dropped": st.integers(0, 3),
        "events": st.lists(st.tuples(event_time, text, attrs), max_size=3),
        "links": _mostly(
            st.just([]),
            st.lists(
                st.tuples(
                    st.binary(max_size=17), st.binary(max_size=9), text, attrs, st.integers(0, 2**32 - 1)
                ),
                max_size=2,
            ),
            odds=3,
        ),
        "status_code": _mostly(st.integers(0, 2), st.sampled_from([-1, 3, 2**31 - 1])),
        "status_message": _mostly(st.just(b""), text, odds=4),
        "flags": st.sampled_from([0, 1, 0x100, 0x301, 2**32 - 1]),
        "extra": extra,
    }
)
scope = st.one_of(st.none(), st.tuples(text, text, _mostly(st.just([]), attrs, odds=4)))
resource_extra = _mostly(
    st.just(b""),
    st.sampled_from(
        [
            vi(2, 3),
            ln(3, ln(1, b"url") + ln(2, b"service") + ln(3, b"service.name")),  # dropped count, an entity ref
            ln(3, ln(2, b"\xff")),
            vi(77, 1),
        ]
    ),
    odds=6,
)
request_spec = st.lists(
    st.tuples(
        st.one_of(st.none(), attrs),
        resource_extra,
        st.lists(st.tuples(scope, st.lists(span, max_size=5)), max_size=3),
    ),
    min_size=1,
    max_size=3,
)


# --- comparing results -------------------------------------------------------------------------


def same(a: Any, b: Any, where: str) -> None:
    """Equal values of identical types, all the way down (True == 1 and 1.0 == 1 do not pass)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), f"{where}: nan != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def sharing(values: list[Any]) -> list[int]:
    """For each value, the index of the first value that is the very same object."""
    first: dict[int, int] = {}
    return [first.setdefault(id(v), i) for i, v in enumerate(values)]


def assert_same_result(native: DecodeResult, reference: DecodeResult) -> None:
    assert list(native.batch.columns) == list(reference.batch.columns)
    assert native.batch.size == reference.batch.size
    for name, values in reference.batch.columns.items():
        same(native.batch.columns[name], values, name)
    assert sharing(native.batch["ResourceAttributes"]) == sharing(reference.batch["ResourceAttributes"])
    assert native.rejected_spans == reference.rejected_spans
    assert list(native.problems.items()) == list(reference.problems.items())
    assert native.first_seen == reference.first_seen
    assert native.message() == reference.message()


def compare(data: bytes, native: Decoder, reference: Decoder) -> DecodeResult | None:
    """Decode with both; they must agree. Returns the reference's result (None if refused whole)."""
    try:
        expected = reference.decode_bytes(data, "tenant-a")
    except RequestDecodeError as exc:
        with pytest.raises(RequestDecodeError) as raised:
            native.decode_bytes(data, "tenant-a")
        assert str(raised.value) == str(exc)
        return None
    assert_same_result(native.decode_bytes(data, "tenant-a"), expected)
    return expected


# --- the tests ---------------------------------------------------------------------------------


@FUZZ
@given(spec=request_spec)
def test_native_and_reference_agree_on_any_request(spec: list[Any]) -> None:
    native, reference = decoders()
    compare(request_bytes(spec), native, reference)
    event("decoded natively" if native.native_requests_total else "handed to the reference")


clean_scalar = st.one_of(
    st.tuples(st.just("s"), clean_text),
    st.tuples(st.just("i"), i64),
    st.tuples(st.just("d"), double),
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("y"), st.binary(max_size=10)),
    st.tuples(st.just("none"), st.none()),
)


def _clean_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(st.just("a"), st.lists(inner, max_size=3)),
        st.tuples(st.just("k"), st.lists(st.tuples(clean_text, inner), max_size=3)),
    )


clean_value = st.recursive(clean_scalar, _clean_containers, max_leaves=6)
clean_attrs = st.lists(st.tuples(clean_text, clean_value), max_size=5)
clean_span = st.fixed_dictionaries(
    {
        "trace_id": good_trace_id,
        "span_id": good_span_id,
        "parent_span_id": st.one_of(st.just(b""), good_span_id),
        "name": clean_text,
        "trace_state": clean_text,
        "kind": st.integers(-2, 7),
        "start": near,
        "end": near,
        "attributes": clean_attrs,
        "dropped": st.integers(0, 3),
        "events": st.lists(
            st.tuples(st.one_of(near, st.sampled_from([0, MAX_TIME_NS + 1])), clean_text, clean_attrs),
            max_size=2,
        ),
        "links": st.lists(
            st.tuples(
                st.binary(max_size=17),
                st.binary(max_size=9),
                clean_text,
                clean_attrs,
                st.integers(0, 2**32 - 1),
            ),
            max_size=2,
        ),
        "status_code": st.integers(-1, 3),
        "status_message": clean_text,
        "flags": st.integers(0, 2**32 - 1),
        "extra": st.sampled_from([b"", vi(99, 1), ln(100, b"\xff")]),
    }
)
clean_request = st.lists(
    st.tuples(
        st.one_of(st.none(), clean_attrs),
        st.just(b""),
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.tuples(clean_text, clean_text, clean_attrs)),
                st.lists(clean_span, max_size=4),
            ),
            max_size=2,
        ),
    ),
    min_size=1,
    max_size=2,
)


@FUZZ
@given(spec=clean_request)
def test_well_formed_requests_are_decoded_natively_and_agree(spec: list[Any]) -> None:
    """Nothing the reference would refuse, repair or truncate: the C decoder must take it itself."""
    native, reference = decoders(max_attribute_value_length=1 << 20)
    compare(request_bytes(spec), native, reference)
    assert (native.native_requests_total, native.reference_requests_total) == (1, 0)


def _deep(kind: str, levels: int) -> tuple[str, Any]:
    value: tuple[str, Any] = ("s", b"leaf")
    for _ in range(levels - 1):
        value = ("a", [value]) if kind == "a" else ("k", [(b"k", value)])
    return value


def _span(**fields: Any) -> dict[str, Any]:
    base = {
        "trace_id": bytes(range(1, 17)),
        "span_id": bytes(range(1, 9)),
        "parent_span_id": b"",
        "name": b"chat gpt-4o",
        "trace_state": b"",
        "kind": 3,
        "start": NOW - 10**9,
        "end": NOW,
        "attributes": [(b"gen_ai.operation.name", ("s", b"chat"))],
        "dropped": 0,
        "events": [],
        "links": [],
        "status_code": 0,
        "status_message": b"",
        "flags": 0x301,
        "extra": b"",
    }
    return {**base, **fields}


def _deep_span(kind: str, levels: int, where: str) -> dict[str, Any]:
    """A span with one value nested `levels` deep in its own, an event's or a link's attributes."""
    attrs = [(b"v", _deep(kind, levels))]
    if where == "event":
        return _span(attributes=[], events=[(NOW, b"e", attrs)])
    if where == "link":
        return _span(attributes=[], links=[(bytes(16), bytes(8), b"", attrs, 0)])
    return _span(attributes=attrs)


def _one(span: dict[str, Any], resource: list[Any] | None = None) -> bytes:
    return request_bytes(
        [(resource or [(b"service.name", ("s", b"svc"))], b"", [((b"lib", b"1.0", []), [span])])]
    )


# (case, request, handled natively): poison values at their boundaries, one span each.
CASES = [
    ("plain", _one(_span()), True),
    *[
        (f"{kind}-depth-{levels}-in-{where}", _one(_deep_span(kind, levels, where)), levels <= 32)
        for kind in "ak"
        for levels in (31, 32, 33, 60)
        for where in ("span", "event", "link")
    ],
    ("resource-depth-33", _one(_span(), [(b"v", _deep("k", 33))]), False),
    ("value-at-limit", _one(_span(attributes=[(b"v", ("s", b"x" * VALUE_LIMIT))])), True),
    ("value-over-limit", _one(_span(attributes=[(b"v", ("s", b"x" * (VALUE_LIMIT + 1)))])), False),
    ("event-time-0", _one(_span(events=[(0, b"e", [(b"a", ("i", 1))]), (NOW, b"f", [])])), True),
    (
        "event-time-past-2106",
        _one(_span(events=[(MAX_TIME_NS + 1, b"e", [(ORIGINAL_EVENT_TIME.encode(), ("s", b"x"))])])),
        True,
    ),
    ("empty-values", _one(_span(attributes=[(b"a", ("none", None)), (b"b", None), (b"c", ("x", 3))])), True),
    (
        "duplicate-keys",
        _one(_span(attributes=[(b"k", ("s", b"1")), (b"j", ("i", 2)), (b"k", ("b", True))])),
        True,
    ),
    (
        "string-arrays",
        _one(
            _span(
                attributes=[
                    (b"a", ("a", [("s", b"stop"), ("s", '"\\\n\x01\u00e9'.encode())])),
                    (b"e", ("a", [])),
                    (b"m", ("a", [("s", b"x"), ("s", b"")])),
                ]
            )
        ),
        True,
    ),
    (
        "floats",
        _one(
            _span(
                attributes=[
                    (b"n", ("d", float("nan"))),
                    (b"i", ("d", float("-inf"))),
                    (b"x", ("d", 1e16)),
                    (b"j", ("a", [("d", float("inf")), ("d", 0.1)])),
                ]
            )
        ),
        True,
    ),
    (
        "kvlist",
        _one(
            _span(
                attributes=[
                    (
                        b"m",
                        (
                            "k",
                            [
                                (b"role", ("s", b"user")),
                                (b"role", ("i", 3)),
                                (b"n", None),
                                (b"b", ("y", b"\x00\xff")),
                            ],
                        ),
                    )
                ]
            )
        ),
        True,
    ),
    ("zero-trace-id", _one(_span(trace_id=bytes(16))), False),
    ("short-span-id", _one(_span(span_id=b"\x01\x02")), False),
    ("parent-7-bytes", _one(_span(parent_span_id=b"\x01" * 7)), False),
    ("start-0", _one(_span(start=0)), False),
    ("start-too-old", _one(_span(start=NOW - 31 * DAY)), False),
    ("end-in-the-future", _one(_span(end=NOW + 2 * 3_600 * 10**9)), False),
    ("end-before-start", _one(_span(start=NOW, end=NOW - 5)), True),
    ("too-many-attributes", _one(_span(attributes=[(b"k%d" % i, ("i", i)) for i in range(9)])), False),
    ("invalid-utf8-name", _one(_span(name=b"caf\xc3")), False),
    (
        "invalid-utf8-scope-attribute",
        request_bytes([(None, b"", [((b"l", b"v", [(b"\xff", ("s", b"x"))]), [_span()])])]),
        False,
    ),
    ("no-resource-no-scope", request_bytes([(None, b"", [(None, [_span()])])]), True),
    ("empty-resource-and-scopes", request_bytes([([], b"", []), (None, b"", [(None, [])])]), True),
    ("unknown-fields", _one(_span(extra=vi(99, 5) + ln(100, b"\xff\xff") + f32(101, 1))), True),
    ("duplicate-name", _one(_span(extra=ln(5, b"other"))), False),
    ("two-members", _one(_span(attributes=[(b"t", ("two", (("i", 5), ("s", b"five"))))])), False),
    ("group", _one(_span(extra=bytes([0x0B, 0x0C]))), False),
    ("overlong-tag", _one(_span(extra=b"\xb0\x86\x80\x80\x80\x00\x05")), False),  # field 99 in 6 bytes
    ("overlong-length", _one(_span(extra=b"\xa2\x06\x83\x80\x80\x80\x80\x00abc")), False),  # 6 bytes
    (
        "long-length",
        _one(_span(extra=b"\xa2\x06\x83\x80\x80\x80\x00abc")),
        True,
    ),  # 5 bytes: protobuf takes it
    ("long-varint", _one(_span(extra=b"\x98\x06" + b"\x85" + b"\x80" * 8 + b"\x00")), True),
    ("varint-past-64-bits", _one(_span(extra=b"\x98\x06" + b"\xff" * 9 + b"\x7f")), False),
    ("not-protobuf", b"\xff\xff\xff", False),
    ("empty", b"", True),
]


@pytest.mark.parametrize(
    ("request_data", "native_path"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_poison_values_agree_and_only_odd_requests_go_to_the_reference(
    request_data: bytes, native_path: bool
) -> None:
    native, reference = decoders()
    compare(request_data, native, reference)
    assert native.native_requests_total == int(native_path)


def test_natively_decoded_values_are_what_the_reference_makes() -> None:
    """A readable spot check of the renderings, beside the exhaustive comparison above."""
    native, _ = decoders()
    data = _one(
        _span(
            attributes=[
                (b"i", ("i", -5)),
                (b"b", ("b", False)),
                (b"d", ("d", 1e16)),
                (b"y", ("y", b"\x00\xff")),
                (b"a", ("a", [("s", b'a"b')])),
                (b"k", ("k", [(b"x", ("d", float("nan")))])),
                (b"none", ("none", None)),
            ],
            events=[(0, b"boot", [])],
        )
    )
    result = native.decode_bytes(data, "t")
    assert native.native_requests_total == 1
    assert result.batch["SpanAttributes"] == [
        {"i": "-5", "b": "false", "d": "1e+16", "y": "AP8=", "a": '["a\\"b"]', "k": '{"x":NaN}', "none": ""}
    ]
    assert result.batch["TraceId"] == ["0102030405060708090a0b0c0d0e0f10"]
    assert result.batch["SpanKind"] == ["Client"] and result.batch["Duration"] == [10**9]
    assert result.batch["Events.Timestamp"] == [[NOW - 10**9]]
    assert result.batch["Events.Attributes"] == [[{ORIGINAL_EVENT_TIME: "0"}]]
    assert result.batch["Links.TraceId"] == [()]
    assert result.problems == {EMPTY_VALUE_NOTE: 1, EVENT_TIME_NOTE: 1}


def _mutations(seed_requests: list[bytes], count: int, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(seed_requests))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:  # flip bits
                data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif op == 1:  # cut short
                del data[pos:]
            elif op == 2:  # insert random bytes
                data[pos:pos] = rng.randbytes(rng.randint(1, 6))
            elif op == 3 and data:  # set a byte to an edge value
                data[min(pos, len(data) - 1)] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12])
            else:  # duplicate a slice
                end = min(len(data), pos + rng.randint(1, 24))
                data[pos:pos] = data[pos:end]
        out.append(bytes(data))
    return out


SEEDS = [c[1] for c in CASES if c[2] and c[1]]


def test_mutated_requests_never_crash_and_agree() -> None:
    """A few thousand random mutations of valid requests: no crash, same result or same refusal."""
    native, reference = decoders()
    rng = random.Random(20261204)
    mutated = _mutations(SEEDS, int(os.environ.get("SPANHOUSE_MUTATIONS", "3000")), rng)
    for data in mutated:
        compare(data, native, reference)
    # Most mutations break the request somewhere; some must still be decoded natively.
    assert native.native_requests_total > 50, native.native_requests_total
    assert native.reference_requests_total > 500, native.reference_requests_total


@pytest.mark.parametrize("size", [0, 1, 7, 100, 4096])
def test_random_bytes_never_crash(size: int) -> None:
    native, reference = decoders()
    rng = random.Random(size)
    for _ in range(200):
        compare(rng.randbytes(size), native, reference)


def test_no_memory_is_leaked_over_many_requests() -> None:
    """Repeated decoding of good, handed-back and broken requests leaves no growing allocation."""
    native, _ = decoders()
    requests = SEEDS + _mutations(SEEDS, 200, random.Random(7))

    def run() -> None:
        for data in requests:
            try:
                native.decode_bytes(data, "t")
            except RequestDecodeError:
                pass

    run()  # caches (the lenient schema, interned strings) fill on the first pass
    gc.collect()
    tracemalloc.start()
    try:
        run()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # ~2,600 decodes per round: a leak of one object per decode would show as >100 kB.
    assert after - before < 64 * 1024, f"{after - before} bytes more after 5 rounds"


def test_the_native_decoder_knows_every_field_of_the_installed_schema() -> None:
    """A newer opentelemetry-proto with a field the C code skips would turn the native path off (and warn)."""
    assert decode._native_schema_problem(fastdecode.KNOWN_FIELDS) is None
    fewer = {name: numbers[:-1] for name, numbers in fastdecode.KNOWN_FIELDS.items()}
    problem = decode._native_schema_problem(fewer)
    assert problem is not None and "native decoder does not know" in problem
    assert ExportTraceServiceRequest.DESCRIPTOR.full_name in fastdecode.KNOWN_FIELDS


def test_native_decode_off_and_a_bad_mode_are_checked() -> None:
    assert not Decoder(native_decode="off").native
    with pytest.raises(ValueError, match="native_decode must be one of auto, off"):
        Decoder(native_decode="on")
    config = ReceiverConfig(native_decode="fast")
    with pytest.raises(ConfigError, match=r"receiver.native_decode: must be one of auto, off .*got 'fast'"):
        config.validate()
    assert "native" in decode.describe("auto") and "off" in decode.describe("off")


def test_a_missing_extension_is_warned_about_once_and_the_reference_decodes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(decode, "_fastdecode", None)
    monkeypatch.setattr(decode, "_NATIVE_IMPORT_ERROR", "No module named '_fastdecode'")
    decode._native_decode.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="spanhouse.receiver"):
            decoders_made = [Decoder(), Decoder(), Decoder.from_config(Config())]
        assert not any(d.native for d in decoders_made)
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, warnings
        assert "native OTLP decoder is not installed" in warnings[0] and "C compiler" in warnings[0]
        assert "unavailable" in decode.describe("auto")
        result = decoders_made[0].decode_bytes(_one(_span()), "t")
        assert result.batch.size == 1 and decoders_made[0].reference_requests_total == 1
    finally:
        monkeypatch.undo()
        decode._native_decode.cache_clear()
    assert Decoder().native


def test_native_decode_comes_from_the_environment_too() -> None:
    from spanhouse.collector import config as config_mod

    cfg = config_mod.load(None, environ={"SPANHOUSE_RECEIVER__NATIVE_DECODE": "off"})
    assert cfg.receiver.native_decode == "off" and not Decoder.from_config(cfg).native
    assert Decoder.from_config(config_mod.load(None, environ={})).native
    with pytest.raises(ConfigError, match="receiver.native_decode"):
        config_mod.load(None, environ={"SPANHOUSE_RECEIVER__NATIVE_DECODE": "yes"})


def test_an_unquoted_off_in_yaml_is_explained(tmp_path: Any) -> None:
    from spanhouse.collector import config as config_mod

    path = tmp_path / "spanhouse.yaml"
    path.write_text("receiver:\n  native_decode: off\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r'receiver.native_decode: expected a string, got the YAML boolean False.*"off"'
    ):
        config_mod.load(path, environ={})
    path.write_text('receiver:\n  native_decode: "off"\n', encoding="utf-8")
    assert config_mod.load(path, environ={}).receiver.native_decode == "off"


def test_a_collector_decodes_sdk_spans_natively_and_says_so(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Real OTel SDK -> OTLP/gRPC -> collector: the native path stores what the SDK sent; /stats counts it."""
    from collector_harness import start_collector
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    with caplog.at_level("INFO", logger="spanhouse.service"):
        running = start_collector(tmp_path / "store")
    try:
        assert any("OTLP decoding: native" in r.getMessage() for r in caplog.records)
        provider = TracerProvider(
            resource=Resource.create({"service.name": "native-svc", "deployment.env": "t"})
        )
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10))
        )
        tracer = provider.get_tracer("native-test", "1.2")
        with (
            tracer.start_as_current_span("invoke_agent", kind=SpanKind.INTERNAL) as parent,
            tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                links=[Link(parent.get_span_context(), {"why": "follows"})],
            ) as child,
        ):
            child.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.request.temperature": 0.5,
                    "stream": False,
                    "gen_ai.response.finish_reasons": ["stop", "length"],
                    "ints": [1, 2],
                }
            )
            child.add_event("gen_ai.content.chunk", {"index": 0})
            child.set_status(Status(StatusCode.ERROR, "rate limited"))
        provider.shutdown()
        rows = running.query(
            "SELECT SpanName, SpanKind, ServiceName, ResourceAttributes['deployment.env'], ScopeName, "
            "ScopeVersion, "
            "SpanAttributes, StatusCode, StatusMessage, Events.Name, Events.Attributes, Links.Attributes, "
            "ParentSpanId = '', Operation, InputTokens "
            "FROM spans WHERE ServiceName = 'native-svc' ORDER BY Timestamp"
        )
        assert [r[:6] for r in rows] == [
            ("invoke_agent", "Internal", "native-svc", "t", "native-test", "1.2"),
            ("chat gpt-4o", "Client", "native-svc", "t", "native-test", "1.2"),
        ]
        child_row = rows[1]
        assert child_row[6] == {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": "12",
            "gen_ai.request.temperature": "0.5",
            "stream": "false",
            "gen_ai.response.finish_reasons": '["stop","length"]',
            "ints": "[1,2]",
        }
        assert child_row[7:] == (
            "Error",
            "rate limited",
            ["gen_ai.content.chunk"],
            [{"index": "0"}],
            [{"why": "follows"}],
            False,
            "chat",
            12,
        )
        stats = running.collector.counters()
        assert (
            stats["receiver_decode_native_requests_total"] >= 2
        )  # SimpleSpanProcessor: one request per span
        assert stats["receiver_decode_reference_requests_total"] == 0
    finally:
        running.collector.stop()
