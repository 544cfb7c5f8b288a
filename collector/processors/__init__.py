"""Processors: each takes a SpanBatch and returns a SpanBatch.

Their order and where each may run are in registry.py (see ARCHITECTURE.md): normalize ->
redact -> price -> sample. A processor holds its configuration and its counters; it keeps no
other state between batches unless its job needs it (sampling, a HoldingProcessor).
"""

from spanhouse.collector.component import HoldingProcessor, Processor

__all__ = ["HoldingProcessor", "Processor"]
