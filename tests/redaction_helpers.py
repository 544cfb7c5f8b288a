"""Builds SpanBatches for redaction tests without a collector."""

from __future__ import annotations

from typing import Any

from spanhouse.collector.batch import BASE_COLUMNS, GENAI_COLUMNS, SpanBatch


def span_row(attrs: dict[str, str] | None = None, **columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: "" for name in BASE_COLUMNS}
    row.update({
        "Timestamp": 0, "Duration": 0, "Events.Timestamp": [], "Events.Name": [], "Events.Attributes": [],
        "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": [],
        "ResourceAttributes": {"service.name": "svc"}, "SpanAttributes": dict(attrs or {}),
        "TraceId": "0af7651916cd43dd8448eb211c80319c", "SpanId": "b7ad6b7169203331",
    })
    row.update(columns)
    return row


def batch_of(*rows: dict[str, Any]) -> SpanBatch:
    columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
    for row in rows:
        for name in BASE_COLUMNS:
            columns[name].append(row[name])
    extra = {name for row in rows for name in row if name not in columns}
    for name in extra:
        columns[name] = [row.get(name, GENAI_COLUMNS[name]) for row in rows]
    return SpanBatch(columns, len(rows))


def stored_strings(batch: SpanBatch) -> str:
    """Every string a batch would store, as one text (keys, values, lists, maps)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                out.append(k)
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    for values in batch.columns.values():
        walk(values)
    return "\n".join(out)
