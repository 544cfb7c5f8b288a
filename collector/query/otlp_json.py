"""Stored spans -> OTLP/JSON ExportTraceServiceRequest documents (`spanhouse export --format otlp-json`).

One request per trace, holding every kept span of it (not only GenAI calls), grouped by resource and
instrumentation scope, with kind, status, events and links, ids as hex and 64-bit times as strings as
OTLP/JSON writes them. `spanhouse replay` (and any OTLP/HTTP receiver) reads these lines.

What the store does not keep cannot come back, and is said here once:
- attribute values are stored as text: a value that reads back exactly as the collector stores an int,
  double, bool or an array of one of those (or of strings) is sent as that type, anything else as a
  string. Either way the replayed span is stored with the same text.
- span flags, dropped counts, scope attributes and schema URLs are not stored and are left out.
- content is what the collector stored: after redaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from spanhouse.collector.query.export_content import ContentReader
from spanhouse.collector.query.queries import render
from spanhouse.collector.query.reports import RunSql

# The names the decoder stores (receiver/decode.py), and the exporter's SPAN_KIND_* / STATUS_CODE_* spelling.
_KINDS = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
_STATUSES = {"Unset": 0, "Ok": 1, "Error": 2}
_INT = re.compile(r"^-?(?:0|[1-9]\d*)$")
_FLOAT = re.compile(r"^-?\d+(?:\.\d+)?(?:e[-+]?\d+)?$")
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _enum(table: dict[str, int], text: str, prefix: str) -> int:
    name = text[len(prefix):].title() if text.startswith(prefix) else text
    return table.get(name, 0)


def _scalar(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return None


def any_value(text: str) -> dict[str, Any]:
    """The OTLP AnyValue for a stored attribute text: typed only where the collector would store that type
    as exactly this text (receiver/decode.py), so a replayed span is stored unchanged."""
    if _INT.match(text) and _INT64[0] <= int(text) <= _INT64[1]:
        return {"intValue": text}
    if text in ("true", "false"):
        return {"boolValue": text == "true"}
    if _FLOAT.match(text) and repr(float(text)) == text:
        return {"doubleValue": float(text)}
    if text.startswith("[") and text.endswith("]"):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list) and items and len({type(i) for i in items}) == 1 \
                and json.dumps(items, ensure_ascii=False, separators=(",", ":")) == text:
            values = [_scalar(i) for i in items]
            if all(v is not None for v in values):
                return {"arrayValue": {"values": values}}
    return {"stringValue": text}


def attributes(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(text)} for key, text in values.items()]


def _span(row: dict[str, Any], content: ContentReader) -> dict[str, Any]:
    start = int(row["start_ns"])
    span: dict[str, Any] = {
        "traceId": row["trace_id"], "spanId": row["span_id"], "name": row["name"],
        "kind": _enum(_KINDS, row["kind"], "SPAN_KIND_"),
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + int(row["duration_ns"])),
        "attributes": attributes(content.attributes(row["trace_id"], row["span_id"], row["attributes"] or {})),
        "status": {"code": _enum(_STATUSES, row["status_code"], "STATUS_CODE_")},
    }
    if row["parent_span_id"]:
        span["parentSpanId"] = row["parent_span_id"]
    if row["trace_state"]:
        span["traceState"] = row["trace_state"]
    if row["status_message"]:
        span["status"]["message"] = row["status_message"]
    events = [{"timeUnixNano": str(int(t)), "name": name, "attributes": attributes(attrs or {})}
              for t, name, attrs in zip(row["event_times"], row["event_names"], row["event_attributes"])]
    if events:
        span["events"] = events
    links = []
    for trace_id, span_id, state, attrs in zip(row["link_trace_ids"], row["link_span_ids"],
                                               row["link_trace_states"], row["link_attributes"]):
        link: dict[str, Any] = {"traceId": trace_id, "spanId": span_id, "attributes": attributes(attrs or {})}
        if state:
            link["traceState"] = state
        links.append(link)
    if links:
        span["links"] = links
    return span


def trace_requests(run_sql: RunSql, trace_ids: list[str], content: ContentReader) -> Iterator[tuple[str, dict]]:
    """(trace id, its ExportTraceServiceRequest as an OTLP/JSON dict) for each of `trace_ids` with kept spans,
    in the order given."""
    for start in range(0, len(trace_ids), 100):
        chunk = trace_ids[start:start + 100]
        names, rows = run_sql(render("export_spans", trace_ids=chunk))
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            span = dict(zip(names, row))
            by_trace.setdefault(span["trace_id"], []).append(span)
        for trace_id in chunk:
            if trace_id in by_trace:
                yield trace_id, request_for(by_trace[trace_id], content)


def request_for(rows: list[dict[str, Any]], content: ContentReader) -> dict[str, Any]:
    """Span rows -> one request, spans grouped under their resource and scope in first-seen order."""
    resources: dict[str, dict[str, Any]] = {}
    for row in rows:
        resource = row["resource"] or {}
        key = json.dumps(resource, sort_keys=True)
        holder = resources.get(key)
        if holder is None:
            holder = resources[key] = {"resource": {"attributes": attributes(resource)}, "scopes": {}}
        scope_key = (row["scope_name"], row["scope_version"])
        scope = holder["scopes"].get(scope_key)
        if scope is None:
            scope_doc: dict[str, Any] = {"name": row["scope_name"]}
            if row["scope_version"]:
                scope_doc["version"] = row["scope_version"]
            scope = holder["scopes"][scope_key] = {"scope": scope_doc, "spans": []}
        scope["spans"].append(_span(row, content))
    return {"resourceSpans": [{"resource": holder["resource"], "scopeSpans": list(holder["scopes"].values())}
                              for holder in resources.values()]}
