"""OTLP trace request bytes -> one columnar SpanBatch, refusing bad spans one by one.

The decoder validates each span on its own: a span with a malformed id is
rejected and counted, its neighbours are kept. Strings that are not valid
UTF-8 make protobuf refuse the whole request; those requests are re-read with a
byte-tolerant twin of the OTLP schema, repaired (invalid sequences become
U+FFFD) and decoded normally, so one bad string costs no other span.
"""

from __future__ import annotations

import base64
import json
from itertools import repeat
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.collector.batch import BASE_COLUMNS, TRACE_FLAGS, SpanBatch
from spanhouse.collector.receiver import lenient

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


def _plain(value: Any) -> Any:
    """AnyValue -> plain Python value, for JSON rendering of arrays and maps."""
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
        return [_plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
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
                 max_attributes_per_span: int = 1024) -> None:
        self.max_value_length = max_attribute_value_length
        self.max_spans = max_spans_per_request
        self.max_attributes = max_attributes_per_span

    def decode_bytes(self, data: bytes, tenant: str) -> DecodeResult:
        try:
            request = ExportTraceServiceRequest.FromString(data)
            repaired = 0
        except DecodeError as exc:
            try:
                request, repaired = lenient.parse_repairing_utf8(data)
            except DecodeError:
                raise RequestDecodeError(f"request is not a valid OTLP ExportTraceServiceRequest: {exc}") from None
        result = self.decode(request, tenant)
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
                        result.note("attribute values were empty or of an unknown type and were stored as ''")
                        text = ""
            out[kv.key] = text
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

    def decode(self, request: ExportTraceServiceRequest, tenant: str) -> DecodeResult:
        columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
        columns[TRACE_FLAGS] = []
        result = DecodeResult(SpanBatch.empty())
        seen = 0  # spans of the request so far, stored or not: the limit counts the request, not what is kept
        for r_index, resource_spans in enumerate(request.resource_spans):
            res_attrs = self._attributes(resource_spans.resource.attributes, result)
            service = res_attrs.get("service.name", "")
            for s_index, scope_spans in enumerate(resource_spans.scope_spans):
                spans = list(scope_spans.spans)
                if not spans:
                    continue
                scope = _ScopeSpans(spans)
                if not scope.valid(self.max_attributes, self.max_spans - seen):
                    scope = self._keep_valid(scope, seen, result, f"resource_spans[{r_index}].scope_spans[{s_index}]")
                seen += len(spans)
                if scope.spans:
                    self._append(columns, scope, tenant, service, res_attrs, scope_spans.scope, result)
        result.batch = SpanBatch(columns, len(columns["SpanId"]))
        return result

    def _keep_valid(self, scope: _ScopeSpans, seen: int, result: DecodeResult, where: str) -> _ScopeSpans:
        """The spans of `scope` that pass the checks; each other one is rejected with its reason."""
        keep: list[int] = []
        for p_index, span in enumerate(scope.spans):
            problem = _id_problem(span)
            if problem is not None:
                pass
            elif len(scope.attributes[p_index]) > self.max_attributes:
                problem = f"more than receiver.max_attributes_per_span ({self.max_attributes}) attributes"
            elif seen + p_index + 1 > self.max_spans:
                problem = f"request holds more than receiver.max_spans_per_request ({self.max_spans}) spans"
            if problem is None:
                keep.append(p_index)
            else:
                result.reject(problem, f"{where}.spans[{p_index}]")
        return scope.take(keep)

    def _append(self, columns: dict[str, list[Any]], scope: _ScopeSpans, tenant: str, service: str,
                res_attrs: dict[str, str], instrumentation_scope: Any, result: DecodeResult) -> None:
        """Append the spans of one instrumentation scope, column by column."""
        spans = scope.spans
        n = len(spans)
        columns["TenantId"] += [tenant] * n
        starts = [s.start_time_unix_nano for s in spans]
        ends = [s.end_time_unix_nano for s in spans]
        columns["Timestamp"] += starts
        columns["Duration"] += [end - start if end > start else 0 for start, end in zip(starts, ends)]
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
        attributes = self._attributes
        columns["SpanAttributes"] += [attributes(kvs, result) for kvs in scope.attributes]
        statuses = [s.status for s in spans]
        columns["StatusCode"] += map(_STATUS_CODE_NAMES.get, [st.code for st in statuses], repeat("Unset"))
        columns["StatusMessage"] += [st.message for st in statuses]
        # A span without events or links (most have no links) gets the empty tuple in those
        # columns: one shared immutable object instead of four to seven new lists per span.
        ev_ts, ev_name, ev_attrs = columns["Events.Timestamp"], columns["Events.Name"], columns["Events.Attributes"]
        for events in [s.events for s in spans]:
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


class _ScopeSpans:
    """The spans of one instrumentation scope with the fields checked before decoding, read once."""

    __slots__ = ("attributes", "parent_ids", "span_ids", "spans", "trace_ids")

    def __init__(self, spans: list[Any]) -> None:
        self.spans = spans
        self.trace_ids: list[bytes] = [s.trace_id for s in spans]
        self.span_ids: list[bytes] = [s.span_id for s in spans]
        self.parent_ids: list[bytes] = [s.parent_span_id for s in spans]
        self.attributes: list[Any] = [s.attributes for s in spans]

    def valid(self, max_attributes: int, spans_left: int) -> bool:
        """True when no span breaks a rule (checked a column at a time; `_id_problem` says which does)."""
        return (len(self.spans) <= spans_left
                and set(map(len, self.trace_ids)) == {16} and _ZERO_TRACE_ID not in self.trace_ids
                and set(map(len, self.span_ids)) == {8} and _ZERO_SPAN_ID not in self.span_ids
                and set(map(len, self.parent_ids)) <= {0, 8}
                and max(map(len, self.attributes)) <= max_attributes)

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
