"""Spans one receiver accepted and refused: what otelcol_receiver_{accepted,refused}_spans_total report.

Accepted: spans the pipeline took (the client gets OK). Refused: spans of requests answered "retry later"
or failed inside the collector (the client may send them again, and they count again), and spans a
request carried that were rejected as invalid (partial success).
"""

from __future__ import annotations

import threading


class SpanCounts:
    def __init__(self) -> None:
        self.accepted_total = 0
        self.refused_total = 0
        self._lock = threading.Lock()  # receiver threads count at once; `+=` on an attribute is not atomic

    def accepted(self, spans: int, rejected: int) -> None:
        with self._lock:
            self.accepted_total += spans
            self.refused_total += rejected

    def refused(self, spans: int) -> None:
        with self._lock:
            self.refused_total += spans
