"""Counting refused calls, logging each reason at most once per interval.

A misconfigured client retries fast; one log line per reason per interval is
enough to notice it, and the counter keeps the full number.
"""

from __future__ import annotations

import logging
import threading
import time

REFUSAL_LOG_INTERVAL_S = 10.0


class RefusalLog:
    def __init__(self, log: logging.Logger, what: str, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self.log = log
        self.what = what
        self.interval_s = interval_s
        self.total = 0
        self._lock = threading.Lock()
        self._logged_at: dict[str, float] = {}  # reason -> last time it was logged

    def refused(self, peer: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            last = self._logged_at.get(reason)
            if last is not None and now - last < self.interval_s:
                return
            self._logged_at[reason] = now
            total = self.total
        self.log.warning("refused %s from %s: %s (%d refused calls so far; this reason is logged at most "
                         "every %.0f s)", self.what, peer, reason, total, self.interval_s)
