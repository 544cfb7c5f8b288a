"""BatchingWriter: accepts batches from receiver threads, writes merged batches from one thread.

A batch is flushed when the buffered rows reach `max_batch_rows` or the oldest
buffered span has waited `max_wait_s`.

With a spool (the collector's default), `submit` returns only after the batch
is appended to the spool, so an acknowledged span survives a crash; up to
`max_pending_rows` spans are also kept in memory, beyond that they are read
back from the spool when their turn comes. When the spool is full or its disk
fails, `submit` raises WriterFull and the receiver tells the client to retry.
Without a spool, memory is the only buffer and `max_pending_rows` its bound.

Inserts go in spool order, one at a time, each with a deduplication token that
is recorded in the spool before the insert starts: a retried insert, or one
replayed after a crash, carries the same token and the store keeps one copy.
A failed insert is retried with exponential backoff and jitter until it
succeeds or shutdown's deadline passes; what is unwritten then stays in the
spool for the next start (or, without a spool, is reported lost).

An insert that fails in a way retrying cannot fix (errors.py tells which) is
split: the writer finds the rows that fail, writes the others exactly once
(each part with a token derived from the batch's, so a replay after a crash
stores no part twice) and puts the failing rows in the dead-letter directory
with their reasons (dead_letter.py). One bad row never holds up the rows
queued behind it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.writer.clickhouse import Sink
from spanhouse.collector.writer.dead_letter import DeadLetters
from spanhouse.collector.writer.errors import Kind, RowsNotStorable, cause, classify
from spanhouse.collector.writer.heap import release_freed_heap
from spanhouse.collector.writer.latency import INSERT_BUCKETS_S, Latency
from spanhouse.collector.writer.spool import Position, Spool, SpoolError, decode, encode

log = logging.getLogger("spanhouse.writer")


class WriterFull(RuntimeError):
    """The writer cannot take the batch now; the caller should answer 'retry later' (after `retry_after_s`).

    OTLP exporters wait exactly the RetryInfo delay between their few attempts within their export
    timeout (10 s by default), so it stays short: a long one would make them give up after one retry.
    """

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# Monotonic counters of the writer, named after what they count.
COUNTERS = ("spans_written_total", "batches_written_total", "write_errors_total", "spans_lost_total",
            "spans_refused_total", "calls_paced_total", "pace_timeouts_total", "spans_dead_lettered_total",
            "batches_split_total", "dead_letter_errors_total")


class _Entry:
    __slots__ = ("batch", "rows", "start", "end")

    def __init__(self, batch: SpanBatch | bytes | None, rows: int, start: Position | None,
                 end: Position | None) -> None:
        self.batch = batch  # bytes: as encoded for the spool; None: only in the spool, read back when written
        self.rows = rows
        self.start = start
        self.end = end


class BatchingWriter:
    def __init__(self, sink: Sink, max_batch_rows: int = 20000, max_wait_s: float = 1.0,
                 max_pending_rows: int = 200000, retry_initial_s: float = 0.2, retry_max_s: float = 10.0,
                 spool: Spool | None = None, pace_wait_s: float = 0.0,
                 dead_letters: DeadLetters | None = None, unknown_error_attempts: int = 5) -> None:
        """`dead_letters`: where rows the store refuses for good go; None keeps them in memory only
        (`dead_lettered`), for tests. `unknown_error_attempts`: failures of a kind errors.py does not
        know, while the store answers other queries, after which the batch is treated as permanent."""
        self.sink = sink
        self.dead_letters = dead_letters
        self.unknown_error_attempts = unknown_error_attempts
        self.dead_lettered: list[tuple[SpanBatch, list[str]]] = []
        self.spool = spool
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_s
        self.max_pending_rows = max_pending_rows
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.pace_wait_s = pace_wait_s
        self._queue: deque[_Entry] = deque()
        self._queued_rows = 0  # all queued spans, in memory or only in the spool
        self._memory_rows = 0  # spans held in memory, queued or being written
        self._inflight_rows = 0
        self._oldest: float | None = None
        self._cond = threading.Condition()
        self._append_lock = threading.Lock()
        self._stopping = False
        self._deadline = float("inf")
        self._flush_requested = 0
        self._flushed = 0
        self._replay: tuple[int, str] | None = None  # (entries, token) of an insert a crash interrupted
        self._spool_failing = False
        self._write_failing = False
        self.count = dict.fromkeys(COUNTERS, 0)  # GET /stats shows them with the prefix writer_
        self.insert_latency = Latency(INSERT_BUCKETS_S)  # every insert attempt, failed ones too
        self.spans_left_in_spool = 0
        self._causes_logged: set[str] = set()
        if spool is not None and spool.recovered:
            for record in spool.recovered:
                self._queue.append(_Entry(None, record.rows, record.start, record.end))
                self._queued_rows += record.rows
            intent = spool.recovered_intent
            if intent is not None:
                self._replay = (sum(1 for r in spool.recovered if r.end <= intent.end), intent.token)
            self._oldest = time.monotonic() - max_wait_s  # due at once
        self._thread = threading.Thread(target=self._run, name="spanhouse-writer", daemon=True)
        self._thread.start()

    # --- called by receiver threads ---------------------------------------------

    def submit(self, batch: SpanBatch) -> None:
        """Take ownership of `batch` (spooled before this returns); raises WriterFull when it cannot."""
        if not batch.size:
            return
        self._accept(batch, batch.size)

    def submit_encoded(self, payload: bytes, rows: int) -> None:
        """Like `submit`, for a batch already in the spool's format (`encode`): appended as it is."""
        if rows:
            self._accept(payload, rows)

    def _accept(self, batch: SpanBatch | bytes, rows: int) -> None:
        if self._stopping:
            raise WriterFull("collector is shutting down")
        if self.pace_wait_s > 0:
            self._pace()
        if self.spool is None:
            with self._cond:
                self._check_memory(rows)
                self._enqueue(_Entry(batch, rows, None, None), in_memory=True)
            return
        payload = batch if isinstance(batch, bytes) else encode(batch)
        # Queue order must be spool order: a commit moves the cursor past everything before it.
        with self._append_lock:
            try:
                start, end = self.spool.append(payload, rows)
            except SpoolError as exc:
                with self._cond:
                    self.count["spans_refused_total"] += rows
                    if not self._spool_failing:
                        log.error("refusing spans until the spool can take them: %s", exc)
                        self._spool_failing = True
                raise WriterFull(str(exc)) from None
            with self._cond:
                if self._spool_failing:
                    log.info("spool accepts spans again")
                    self._spool_failing = False
                # Past the memory bound the batch stays only in the spool (read back when its turn comes).
                keep = self._memory_rows + rows <= self.max_pending_rows
                self._enqueue(_Entry(batch if keep else None, rows, start, end), in_memory=keep)

    def _pace(self) -> None:
        """Wait, up to `pace_wait_s`, while 1.5 batches are already queued behind the one being written.

        Receiving threads and the writer share one interpreter: unpaced, the receivers accept faster
        than the writer drains, and the queue (memory, and the delay until spans are queryable) grows
        for as long as the load lasts. Waiting here holds the client's call instead, so clients send at
        the store's pace. When the store is failing, the spool takes the spans at once: waiting would
        not help there.
        """
        # The next batch, and the receivers' head start on the one after it.
        limit = self.max_batch_rows + self.max_batch_rows // 2

        def go_on() -> bool:
            return self._queued_rows < limit or self._write_failing or self._stopping

        with self._cond:
            if go_on():
                return
            self.count["calls_paced_total"] += 1
            if not self._cond.wait_for(go_on, self.pace_wait_s):
                self.count["pace_timeouts_total"] += 1

    def _check_memory(self, rows: int) -> None:
        if self._stopping:
            raise WriterFull("collector is shutting down")
        if self._memory_rows + rows > self.max_pending_rows:
            self.count["spans_refused_total"] += rows
            raise WriterFull(f"{self._memory_rows} spans are waiting to be written "
                             f"(writer.max_pending_rows={self.max_pending_rows})")

    def _enqueue(self, entry: _Entry, in_memory: bool) -> None:
        self._queue.append(entry)
        self._queued_rows += entry.rows
        if in_memory:
            self._memory_rows += entry.rows
        if self._oldest is None:
            # The writer thread may be waiting with no deadline: wake it to start the age clock.
            self._oldest = time.monotonic()
            self._cond.notify_all()
        elif self._queued_rows >= self.max_batch_rows:
            self._cond.notify_all()

    @property
    def pending_rows(self) -> int:
        """Spans accepted and not yet written (in memory or only in the spool)."""
        with self._cond:
            return self._queued_rows + self._inflight_rows

    @property
    def pending_batches(self) -> int:
        """Accepted batches (spool records) not yet written, the one being written included."""
        with self._cond:
            return len(self._queue) + (1 if self._inflight_rows else 0)

    @property
    def stopping(self) -> bool:
        """True once `close` began: the writer takes no more spans."""
        return self._stopping

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
        """Stop accepting, write what is pending within `timeout_s`; returns spans lost.

        With a spool nothing accepted is lost: what is unwritten at the deadline stays
        in the spool (counted in `spans_left_in_spool`) and is written at the next start.
        """
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify_all()
        self._thread.join(timeout_s + 1.0)
        with self._cond:
            unwritten = self._queued_rows + self._inflight_rows
            if self.spool is not None:
                self.spool.close()
                self.spans_left_in_spool = unwritten
                if unwritten:
                    log.warning("shutdown: %d accepted spans are not written yet; they stay in the spool %s "
                                "and are written when the collector starts again", unwritten, self.spool.directory)
                return 0
            if unwritten:
                self.count["spans_lost_total"] += unwritten
                log.error("shutdown: %d accepted spans could not be written and are lost", unwritten)
            return unwritten

    def counters(self) -> dict[str, int]:
        out = {**self.count, "spans_pending": self.pending_rows, "spans_in_memory": self._memory_rows,
               "spans_left_in_spool": self.spans_left_in_spool, "batches_pending": self.pending_batches}
        if self.spool is not None:
            out.update(self.spool.counters())
        return out

    # --- the writer thread -------------------------------------------------------

    def _due(self) -> bool:
        if not self._queue:
            return False
        if self._stopping or self._flush_requested > self._flushed or self._replay is not None:
            return True
        if self._queued_rows >= self.max_batch_rows:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.max_wait_s

    def _take(self) -> tuple[list[_Entry], str]:
        entries: list[_Entry] = []
        rows = 0
        if self._replay is not None:
            count, token = self._replay
            self._replay = None
            for _ in range(min(count, len(self._queue))):
                entries.append(self._queue.popleft())
                rows += entries[-1].rows
        else:
            token = uuid.uuid4().hex
            while self._queue and (not entries or rows + self._queue[0].rows <= self.max_batch_rows):
                entries.append(self._queue.popleft())
                rows += entries[-1].rows
        self._queued_rows -= rows
        self._inflight_rows = rows
        self._oldest = time.monotonic() if self._queue else None
        return entries, token

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
                entries, token = self._take()
                self._cond.notify_all()  # receivers waiting for the queue to shrink (_pace)
            written = self._write_entries(entries, token)
            with self._cond:
                if written:
                    self._inflight_rows = 0
                    self._memory_rows -= sum(e.rows for e in entries if e.batch is not None)
                    self.count["spans_written_total"] += sum(e.rows for e in entries)
                    self.count["batches_written_total"] += 1
                    self._cond.notify_all()
                else:  # deadline passed during shutdown: keep the count honest
                    self._queue.extendleft(reversed(entries))
                    self._queued_rows += self._inflight_rows
                    self._inflight_rows = 0
                    return
            # The batch's spans are stored and its Python objects freed with `entries`: give their pages back
            # before the next batch, its Arrow columns and its insert grow the process again.
            del entries
            release_freed_heap()

    def _write_entries(self, entries: list[_Entry], token: str) -> bool:
        delay = self.retry_initial_s
        batch: SpanBatch | None = None
        began = False
        unknown_failures = 0
        while True:
            inserting = False
            try:
                if batch is None:
                    batch = SpanBatch.concat([self._batch_of(e) for e in entries])
                if self.spool is not None and not began:
                    last = entries[-1].end
                    assert last is not None
                    self.spool.begin(last, token)
                    began = True
                inserting = True
                try:
                    self._timed_write(batch, token)
                except Exception as exc:
                    if not self._permanent(exc, unknown_failures):
                        raise
                    if not self._settle(batch, token, exc):
                        return False  # shutdown's deadline: the batch stays in the spool, replayed with its token
                inserting = False
                if self.spool is not None:
                    last = entries[-1].end
                    assert last is not None
                    self.spool.commit(last)
                if self._write_failing:
                    with self._cond:
                        self._write_failing = False
                return True
            except Exception as exc:  # any other failure is retried; shutdown's deadline bounds it
                if inserting and classify(exc) is Kind.UNKNOWN:
                    unknown_failures += 1
                with self._cond:
                    self._write_failing = True
                    self._cond.notify_all()  # paced receivers stop waiting
                self.count["write_errors_total"] += 1
                rows = sum(e.rows for e in entries)
                log.warning("insert of %d spans failed, retrying in %.1fs: %s", rows, delay, exc)
            if not self._backoff(delay):
                return False
            delay = min(delay * 2, self.retry_max_s)

    def _timed_write(self, batch: SpanBatch, token: str) -> None:
        began = time.monotonic()
        try:
            self.sink.write(batch, token)
        finally:
            self.insert_latency.observe(time.monotonic() - began)

    def _backoff(self, delay: float) -> bool:
        """Wait about `delay` seconds (jittered); False when shutdown's deadline has passed."""
        with self._cond:
            if self._stopping and time.monotonic() >= self._deadline:
                return False
            self._cond.wait(delay * random.uniform(0.5, 1.5))
            return not (self._stopping and time.monotonic() >= self._deadline)

    def _permanent(self, exc: Exception, unknown_failures: int) -> bool:
        """True when retrying the insert that raised `exc` cannot succeed."""
        kind = classify(exc)
        if kind is Kind.UNKNOWN and unknown_failures + 1 >= self.unknown_error_attempts:
            # The same batch keeps failing in a way no list names: if the store answers other
            # queries, the batch is the problem, not the store.
            return self._store_answers()
        return kind is Kind.PERMANENT

    def _store_answers(self) -> bool:
        probe = getattr(self.sink, "probe", None)
        if probe is None:
            return True
        try:
            probe()
        except Exception:
            return False
        return True

    def _settle(self, batch: SpanBatch, token: str, first: Exception) -> bool:
        """Write every row of `batch` that the store takes; dead-letter the others. False on shutdown's deadline.

        Halves that fail for good are halved again down to single rows. Each part carries a token
        derived from the batch's token and its place in the split, so the split of a replayed batch
        (same records, same token) produces the same parts and the store keeps each once.
        """
        self.count["batches_split_total"] += 1
        self.count["write_errors_total"] += 1
        reasons: dict[int, str] = {}
        work: list[tuple[list[int], str, Exception | None]] = [(list(range(batch.size)), "", first)]
        while work:
            rows, label, failure = work.pop()
            if failure is None:
                failure = self._write_part(batch.take(rows), f"{token}.{label}")
                if failure is _STOPPED:
                    return False
                if failure is None:
                    continue
            self._log_cause(failure)
            if isinstance(failure, RowsNotStorable):
                # The sink named the rows (nothing was inserted): set them aside, write the rest as one part.
                named = {rows[i]: reason for i, reason in failure.rows.items() if i < len(rows)}
                reasons.update(named)
                rest = [r for r in rows if r not in named]
                if rest and named:
                    work.append((rest, label + "v", None))
                    continue
                if not named:  # names no row of this part: fall back to halving
                    failure = RuntimeError(str(failure))
                else:
                    continue
            if len(rows) == 1:
                reasons[rows[0]] = _describe(failure)
                continue
            mid = len(rows) // 2
            work.append((rows[mid:], label + "b", None))
            work.append((rows[:mid], label + "a", None))
        if reasons:
            order = sorted(reasons)
            if not self._keep_dead_letters(token, batch.take(order), [reasons[i] for i in order]):
                return False
        return True

    def _write_part(self, part: SpanBatch, token: str) -> Exception | None:
        """Insert `part`, retrying transient failures; the permanent failure, None when written, or _STOPPED."""
        delay = self.retry_initial_s
        while True:
            try:
                self._timed_write(part, token)
                return None
            except Exception as exc:
                if classify(exc) is not Kind.TRANSIENT:
                    return exc
                self.count["write_errors_total"] += 1
                log.warning("insert of %d spans failed, retrying in %.1fs: %s", part.size, delay, exc)
            if not self._backoff(delay):
                return _STOPPED
            delay = min(delay * 2, self.retry_max_s)

    def _keep_dead_letters(self, token: str, rows: SpanBatch, reasons: list[str]) -> bool:
        """Persist the refused rows before the batch is committed; False on shutdown's deadline."""
        delay = self.retry_initial_s
        while True:
            try:
                if self.dead_letters is None:
                    self.dead_lettered.append((rows, reasons))
                    where = "memory"
                else:
                    where = str(self.dead_letters.write(token, rows, reasons))
                break
            except Exception as exc:  # a full disk: the batch waits, like an insert into a store that is down
                self.count["dead_letter_errors_total"] += 1
                log.error("cannot write %d dead-lettered spans, retrying in %.1fs: %s", rows.size, delay, exc)
            if not self._backoff(delay):
                return False
            delay = min(delay * 2, self.retry_max_s)
        self.count["spans_dead_lettered_total"] += rows.size
        log.warning("%d spans the store refused for good were set aside in %s", rows.size, where)
        return True

    def _log_cause(self, exc: Exception) -> None:
        key = cause(exc)
        if key not in self._causes_logged:
            self._causes_logged.add(key)
            log.error("the store refuses some spans for good (%s): the other spans of their batch are written, "
                      "these go to the dead-letter directory (logged once per cause; see "
                      "writer_spans_dead_lettered_total): %s", key, _describe(exc))

    def _batch_of(self, entry: _Entry) -> SpanBatch:
        if isinstance(entry.batch, SpanBatch):
            return entry.batch
        if entry.batch is not None:
            return decode(entry.batch, entry.rows)
        assert self.spool is not None and entry.start is not None
        return self.spool.read(entry.start)


class _Stopped(Exception):
    """Shutdown's deadline passed during a split."""


_STOPPED = _Stopped()


def _describe(exc: Exception) -> str:
    """The reason stored with a dead-lettered row: the error's first line, capped."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]
