"""BatchingWriter against the in-memory sink: flush by size and age, backpressure, retries, shutdown."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.writer import BatchingWriter, InMemorySink, WriterFull

from durability_helpers import wait_until

_ids = itertools.count()


def rows(n: int) -> SpanBatch:
    """A batch of `n` spans with unique ids (the only column the writer's tests look at)."""
    return SpanBatch({"SpanId": [f"{next(_ids):016x}" for _ in range(n)]}, n)


class SignallingSink(InMemorySink):
    """InMemorySink that lets a test wait for writes instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Condition()
        self.write_times: list[float] = []

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        super().write(batch, token)
        with self.written:
            self.write_times.append(time.monotonic())
            self.written.notify_all()

    def wait_for_batches(self, count: int, timeout_s: float = 10.0) -> bool:
        with self.written:
            return self.written.wait_for(lambda: len(self.batches) >= count, timeout_s)

    def span_ids(self) -> list[str]:
        return [s["SpanId"] for s in self.spans()]


@pytest.fixture
def sink() -> SignallingSink:
    return SignallingSink()


@pytest.fixture
def writers() -> Iterator[list[BatchingWriter]]:
    made: list[BatchingWriter] = []
    yield made
    for writer in made:
        writer.sink.fail_next = 0  # type: ignore[attr-defined]
        writer.close(5.0)


def make(writers: list[BatchingWriter], sink: InMemorySink, **kwargs: float) -> BatchingWriter:
    kwargs.setdefault("max_wait_s", 3600.0)  # no age flush unless a test asks for one
    kwargs.setdefault("retry_initial_s", 0.01)
    writer = BatchingWriter(sink, **kwargs)  # type: ignore[arg-type]
    writers.append(writer)
    return writer


def test_flushes_one_merged_batch_when_max_batch_rows_is_reached(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_batch_rows=5)
    submitted = [rows(2), rows(2)]
    for batch in submitted:
        writer.submit(batch)
    assert writer.pending_rows == 4  # below the size: nothing due yet (age flush is an hour away)
    submitted.append(rows(1))
    writer.submit(submitted[-1])

    assert sink.wait_for_batches(1)
    assert [b.size for b in sink.batches] == [5]
    assert sink.span_ids() == [i for b in submitted for i in b["SpanId"]]
    assert writer.pending_rows == 0


def test_flushes_by_age_after_max_wait_s(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_batch_rows=1000, max_wait_s=0.1)
    submitted_at = time.monotonic()
    writer.submit(rows(3))

    assert sink.wait_for_batches(1)
    assert sink.write_times[0] - submitted_at >= 0.1 * 0.9
    assert [b.size for b in sink.batches] == [3]


def test_flush_writes_everything_submitted_so_far(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_batch_rows=1000)
    batches = [rows(2), rows(3)]
    for batch in batches:
        writer.submit(batch)
    assert writer.flush(10.0)
    assert sink.span_ids() == [i for b in batches for i in b["SpanId"]]
    assert writer.counters()["spans_written_total"] == 5
    assert writer.flush(10.0)  # nothing pending: returns at once, writes nothing more
    assert len(sink.batches) == 1


def test_batches_larger_than_max_batch_rows_are_not_split_or_lost(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_batch_rows=4, max_pending_rows=100)
    batches = [rows(3), rows(3), rows(7)]
    for batch in batches:
        writer.submit(batch)
    assert writer.flush(10.0)
    assert sink.span_ids() == [i for b in batches for i in b["SpanId"]]
    assert sorted(b.size for b in sink.batches) == [3, 3, 7]  # merged only up to max_batch_rows


def test_empty_batch_is_ignored(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_pending_rows=1, max_batch_rows=1)
    writer.submit(SpanBatch.empty())
    assert writer.pending_rows == 0
    assert writer.flush(5.0)
    assert sink.batches == []


def test_submit_raises_writer_full_at_max_pending_rows(writers: list, sink: SignallingSink) -> None:
    writer = make(writers, sink, max_batch_rows=100, max_pending_rows=5)
    writer.submit(rows(3))
    writer.submit(rows(2))
    with pytest.raises(WriterFull, match=r"5 spans are waiting.*max_pending_rows=5"):
        writer.submit(rows(1))
    assert writer.pending_rows == 5

    assert writer.flush(10.0)
    writer.submit(rows(1))  # room again once written
    assert writer.pending_rows == 1


def test_rows_of_a_failing_insert_count_against_max_pending_rows(writers: list, sink: SignallingSink) -> None:
    sink.fail_next = 1_000_000
    writer = make(writers, sink, max_batch_rows=2, max_pending_rows=4)
    writer.submit(rows(2))
    writer.submit(rows(2))
    with pytest.raises(WriterFull):
        writer.submit(rows(1))
    assert not writer.flush(0.2)  # still failing: flush reports it did not finish
    assert writer.counters()["write_errors_total"] >= 1


def test_failed_insert_is_retried_without_loss_or_duplication(writers: list, sink: SignallingSink) -> None:
    sink.fail_next = 3
    writer = make(writers, sink, max_batch_rows=1000)
    batches = [rows(2), rows(4)]
    for batch in batches:
        writer.submit(batch)

    assert writer.flush(10.0)
    assert sink.span_ids() == [i for b in batches for i in b["SpanId"]]
    counters = writer.counters()
    assert counters["write_errors_total"] == 3
    assert counters["spans_written_total"] == 6
    assert counters["spans_pending"] == 0


def test_close_writes_pending_rows_and_returns_zero_lost(sink: SignallingSink) -> None:
    writer = BatchingWriter(sink, max_batch_rows=1000, max_wait_s=3600.0)
    batch = rows(7)
    writer.submit(batch)
    assert writer.close(10.0) == 0
    assert sink.span_ids() == batch["SpanId"]
    with pytest.raises(WriterFull, match="shutting down"):
        writer.submit(rows(1))


def test_close_reports_lost_spans_when_the_sink_keeps_failing(sink: SignallingSink) -> None:
    sink.fail_next = 1_000_000
    writer = BatchingWriter(sink, max_batch_rows=3, max_wait_s=3600.0, retry_initial_s=0.01)
    writer.submit(rows(3))
    writer.submit(rows(2))

    started = time.monotonic()
    lost = writer.close(0.3)

    assert lost == 5
    assert time.monotonic() - started < 5.0  # the deadline bounds the retries
    assert writer.counters()["spans_lost_total"] == 5
    assert sink.batches == []


class BlockingSink(SignallingSink):
    """A sink whose writes wait for the test to open the gate: a store slower than the receivers."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super().write(batch, token)


def test_a_receiver_waits_while_the_queue_is_ahead_of_a_slow_store(writers: list) -> None:
    sink = BlockingSink()
    writer = make(writers, sink, max_batch_rows=10, pace_wait_s=30.0)
    writer.submit(rows(10))  # due at once: the writer takes it and blocks in the sink
    assert sink.entered.wait(10)
    writer.submit(rows(10))
    writer.submit(rows(5))  # 15 queued behind the batch being written: the next caller waits
    done = threading.Event()
    late = rows(3)
    caller = threading.Thread(target=lambda: (writer.submit(late), done.set()))
    caller.start()
    wait_until(lambda: writer.counters()["calls_paced_total"] == 1, 10.0, "the call to be held")
    assert not done.is_set()  # held, not refused and not queued
    assert writer.pending_rows == 25

    sink.gate.set()  # the store catches up: the waiting call goes through
    assert done.wait(10)
    caller.join()
    assert writer.flush(10.0)
    assert len(sink.span_ids()) == 28 == len(set(sink.span_ids()))
    assert writer.counters()["pace_timeouts_total"] == 0


def test_a_paced_receiver_gives_up_waiting_after_pace_wait_s_and_loses_nothing(writers: list) -> None:
    sink = BlockingSink()
    writer = make(writers, sink, max_batch_rows=10, pace_wait_s=0.05)
    writer.submit(rows(10))
    assert sink.entered.wait(10)
    writer.submit(rows(15))
    writer.submit(rows(2))  # waits 0.05 s, then is accepted as before pacing
    counters = writer.counters()
    assert (counters["calls_paced_total"], counters["pace_timeouts_total"]) == (1, 1)
    assert writer.pending_rows == 27
    sink.gate.set()
    assert writer.flush(10.0)
    assert len(sink.span_ids()) == 27


def test_receivers_do_not_wait_for_a_failing_store(writers: list, sink: SignallingSink) -> None:
    sink.fail_next = 1_000_000
    writer = make(writers, sink, max_batch_rows=10, pace_wait_s=30.0)
    writer.submit(rows(10))
    wait_until(lambda: writer.counters()["write_errors_total"] >= 1, 10.0, "a failed insert")
    writer.submit(rows(15))
    writer.submit(rows(1))  # would wait if the store were only slow; failing, the queue takes it at once
    assert writer.counters()["calls_paced_total"] == 0
    assert writer.pending_rows == 26
    sink.fail_next = 0
    assert writer.flush(10.0)
    assert len(sink.span_ids()) == 26
