"""OTLP trace request bytes -> one columnar SpanBatch, refusing bad spans one by one.

The decoder validates each span on its own: a span with a malformed id is
rejected and counted, its neighbours are kept. Strings that are not valid
UTF-8 make protobuf refuse the whole request; those requests are re-read with a
byte-tolerant twin of the OTLP schema, repaired (invalid sequences become
U+FFFD) and decoded normally, so one bad string costs no other span.

Every value is kept inside what the store's columns hold (docs/durability.md):
a span whose start or end time the store cannot keep (unset, older than the
spans table's retention, too far ahead of the collector's clock, or past
2106-02-07 where ClickHouse's DateTime ends) is refused with its reason; an
event time out of that range is set to the span's start, the original kept in
an event attribute. Attribute values nesting more than MAX_VALUE_DEPTH levels
refuse their span; a request protobuf cannot parse for its depth is pruned of
those spans first (see `_wire`), so the others are kept.

Two implementations share this contract. `_fastdecode` (C, built when a compiler is
at hand) reads the wire bytes directly and handles the common, well-formed request;
on anything it does not handle itself (every refusal, repair, truncation or odd
encoding) it hands the whole request back, and the pure-Python decoder here, the
reference, decides. Both give identical results (tests/test_native_decode.py).
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from spanhouse.collector.config import Config

from spanhouse.collector.batch import BASE_COLUMNS, TRACE_FLAGS, SpanBatch
from spanhouse.collector.receiver import _wire, lenient
from spanhouse.collector.receiver._wire import DEEP_REASON as _DEEP
from spanhouse.collector.receiver._wire import MAX_VALUE_DEPTH
from spanhouse.collector.receiver.config import NATIVE_DECODE_MODES

_NATIVE_IMPORT_ERROR = ""
try:
    from spanhouse.collector.receiver import _fastdecode
except ImportError as _exc:  # built without a compiler: the reference decodes everything
    _fastdecode = None
    _NATIVE_IMPORT_ERROR = str(_exc)

log = logging.getLogger("spanhouse.receiver")

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
# Enum number -> name; a number outside the enum (proto3 enums are open) maps to the first name.
_SPAN_KIND_NAMES = dict(enumerate(SPAN_KINDS))
_STATUS_CODE_NAMES = dict(enumerate(STATUS_CODES))
LINK_COLUMNS = ("Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes")
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
# One encoder for all calls: json.dumps with non-default options builds a new encoder every time.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The string encoder _to_json uses, so both paths render a string identically.
_json_string = json.encoder.encode_basestring
# The latest time the store keeps intact: the tables partition, expire and index spans by
# toDate/toDateTime(Timestamp), and ClickHouse's DateTime (seconds in a UInt32) ends at
# 2106-02-07T06:28:15Z; later values wrap around silently (a span of 2150 would be filed
# under 1970 and deleted by the TTL at once). DateTime64(9) itself ends at 2262-04-11.
MAX_TIME_NS = (1 << 32) * 1_000_000_000 - 1
_NS_PER_DAY = 86_400 * 1_000_000_000
# Event attribute keeping an event time that was out of range (the event is stored at the span's start).
ORIGINAL_EVENT_TIME = "spanhouse.original_time_unix_nano"
# Problem notes both decoders make (partial_success.error_message).
EMPTY_VALUE_NOTE = "attribute values were empty or of an unknown type and were stored as ''"
EVENT_TIME_NOTE = (f"event times that were unset or past 2106-02-07 were set to the span's start "
                   f"(the original is in the event attribute {ORIGINAL_EVENT_TIME})")


intern = sys.intern
# Attribute values up to this long are shared within a request: the low-cardinality ones (model names,
# operations, finish reasons, ports) repeat across spans; longer ones (content, ids) rarely do.
_SHARED_VALUE_MAX_LEN = 64


class _TooDeep(Exception):
    """An attribute value nests more than MAX_VALUE_DEPTH levels (raised while rendering it)."""


class RequestDecodeError(ValueError):
    """The request is not an OTLP ExportTraceServiceRequest at all."""


@dataclass
class DecodeResult:
    batch: SpanBatch
    rejected_spans: int = 0
    # problem description -> number of occurrences, for the partial_success message
    problems: dict[str, int] = field(default_factory=dict)
    # problem -> where it was first seen in the request
    first_seen: dict[str, str] = field(default_factory=dict)
    # a short attribute value -> the one string of it this request's spans share (see Decoder._attributes)
    strings: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def note(self, problem: str, count: int = 1) -> None:
        self.problems[problem] = self.problems.get(problem, 0) + count

    def reject(self, problem: str, where: str) -> None:
        self.rejected_spans += 1
        problem = f"span rejected: {problem}"
        self.note(problem)
        self.first_seen.setdefault(problem, where)

    def export_response(self) -> ExportTraceServiceResponse:
        """The OTLP answer: empty, or partial_success with the refused spans and what went wrong."""
        response = ExportTraceServiceResponse()
        if self.rejected_spans or self.problems:
            response.partial_success.rejected_spans = self.rejected_spans
            response.partial_success.error_message = self.message()
        return response

    def message(self) -> str:
        """A short, human-readable summary for OTLP partial_success.error_message."""
        parts = []
        for problem, count in self.problems.items():
            where = self.first_seen.get(problem)
            parts.append(f"{problem} ({count}x{', first at ' + where if where else ''})")
        return "; ".join(parts)


def _plain(value: Any, depth: int = 1) -> Any:
    """AnyValue -> plain Python value, for JSON rendering of arrays and maps.

    Raises _TooDeep past MAX_VALUE_DEPTH levels: the span is refused (protobuf itself takes
    arrays nested up to ~47 levels, and Python's recursion must stay bounded).
    """
    if depth > MAX_VALUE_DEPTH:
        raise _TooDeep
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which == "array_value":
        return [_plain(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def _as_text(value: Any, which: str | None) -> str | None:
    """Non-string AnyValue -> the string stored in a Map(String, String) column."""
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return repr(value.double_value)
    if which == "array_value":
        # Arrays of strings (finish reasons, tags) are the common case: skip the generic walk.
        # Only an empty string can be of another type, so non-empty strings are strings.
        texts = [v.string_value for v in value.array_value.values]
        if all(texts):
            return "[" + ",".join(map(_json_string, texts)) + "]"
        return _to_json(_plain(value))
    if which == "kvlist_value":
        return _to_json(_plain(value))
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


class Decoder:
    """Turns serialized ExportTraceServiceRequest messages into SpanBatches."""

    def __init__(self, max_attribute_value_length: int = 1 << 20, max_spans_per_request: int = 100_000,
                 max_attributes_per_span: int = 1024, retention_days: int = 0,
                 max_future_skew_s: float = 86_400.0, clock_ns: Callable[[], int] = time.time_ns,
                 native_decode: str = "auto") -> None:
        """`retention_days`: the spans table's retention (retention.spans_days; 0 keeps forever): a span
        starting before it would be deleted by the table's TTL at once, so it is refused instead.
        `max_future_skew_s`: how far a span's start or end may lie ahead of `clock_ns()`.
        `native_decode`: "auto" decodes with the C extension when it is installed, "off" never."""
        if native_decode not in NATIVE_DECODE_MODES:
            raise ValueError(f"native_decode must be one of {', '.join(NATIVE_DECODE_MODES)}, "
                             f"got {native_decode!r}")
        self.max_value_length = max_attribute_value_length
        self.max_spans = max_spans_per_request
        self.max_attributes = max_attributes_per_span
        self.retention_days, self.max_future_skew_s = retention_days, max_future_skew_s
        self._clock_ns = clock_ns
        self._native = _native_decode() if native_decode == "auto" else None
        # Requests each decoder finished (the C one hands unusual requests to the reference).
        self.native_requests_total = 0
        self.reference_requests_total = 0

    @property
    def native(self) -> bool:
        """True when requests go to the C decoder first."""
        return self._native is not None

    @classmethod
    def from_config(cls, cfg: Config) -> Decoder:
        r = cfg.receiver
        return cls(r.max_attribute_value_length, r.max_spans_per_request, r.max_attributes_per_span,
                   cfg.retention.spans_days, r.max_future_skew_s, native_decode=r.native_decode)

    def counters(self) -> dict[str, int]:
        return {"decode_native_requests_total": self.native_requests_total,
                "decode_reference_requests_total": self.reference_requests_total}

    def decode_bytes(self, data: bytes, tenant: str) -> DecodeResult:
        if self._native is not None:
            window = self._time_window()
            if window.low <= window.high:  # else every span is refused: the reference says why
                out = self._native(data, tenant, window.low, window.high, self.max_spans, self.max_attributes,
                                   self.max_value_length)
                if out is not None:
                    self.native_requests_total += 1
                    lists, problems = out
                    columns = dict(zip(_NATIVE_COLUMNS, lists))
                    return DecodeResult(SpanBatch(columns, len(lists[0])), 0, problems)
        self.reference_requests_total += 1
        return self.decode_bytes_reference(data, tenant)

    def decode_bytes_reference(self, data: bytes, tenant: str) -> DecodeResult:
        """`decode_bytes` in pure Python: the reference the C decoder is tested against."""
        refused: dict[tuple[int, int, int], str] = {}
        try:
            request = ExportTraceServiceRequest.FromString(data)
            repaired = 0
        except DecodeError as exc:
            # Rare: invalid UTF-8, values nested deeper than protobuf parses, or not OTLP at all.
            try:
                data, refused = _wire.prune_deep_values(data)
            except _wire.WireError:
                raise RequestDecodeError(f"request is not a valid OTLP ExportTraceServiceRequest: {exc}") from None
            try:
                request = ExportTraceServiceRequest.FromString(data)
                repaired = 0
            except DecodeError:
                try:
                    request, repaired = lenient.parse_repairing_utf8(data)
                except DecodeError:
                    raise RequestDecodeError(
                        f"request is not a valid OTLP ExportTraceServiceRequest: {exc}") from None
        result = self.decode(request, tenant, refused)
        if repaired:
            result.note("string values were not valid UTF-8 and were stored with U+FFFD replacements", repaired)
        return result

    def _attributes(self, kvs: Any, result: DecodeResult) -> dict[str, str]:
        out: dict[str, str] = {}
        for kv in kvs:
            value = kv.value
            text = value.string_value
            # Almost every value is a non-empty string; only "" can be another type (or unset).
            if not text:
                which = value.WhichOneof("value")
                if which == "int_value":  # token counts, ports: the common other type
                    text = str(value.int_value)
                elif which != "string_value":
                    text = _as_text(value, which)
                    if text is None:
                        result.note(EMPTY_VALUE_NOTE)
                        text = ""
            # Every span repeats the same keys and many of the same short values (models, operations,
            # providers): one string each instead of a new one per span, as the C decoder does.
            # Keys are interned; a request's short values share one string through its cache.
            if len(text) <= _SHARED_VALUE_MAX_LEN:
                text = result.strings.setdefault(text, text)
            out[intern(kv.key)] = text
        # Checked once per map: values over the limit are rare.
        if out and max(map(len, out.values())) > self.max_value_length:
            self._truncate(out, result)
        return out

    def _truncate(self, attributes: dict[str, str], result: DecodeResult) -> None:
        limit = self.max_value_length
        for key, text in attributes.items():
            if len(text) > limit:
                attributes[key] = f"{text[:limit]}...[truncated {len(text) - limit} chars]"
                result.note(f"attribute values longer than {limit} chars were truncated")

    def _time_window(self) -> _TimeWindow:
        now = self._clock_ns()
        low = 1  # 0 is an unset time
        if self.retention_days:
            low = max(low, now - self.retention_days * _NS_PER_DAY)
        high = min(MAX_TIME_NS, now + int(self.max_future_skew_s * 1e9))
        return _TimeWindow(low, high, self.retention_days, self.max_future_skew_s)

    def decode(self, request: ExportTraceServiceRequest, tenant: str,
               refused: dict[tuple[int, int, int], str] | None = None) -> DecodeResult:
        """`refused`: (resource, scope, span) index -> reason, for spans already refused while parsing."""
        columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
        columns[TRACE_FLAGS] = []
        result = DecodeResult(SpanBatch.empty())
        window = self._time_window()
        seen = 0  # spans of the request so far, stored or not: the limit counts the request, not what is kept
        for r_index, resource_spans in enumerate(request.resource_spans):
            try:
                res_attrs = self._attributes(resource_spans.resource.attributes, result)
                resource_problem = None
            except _TooDeep:
                res_attrs, resource_problem = {}, f"a resource attribute value {_DEEP}"
            service = res_attrs.get("service.name", "")
            for s_index, scope_spans in enumerate(resource_spans.scope_spans):
                spans = list(scope_spans.spans)
                if not spans:
                    continue
                where = f"resource_spans[{r_index}].scope_spans[{s_index}]"
                scope = _ScopeSpans(spans)
                early = {p: reason for (r, s, p), reason in refused.items() if r == r_index and s == s_index} \
                    if refused else {}
                if resource_problem is not None:
                    early = dict.fromkeys(range(len(spans)), resource_problem)
                if early or not scope.valid(self.max_attributes, self.max_spans - seen, window):
                    scope = self._keep_valid(scope, seen, result, where, window, early)
                seen += len(spans)
                if not scope.spans:
                    continue
                mark = len(columns["SpanId"])
                try:
                    self._append(columns, scope, tenant, service, res_attrs, scope_spans.scope, result)
                except _TooDeep:  # rare: undo this scope's rows, refuse the deep spans, append the others
                    for values in columns.values():
                        del values[mark:]
                    scope = self._keep_shallow(scope, result, where)
                    if scope.spans:
                        self._append(columns, scope, tenant, service, res_attrs, scope_spans.scope, result)
        result.batch = SpanBatch(columns, len(columns["SpanId"]))
        return result

    def _keep_valid(self, scope: _ScopeSpans, seen: int, result: DecodeResult, where: str,
                    window: _TimeWindow, early: dict[int, str]) -> _ScopeSpans:
        """The spans of `scope` that pass the checks; each other one is rejected with its reason."""
        keep: list[int] = []
        for p_index, span in enumerate(scope.spans):
            problem = early.get(p_index)
            if problem is None:
                problem = _id_problem(span)
            if problem is not None:
                pass
            elif len(scope.attributes[p_index]) > self.max_attributes:
                problem = f"more than receiver.max_attributes_per_span ({self.max_attributes}) attributes"
            elif seen + p_index + 1 > self.max_spans:
                problem = f"request holds more than receiver.max_spans_per_request ({self.max_spans}) spans"
            else:
                bad_time = window.problem(scope.starts[p_index], scope.ends[p_index])
                if bad_time is not None:
                    result.reject(bad_time[0], f"{where}.spans[{p_index}], {bad_time[1]}")
                    continue
            if problem is None:
                keep.append(p_index)
            else:
                result.reject(problem, f"{where}.spans[{p_index}]")
        return scope.take(keep)

    def _keep_shallow(self, scope: _ScopeSpans, result: DecodeResult, where: str) -> _ScopeSpans:
        keep: list[int] = []
        for p_index, span in enumerate(scope.spans):
            holders = [span, *span.events, *span.links]
            if any(_value_depth(kv.value) > MAX_VALUE_DEPTH for h in holders for kv in h.attributes):
                result.reject(f"an attribute value {_DEEP}", f"{where}.spans[{p_index}]")
            else:
                keep.append(p_index)
        return scope.take(keep)

    def _append(self, columns: dict[str, list[Any]], scope: _ScopeSpans, tenant: str, service: str,
                res_attrs: dict[str, str], instrumentation_scope: Any, result: DecodeResult) -> None:
        """Append the spans of one instrumentation scope, column by column."""
        spans = scope.spans
        n = len(spans)
        # Rendered first: an attribute value nested too deep raises _TooDeep before any column grows.
        attributes = self._attributes
        span_attributes = [attributes(kvs, result) for kvs in scope.attributes]
        columns["TenantId"] += [tenant] * n
        starts = scope.starts
        columns["Timestamp"] += starts
        columns["Duration"] += [end - start if end > start else 0 for start, end in zip(starts, scope.ends)]
        columns["TraceId"] += map(bytes.hex, scope.trace_ids)
        columns["SpanId"] += map(bytes.hex, scope.span_ids)
        columns["ParentSpanId"] += map(bytes.hex, scope.parent_ids)
        columns["TraceState"] += [s.trace_state for s in spans]
        columns[TRACE_FLAGS] += [s.flags for s in spans]
        columns["SpanName"] += [s.name for s in spans]
        columns["SpanKind"] += map(_SPAN_KIND_NAMES.get, [s.kind for s in spans], repeat("Unspecified"))
        columns["ServiceName"] += [service] * n
        columns["ResourceAttributes"] += [res_attrs] * n  # one dict per resource, shared by its spans
        columns["ScopeName"] += [instrumentation_scope.name] * n
        columns["ScopeVersion"] += [instrumentation_scope.version] * n
        columns["SpanAttributes"] += span_attributes
        statuses = [s.status for s in spans]
        columns["StatusCode"] += map(_STATUS_CODE_NAMES.get, [st.code for st in statuses], repeat("Unset"))
        columns["StatusMessage"] += [st.message for st in statuses]
        # A span without events or links (most have no links) gets the empty tuple in those
        # columns: one shared immutable object instead of four to seven new lists per span.
        ev_ts, ev_name, ev_attrs = columns["Events.Timestamp"], columns["Events.Name"], columns["Events.Attributes"]
        for start, events in zip(starts, [s.events for s in spans]):
            if not events:
                ev_ts.append(())
                ev_name.append(())
                ev_attrs.append(())
                continue
            times: list[int] = []
            names: list[str] = []
            maps: list[dict[str, str]] = []
            for event in events:  # usually one: a loop is cheaper than three comprehensions
                times.append(event.time_unix_nano)
                names.append(event.name)
                maps.append(attributes(event.attributes, result))
            if min(times) < 1 or max(times) > MAX_TIME_NS:
                _clamp_event_times(times, maps, start, result)
            ev_ts.append(times)
            ev_name.append(names)
            ev_attrs.append(maps)
        all_links = [s.links for s in spans]
        if not any(all_links):
            for name in LINK_COLUMNS:
                columns[name] += [()] * n
            return
        ln_trace, ln_span = columns["Links.TraceId"], columns["Links.SpanId"]
        ln_state, ln_attrs = columns["Links.TraceState"], columns["Links.Attributes"]
        for links in all_links:
            if links:
                links = list(links)
                ln_trace.append([ln.trace_id.hex() for ln in links])
                ln_span.append([ln.span_id.hex() for ln in links])
                ln_state.append([ln.trace_state for ln in links])
                ln_attrs.append([attributes(ln.attributes, result) for ln in links])
            else:
                ln_trace.append(())
                ln_span.append(())
                ln_state.append(())
                ln_attrs.append(())


# The order of the C decoder's column lists.
_NATIVE_COLUMNS = (*BASE_COLUMNS, TRACE_FLAGS)


def _native_schema_problem(known: dict[str, tuple[int, ...]]) -> str | None:
    """Why the C decoder cannot be trusted with the installed OTLP schema, or None.

    It reads fields by number; a field it does not know is skipped as protobuf skips unknown
    fields, which is only right while the installed schema has no such field (a newer
    opentelemetry-proto may add one that protobuf would parse and check).
    """
    pending, seen = [ExportTraceServiceRequest.DESCRIPTOR], set()
    while pending:
        message = pending.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        numbers = {f.number for f in message.fields}
        extra = numbers - set(known.get(message.full_name, ()))
        if extra:
            return (f"the installed opentelemetry-proto has fields {sorted(extra)} in {message.full_name} "
                    "that the native decoder does not know")
        pending.extend(f.message_type for f in message.fields if f.message_type is not None)
    return None


@functools.cache
def _native_decode() -> Callable[..., Any] | None:
    """The C decoder's entry point, or None (warned about once per process) when it cannot be used."""
    if _fastdecode is None:
        log.warning("the native OTLP decoder is not installed (%s): decoding in pure Python, at several "
                    "times the CPU per span. Reinstall spanhouse on a machine with a C compiler and the "
                    "Python headers (e.g. apt-get install gcc python3-dev; pip install --force-reinstall "
                    "--no-deps spanhouse), or set receiver.native_decode: \"off\" to silence this",
                    _NATIVE_IMPORT_ERROR)
        return None
    problem = _native_schema_problem(_fastdecode.KNOWN_FIELDS)
    if problem is not None:
        log.warning("the native OTLP decoder is off: %s; decoding in pure Python. Install the "
                    "opentelemetry-proto version spanhouse was built against, or upgrade spanhouse", problem)
        return None
    _fastdecode.configure(SPAN_KINDS, STATUS_CODES, _to_json, EMPTY_VALUE_NOTE, EVENT_TIME_NOTE,
                          ORIGINAL_EVENT_TIME, "service.name")
    return _fastdecode.decode


def describe(native_decode: str) -> str:
    """Which decoder a collector with receiver.native_decode = `native_decode` runs, for its start-up log."""
    if native_decode == "off":
        return "pure Python (receiver.native_decode: off)"
    if _native_decode() is None:
        return "pure Python (the native decoder is unavailable, see the warning above)"
    return "native (C extension; unusual requests go to the pure-Python reference)"


def _value_depth(value: Any, depth: int = 1) -> int:
    """Levels of AnyValue in `value`, counting no further than MAX_VALUE_DEPTH + 1."""
    if depth > MAX_VALUE_DEPTH:
        return depth
    which = value.WhichOneof("value")
    if which == "array_value":
        children = list(value.array_value.values)
    elif which == "kvlist_value":
        children = [kv.value for kv in value.kvlist_value.values]
    else:
        return depth
    return max((_value_depth(v, depth + 1) for v in children), default=depth)


def _clamp_event_times(times: list[int], maps: list[dict[str, str]], start: int, result: DecodeResult) -> None:
    """Event times the store cannot keep become the span's start; the original stays in an attribute."""
    for i, t in enumerate(times):
        if t < 1 or t > MAX_TIME_NS:
            times[i] = start
            maps[i] = {**maps[i], ORIGINAL_EVENT_TIME: str(t)}
            result.note(EVENT_TIME_NOTE)


def _iso(ns: int) -> str:
    seconds = min(ns // 1_000_000_000, 253_402_300_799)  # datetime ends in the year 9999
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _TimeWindow:
    """The start and end times a span may have: [low, high] in Unix nanoseconds, fixed per request."""

    __slots__ = ("high", "low", "retention_days", "skew_s")

    def __init__(self, low: int, high: int, retention_days: int, skew_s: float) -> None:
        self.low = low
        self.high = high
        self.retention_days = retention_days
        self.skew_s = skew_s

    def problem(self, start: int, end: int) -> tuple[str, str] | None:
        """(why a span with these times cannot be stored, the value at fault), or None.

        The reason is the same for every span it hits, so partial_success counts them together;
        the value goes with the position of the first one.
        """
        for name, value in (("start_time_unix_nano", start), ("end_time_unix_nano", end)):
            if value > self.high:
                if value > MAX_TIME_NS:
                    reason = (f"{name} is past 2106-02-07T06:28:15Z, the latest time the store keeps "
                              "(OTLP times are Unix nanoseconds)")
                    return reason, f"{name}={value}"
                reason = (f"{name} is more than receiver.max_future_skew_s ({self.skew_s:g} s) ahead of "
                          "the collector's clock")
                return reason, f"{name}={value} ({_iso(value)})"
        if start == 0:
            return "start_time_unix_nano is 0 (not set)", "start_time_unix_nano=0"
        if start < self.low:
            reason = (f"start_time_unix_nano is older than retention.spans_days ({self.retention_days} days): "
                      "the store would delete the span at once")
            return reason, f"start_time_unix_nano={start} ({_iso(start)})"
        return None


class _ScopeSpans:
    """The spans of one instrumentation scope with the fields checked before decoding, read once."""

    __slots__ = ("attributes", "ends", "parent_ids", "span_ids", "spans", "starts", "trace_ids")

    def __init__(self, spans: list[Any]) -> None:
        self.spans = spans
        self.trace_ids: list[bytes] = [s.trace_id for s in spans]
        self.span_ids: list[bytes] = [s.span_id for s in spans]
        self.parent_ids: list[bytes] = [s.parent_span_id for s in spans]
        self.attributes: list[Any] = [s.attributes for s in spans]
        self.starts: list[int] = [s.start_time_unix_nano for s in spans]
        self.ends: list[int] = [s.end_time_unix_nano for s in spans]

    def valid(self, max_attributes: int, spans_left: int, window: _TimeWindow) -> bool:
        """True when no span breaks a rule (checked a column at a time; `_keep_valid` says which does)."""
        return (len(self.spans) <= spans_left
                and set(map(len, self.trace_ids)) == {16} and _ZERO_TRACE_ID not in self.trace_ids
                and set(map(len, self.span_ids)) == {8} and _ZERO_SPAN_ID not in self.span_ids
                and set(map(len, self.parent_ids)) <= {0, 8}
                and max(map(len, self.attributes)) <= max_attributes
                and window.low <= min(self.starts) and max(self.starts) <= window.high
                and max(self.ends) <= window.high)

    def take(self, keep: list[int]) -> _ScopeSpans:
        out = _ScopeSpans.__new__(_ScopeSpans)
        for name in self.__slots__:
            values = getattr(self, name)
            setattr(out, name, [values[i] for i in keep])
        return out


def _id_problem(span: Any) -> str | None:
    trace_id = span.trace_id
    if len(trace_id) != 16:
        return f"trace_id must be 16 bytes, got {len(trace_id)}"
    if trace_id == _ZERO_TRACE_ID:
        return "trace_id is all zeros"
    span_id = span.span_id
    if len(span_id) != 8:
        return f"span_id must be 8 bytes, got {len(span_id)}"
    if span_id == _ZERO_SPAN_ID:
        return "span_id is all zeros"
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(parent)}"
    return None
