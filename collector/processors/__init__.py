"""Processors: each takes a SpanBatch and returns a SpanBatch.

Order in the pipeline is fixed (see ARCHITECTURE.md): normalize -> redact ->
price -> sample. A processor holds its configuration and its counters; it
keeps no other state between batches unless its job needs it (sampling).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from spanhouse.collector.batch import SpanBatch


@runtime_checkable
class Processor(Protocol):
    name: str

    def process(self, batch: SpanBatch) -> SpanBatch:
        """Return the batch to pass on (the same object, modified, or a new one)."""
        ...

    def counters(self) -> dict[str, int]:
        """Monotonic counters, named `<thing>_total`, for the collector's stats."""
        ...
