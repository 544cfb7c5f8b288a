"""GatedSink: a sink wrapper that makes the store behind it unreachable or slow, for fault tests and the soak.

While closed, every write first opens a TCP connection to a loopback port nothing
listens on, as a client of a ClickHouse server that is down does, and fails with
that ConnectionRefusedError; `delay_s` makes every write take that much longer.
The writer, spool and retries in front of it are the production ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.component import Sink


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatedSink:
    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.closed = False
        self.delay_s = 0.0
        self.port = closed_port()
        self.attempts = 0
        self.inserts = 0
        self._cond = threading.Condition()

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        with self._cond:
            self.attempts += 1
            self._cond.notify_all()
        if self.closed:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
        if self.delay_s:
            time.sleep(self.delay_s)  # a slow store: the insert takes this long
        self.inner.write(batch, token)
        with self._cond:
            self.inserts += 1
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[GatedSink], bool], timeout_s: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout_s)
