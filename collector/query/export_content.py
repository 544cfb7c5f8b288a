"""Where `spanhouse export` reads message content: span attributes as stored, or the archive for admin keys.

Both export formats (call records in export.py, OTLP/JSON in otlp_json.py) read content through
`ContentReader`, so archived content is resolved in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from spanhouse.collector.content_keys import REFERENCE_PREFIX
from spanhouse.collector.query.reports import RunSql

# Rows of {trace_id, span_id, attributes} -> the same rows with archived content put back where allowed.
ResolveContent = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class ContentReader:
    """The one place content columns are read: span attributes -> attributes as they are exported.

    Content is kept in the span's attributes as stored (already redacted by the collector). Past
    retention.content_days the store keeps a reference there instead (collector/content_keys.py) and the
    content in genai_content: `resolve` (the reader's `resolve_content`) puts it back for admin keys, each
    read recorded in genai_content_access; tenant keys get the references as they are.
    """

    def __init__(self, run_sql: RunSql, resolve: ResolveContent | None = None) -> None:
        self.run_sql = run_sql
        self.resolve = resolve

    def attributes(self, trace_id: str, span_id: str, attributes: Mapping[str, str]) -> dict[str, str]:
        out = dict(attributes)
        if self.resolve is None or not any(
                isinstance(v, str) and v.startswith(REFERENCE_PREFIX) for v in out.values()):
            return out
        rows = self.resolve([{"trace_id": trace_id, "span_id": span_id, "attributes": out}])
        return dict(rows[0]["attributes"]) if rows else out
