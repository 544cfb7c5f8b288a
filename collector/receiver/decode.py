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
        values = value.array_value.values
        # Arrays of strings (finish reasons, tags) are the common case: skip the generic walk.
        if all(v.WhichOneof("value") == "string_value" for v in values):
            return "[" + ",".join([_json_string(v.string_value) for v in values]) + "]"
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
        limit = self.max_value_length
        for kv in kvs:
            value = kv.value
            text = value.string_value
            # Almost every value is a non-empty string; only "" can be another type (or unset).
            if not text and value.WhichOneof("value") != "string_value":
                text = _as_text(value, value.WhichOneof("value"))
                if text is None:
                    result.note("attribute values were empty or of an unknown type and were stored as ''")
                    text = ""
            if len(text) > limit:
                text = f"{text[:limit]}...[truncated {len(text) - limit} chars]"
                result.note(f"attribute values longer than {limit} chars were truncated")
            out[kv.key] = text
        return out

    def decode(self, request: ExportTraceServiceRequest, tenant: str) -> DecodeResult:
        columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
        columns[TRACE_FLAGS] = []
        result = DecodeResult(SpanBatch.empty())
        c_tenant = columns["TenantId"].append
        c_ts = columns["Timestamp"].append
        c_trace = columns["TraceId"].append
        c_span = columns["SpanId"].append
        c_parent = columns["ParentSpanId"].append
        c_state = columns["TraceState"].append
        c_name = columns["SpanName"].append
        c_kind = columns["SpanKind"].append
        c_service = columns["ServiceName"].append
        c_res = columns["ResourceAttributes"].append
        c_scope = columns["ScopeName"].append
        c_scope_v = columns["ScopeVersion"].append
        c_attrs = columns["SpanAttributes"].append
        c_dur = columns["Duration"].append
        c_status = columns["StatusCode"].append
        c_status_msg = columns["StatusMessage"].append
        c_ev_ts = columns["Events.Timestamp"].append
        c_ev_name = columns["Events.Name"].append
        c_ev_attrs = columns["Events.Attributes"].append
        c_ln_trace = columns["Links.TraceId"].append
        c_ln_span = columns["Links.SpanId"].append
        c_ln_state = columns["Links.TraceState"].append
        c_ln_attrs = columns["Links.Attributes"].append
        c_flags = columns[TRACE_FLAGS].append
        attributes = self._attributes
        max_spans = self.max_spans
        max_attributes = self.max_attributes
        size = 0
        seen = 0  # spans of the request so far, stored or not: the limit counts the request, not what is kept
        for r_index, resource_spans in enumerate(request.resource_spans):
            res_attrs = attributes(resource_spans.resource.attributes, result)
            service = res_attrs.get("service.name", "")
            for s_index, scope_spans in enumerate(resource_spans.scope_spans):
                scope = scope_spans.scope
                scope_name = scope.name
                scope_version = scope.version
                for p_index, span in enumerate(scope_spans.spans):
                    seen += 1
                    problem = _id_problem(span)
                    span_attrs = span.attributes  # one container wrapper for the check and the decode
                    if problem is not None:
                        pass
                    elif len(span_attrs) > max_attributes:
                        problem = f"more than receiver.max_attributes_per_span ({max_attributes}) attributes"
                    elif seen > max_spans:
                        problem = f"request holds more than receiver.max_spans_per_request ({max_spans}) spans"
                    if problem is not None:
                        result.reject(problem, f"resource_spans[{r_index}].scope_spans[{s_index}].spans[{p_index}]")
                        continue
                    start = span.start_time_unix_nano
                    end = span.end_time_unix_nano
                    c_tenant(tenant)
                    c_ts(start)
                    c_trace(span.trace_id.hex())
                    c_span(span.span_id.hex())
                    c_parent(span.parent_span_id.hex())
                    c_state(span.trace_state)
                    c_flags(span.flags)
                    c_name(span.name)
                    kind = span.kind
                    c_kind(SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified")
                    c_service(service)
                    c_res(res_attrs)
                    c_scope(scope_name)
                    c_scope_v(scope_version)
                    c_attrs(attributes(span_attrs, result))
                    c_dur(end - start if end > start else 0)
                    code = span.status.code
                    c_status(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                    c_status_msg(span.status.message)
                    events = span.events
                    if events:
                        c_ev_ts([e.time_unix_nano for e in events])
                        c_ev_name([e.name for e in events])
                        c_ev_attrs([attributes(e.attributes, result) for e in events])
                    else:
                        c_ev_ts([])
                        c_ev_name([])
                        c_ev_attrs([])
                    links = span.links
                    if links:
                        c_ln_trace([ln.trace_id.hex() for ln in links])
                        c_ln_span([ln.span_id.hex() for ln in links])
                        c_ln_state([ln.trace_state for ln in links])
                        c_ln_attrs([attributes(ln.attributes, result) for ln in links])
                    else:
                        c_ln_trace([])
                        c_ln_span([])
                        c_ln_state([])
                        c_ln_attrs([])
                    size += 1
        result.batch = SpanBatch(columns, size)
        return result


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
