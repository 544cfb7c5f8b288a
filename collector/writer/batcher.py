"""BatchingWriter: accepts batches from receiver threads, writes merged batches from one thread.

A batch is flushed when the buffered rows reach `max_batch_rows` or the oldest
buffered span has waited `max_wait_s`. Memory is bounded by `max_pending_rows`:
past it `submit` raises WriterFull and the receiver tells the client to retry.

A failed insert is kept at the head of the queue and retried with exponential
backoff and jitter; while it fails, pending rows grow until backpressure starts.
Spans still unwritten when shutdown's deadline passes are reported as lost.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.writer.clickhouse import Sink

log = logging.getLogger("spanhouse.writer")


class WriterFull(RuntimeError):
    """The writer holds `max_pending_rows` already; the caller should answer 'retry later'."""


class BatchingWriter:
    def __init__(self, sink: Sink, max_batch_rows: int = 20000, max_wait_s: float = 1.0,
                 max_pending_rows: int = 200000, retry_initial_s: float = 0.2, retry_max_s: float = 10.0) -> None:
        self.sink = sink
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_s
        self.max_pending_rows = max_pending_rows
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._queue: deque[SpanBatch] = deque()
        self._queued_rows = 0
        self._inflight_rows = 0
        self._oldest: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._deadline = float("inf")
        self._flush_requested = 0
        self._flushed = 0
        self.spans_written_total = 0
        self.batches_written_total = 0
        self.write_errors_total = 0
        self.spans_lost_total = 0
        self._thread = threading.Thread(target=self._run, name="spanhouse-writer", daemon=True)
        self._thread.start()

    # --- called by receiver threads ---------------------------------------------

    def submit(self, batch: SpanBatch) -> None:
        """Take ownership of `batch`; raises WriterFull when memory is at its bound."""
        if not batch.size:
            return
        with self._cond:
            if self._stopping:
                raise WriterFull("collector is shutting down")
            if self._queued_rows + self._inflight_rows + batch.size > self.max_pending_rows:
                raise WriterFull(
                    f"{self._queued_rows + self._inflight_rows} spans are waiting to be written "
                    f"(writer.max_pending_rows={self.max_pending_rows})"
                )
            self._queue.append(batch)
            self._queued_rows += batch.size
            if self._oldest is None:
                # The writer thread may be waiting with no deadline: wake it to start the age clock.
                self._oldest = time.monotonic()
                self._cond.notify_all()
            elif self._queued_rows >= self.max_batch_rows:
                self._cond.notify_all()

    @property
    def pending_rows(self) -> int:
        with self._cond:
            return self._queued_rows + self._inflight_rows

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything submitted so far; True when it was written within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flush_requested += 1
            ticket = self._flush_requested
            self._cond.notify_all()
            while self._flushed < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout_s: float = 30.0) -> int:
        """Stop accepting, write what is pending within `timeout_s`; returns spans left unwritten."""
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        self._thread.join(timeout_s + 1.0)
        with self._cond:
            lost = self._queued_rows + self._inflight_rows
            if lost:
                self.spans_lost_total += lost
                log.error("shutdown: %d accepted spans could not be written and are lost", lost)
            return lost

    def counters(self) -> dict[str, int]:
        return {
            "spans_written_total": self.spans_written_total,
            "batches_written_total": self.batches_written_total,
            "write_errors_total": self.write_errors_total,
            "spans_lost_total": self.spans_lost_total,
            "spans_pending": self.pending_rows,
        }

    # --- the writer thread -------------------------------------------------------

    def _due(self) -> bool:
        if not self._queue:
            return False
        if self._stopping or self._flush_requested > self._flushed:
            return True
        if self._queued_rows >= self.max_batch_rows:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.max_wait_s

    def _take(self) -> SpanBatch:
        parts: list[SpanBatch] = []
        rows = 0
        while self._queue and (not parts or rows + self._queue[0].size <= self.max_batch_rows):
            part = self._queue.popleft()
            parts.append(part)
            rows += part.size
        self._queued_rows -= rows
        self._inflight_rows = rows
        self._oldest = time.monotonic() if self._queue else None
        return SpanBatch.concat(parts)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._flush_requested > self._flushed and not self._queue:
                        self._flushed = self._flush_requested
                        self._cond.notify_all()
                        continue
                    if self._stopping:
                        return
                    wait = None if self._oldest is None else max(0.0, self.max_wait_s - (time.monotonic() - self._oldest))
                    self._cond.wait(wait)
                batch = self._take()
            if self._write_with_retry(batch):
                with self._cond:
                    self._inflight_rows = 0
                    self.spans_written_total += batch.size
                    self.batches_written_total += 1
                    self._cond.notify_all()
            else:
                with self._cond:  # deadline passed during shutdown: keep the count honest
                    self._queue.appendleft(batch)
                    self._queued_rows += batch.size
                    self._inflight_rows = 0
                    return

    def _write_with_retry(self, batch: SpanBatch) -> bool:
        delay = self.retry_initial_s
        while True:
            try:
                self.sink.write(batch)
                return True
            except Exception as exc:  # any store failure is retried; shutdown's deadline bounds it
                self.write_errors_total += 1
                log.warning("insert of %d spans failed, retrying in %.1fs: %s", batch.size, delay, exc)
            with self._cond:
                if self._stopping and time.monotonic() >= self._deadline:
                    return False
                self._cond.wait(delay * random.uniform(0.5, 1.5))
                if self._stopping and time.monotonic() >= self._deadline:
                    return False
            delay = min(delay * 2, self.retry_max_s)
