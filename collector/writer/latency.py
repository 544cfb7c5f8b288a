"""Latency: a histogram of durations the writer measures (its inserts), read by GET /metrics."""

from __future__ import annotations

import bisect
import threading

# Upper bounds (seconds) of the insert latency histogram; an embedded insert takes milliseconds, a remote
# server's up to its timeouts.
INSERT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Latency:
    """A histogram of durations: a count per bucket of `bounds` (and one above the last), and their sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """(count per bucket, the last above every bound; sum of the durations)."""
        with self._lock:
            return list(self._counts), self._sum
