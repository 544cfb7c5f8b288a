"""The disk spool and the writer on it: replay in order after a restart, corrupt and torn records,
size limit and disk-full backpressure, and idempotent retries in every ClickHouse table."""

from __future__ import annotations

import errno
import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors import registry
from spanhouse.collector.config import Config
from spanhouse.collector.receiver.decode import Decoder
from spanhouse.collector.store import Store
from spanhouse.collector.writer import BatchingWriter, ClickHouseSink, InMemorySink, WriterFull
from spanhouse.collector.writer.spool import Spool, SpoolLocked

from durability_helpers import genai_request, table_counts

_ids = itertools.count()


def rows(n: int, pad: int = 0) -> SpanBatch:
    """`n` spans with unique ids; `pad` characters of attribute text per span to make records big."""
    ids = [f"{next(_ids):016x}" for _ in range(n)]
    return SpanBatch({"SpanId": ids, "SpanAttributes": [{"text": "x" * pad} for _ in ids]}, n)


def ids_of(batches: list[SpanBatch]) -> list[str]:
    return [i for b in batches for i in b["SpanId"]]


class Writers:
    """Writers and spools made by a test, closed at its end (a spool directory is locked while open)."""

    def __init__(self) -> None:
        self.made: list[BatchingWriter] = []

    def make(self, sink: InMemorySink, spool: Spool, **kwargs: float) -> BatchingWriter:
        kwargs.setdefault("max_wait_s", 0.05)
        kwargs.setdefault("retry_initial_s", 0.01)
        kwargs.setdefault("retry_max_s", 0.05)
        writer = BatchingWriter(sink, spool=spool, **kwargs)  # type: ignore[arg-type]
        self.made.append(writer)
        return writer

    def close(self, writer: BatchingWriter, timeout_s: float = 0.5) -> int:
        self.made.remove(writer)
        return writer.close(timeout_s)


@pytest.fixture
def writers() -> Iterator[Writers]:
    made = Writers()
    yield made
    for writer in list(made.made):
        writer.sink.fail_next = 0  # type: ignore[attr-defined]
        writer.close(5.0)


def failing_sink() -> InMemorySink:
    sink = InMemorySink()
    sink.fail_next = 10**9
    return sink


@pytest.mark.parametrize("fsync", [False, True])
def test_spans_unwritten_at_shutdown_stay_in_the_spool_and_are_written_in_order_at_the_next_start(
        tmp_path: Path, writers: Writers, fsync: bool) -> None:
    down = failing_sink()
    writer = writers.make(down, Spool(tmp_path / "spool", 64 << 20, fsync=fsync), max_batch_rows=4)
    sent = [rows(3), rows(2), rows(5), rows(1)]
    for batch in sent:
        writer.submit(batch)
    assert writers.close(writer) == 0  # nothing lost...
    assert writer.spans_left_in_spool == 11  # ...everything left in the spool
    assert down.batches == []

    up = InMemorySink()
    restarted = writers.make(up, Spool(tmp_path / "spool", 64 << 20), max_batch_rows=4)
    assert restarted.flush(10.0)
    assert [s["SpanId"] for s in up.spans()] == ids_of(sent)
    assert writers.close(restarted) == 0 and restarted.spans_left_in_spool == 0

    again = InMemorySink()
    third = writers.make(again, Spool(tmp_path / "spool", 64 << 20))
    assert third.flush(10.0)
    assert again.batches == []  # written once: nothing replayed a second time


def test_a_second_collector_cannot_use_a_spool_in_use(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool", 1 << 20)
    try:
        with pytest.raises(SpoolLocked, match="in use by another collector"):
            Spool(tmp_path / "spool", 1 << 20)
    finally:
        first.close()


def _segment(spool_dir: Path) -> Path:
    (segment,) = sorted(spool_dir.glob("*.seg"))
    return segment


def test_a_corrupt_record_is_quarantined_and_reported_and_the_others_are_replayed(
        tmp_path: Path, writers: Writers, caplog: pytest.LogCaptureFixture) -> None:
    spool_dir = tmp_path / "spool"
    writer = writers.make(failing_sink(), Spool(spool_dir, 64 << 20))
    sent = [rows(2, pad=100), rows(3, pad=100), rows(4, pad=100)]
    for batch in sent:
        writer.submit(batch)
    writers.close(writer)

    segment = _segment(spool_dir)
    data = bytearray(segment.read_bytes())
    second_record = data.index(b"SHS1", 1)
    data[second_record + 40] ^= 0xFF  # one flipped byte inside the second record's payload
    segment.write_bytes(bytes(data))

    sink = InMemorySink()
    with caplog.at_level(logging.ERROR, logger="spanhouse.spool"):
        restarted = writers.make(sink, Spool(spool_dir, 64 << 20))
    assert restarted.flush(10.0)
    assert [s["SpanId"] for s in sink.spans()] == ids_of([sent[0], sent[2]])
    counters = restarted.counters()
    assert counters["spool_records_quarantined_total"] == 1
    (bad,) = (spool_dir / "quarantine").iterdir()
    assert bad.read_bytes() == bytes(data[second_record:data.index(b"SHS1", second_record + 1)])
    assert "fail their checksum" in caplog.text and bad.name in caplog.text


def test_a_torn_record_at_the_end_is_set_aside_not_replayed(tmp_path: Path, writers: Writers) -> None:
    spool_dir = tmp_path / "spool"
    writer = writers.make(failing_sink(), Spool(spool_dir, 64 << 20))
    sent = [rows(2, pad=50), rows(2, pad=50)]
    for batch in sent:
        writer.submit(batch)
    writers.close(writer)
    segment = _segment(spool_dir)
    segment.write_bytes(segment.read_bytes()[:-30])  # the last write cut short, as by a crash mid-write

    sink = InMemorySink()
    restarted = writers.make(sink, Spool(spool_dir, 64 << 20))
    assert restarted.flush(10.0)
    assert [s["SpanId"] for s in sink.spans()] == ids_of(sent[:1])
    assert restarted.counters()["spool_records_quarantined_total"] == 1


def test_a_full_spool_refuses_with_retry_and_accepts_again_once_the_store_caught_up(
        tmp_path: Path, writers: Writers) -> None:
    sink = failing_sink()
    writer = writers.make(sink, Spool(tmp_path / "spool", 3 << 20), max_batch_rows=10, max_pending_rows=10)
    accepted: list[SpanBatch] = []
    with pytest.raises(WriterFull, match=r"spool\.max_size_mib=3") as refused:
        for _ in range(1000):
            batch = rows(5, pad=20_000)  # ~100 KB per record
            writer.submit(batch)
            accepted.append(batch)
    assert 20 < len(accepted) < 40
    assert refused.value.retry_after_s > 0
    assert writer.counters()["spans_in_memory"] <= 10  # memory stays bounded: the rest waits on disk only

    sink.fail_next = 0
    assert writer.flush(30.0)
    writer.submit(late := rows(5, pad=20_000))  # space again: the written segments were removed
    assert writer.flush(30.0)
    assert [s["SpanId"] for s in sink.spans()] == ids_of(accepted + [late])


def test_disk_full_while_appending_refuses_clearly_leaves_no_partial_record_and_recovers(
        tmp_path: Path, writers: Writers, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool", 64 << 20)
    sink = InMemorySink()
    writer = writers.make(sink, spool)
    write = spool._write
    disk_full = False

    def write_until_full(fd: int, data: bytes) -> None:
        """The file-write seam as on a full disk: part of the record lands, then ENOSPC."""
        if disk_full:
            write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        write(fd, data)

    spool._write = write_until_full  # type: ignore[method-assign]
    writer.submit(first := rows(2))
    disk_full = True
    with caplog.at_level(logging.ERROR, logger="spanhouse.writer"):
        with pytest.raises(WriterFull, match="cannot write to spool .*: disk full"):
            writer.submit(rows(2))
        with pytest.raises(WriterFull, match="disk full"):
            writer.submit(rows(2))
    assert caplog.text.count("refusing spans until the spool can take them") == 1  # logged once, not per request
    assert writer.counters()["spool_write_errors_total"] == 2
    disk_full = False
    writer.submit(second := rows(3))
    assert writer.flush(10.0)
    assert [s["SpanId"] for s in sink.spans()] == ids_of([first, second])
    writers.close(writer, 5.0)

    replayed = InMemorySink()  # the spool holds no torn bytes: nothing to quarantine, nothing replayed
    again = writers.make(replayed, Spool(tmp_path / "spool", 64 << 20))
    assert again.flush(10.0)
    assert replayed.batches == [] and again.counters()["spool_records_quarantined_total"] == 0


# --- idempotent inserts in the real embedded ClickHouse ------------------------------------------------


def genai_batch(spans: int) -> SpanBatch:
    payload, _ = genai_request(spans)
    batch = Decoder(1 << 20).decode_bytes(payload, "default").batch
    for processor in registry.build(Config()).all:
        batch = processor.process(batch)
    return batch


class InsertThenFail:
    """Stores the batch, then reports a failure, as a timeout after the server committed does."""

    def __init__(self, store: Store, failures: int) -> None:
        self.inner = ClickHouseSink(store)
        self.failures = failures

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        self.inner.write(batch, token)
        if self.failures:
            self.failures -= 1
            raise TimeoutError("read timed out after the insert was sent")


def test_a_retried_batch_is_stored_once_in_every_table_including_the_rollups(
        tmp_path: Path, store: Store, writers: Writers) -> None:
    sink = InsertThenFail(store, failures=3)
    writer = writers.make(sink, Spool(tmp_path / "spool", 64 << 20))  # type: ignore[arg-type]
    first, second = genai_batch(40), genai_batch(25)
    writer.submit(first)
    assert writer.flush(30.0)
    writer.submit(second)
    assert writer.flush(30.0)
    assert writer.counters()["write_errors_total"] == 3
    counts = table_counts(store.query_rows)
    assert counts == dict.fromkeys(counts, 65), counts


def test_every_table_an_insert_reaches_keeps_a_deduplication_window(store: Store) -> None:
    """spans, genai_calls and the targets of every materialized view reading them: else retries double rows."""
    reached = {"spans", "genai_calls"}
    views = store.query_rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() "
        "AND engine = 'MaterializedView'")
    changed = True
    while changed:
        changed = False
        for _, ddl in views:
            target = re.search(r"\bTO\s+(?:\S+\.)?`?(\w+)`?", ddl)
            source = re.search(r"\bFROM\s+(?:\S+\.)?`?(\w+)`?", ddl)
            if target and source and source.group(1) in reached and target.group(1) not in reached:
                reached.add(target.group(1))
                changed = True
    assert {"spans_trace_id_ts", "genai_usage_1m", "genai_usage_1h"} <= reached
    settings = dict(store.query_rows(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"))
    lacking = sorted(t for t in reached if "non_replicated_deduplication_window" not in settings[t])
    assert not lacking, f"tables without a deduplication window (add them to a migration): {lacking}"


def test_identical_batches_with_different_tokens_are_both_stored(store: Store) -> None:
    sink = ClickHouseSink(store)
    batch = genai_batch(10)
    sink.write(batch, "token-a")
    sink.write(batch, "token-b")  # same rows, a different batch: not a retry
    sink.write(batch, "token-a")  # a retry of the first
    counts = table_counts(store.query_rows)
    assert counts["spans"] == counts["genai_calls"] == counts["genai_usage_1m"] == counts["genai_usage_1h"] == 20


def test_an_insert_interrupted_by_a_crash_before_its_commit_is_replayed_once(
        tmp_path: Path, store: Store, writers: Writers) -> None:
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, 64 << 20)
    batches = [genai_batch(30), genai_batch(20), genai_batch(10)]
    positions = [spool.append(_encode(b), b.size) for b in batches]
    # The writer's steps for the first two records, cut after the insert, before the commit:
    spool.begin(positions[1][1], "crash-token")
    ClickHouseSink(store).write(SpanBatch.concat(batches[:2]), "crash-token")
    spool.close()

    restarted = writers.make(ClickHouseSink(store), Spool(spool_dir, 64 << 20))  # type: ignore[arg-type]
    assert restarted.flush(30.0)
    counts = table_counts(store.query_rows)
    assert counts == dict.fromkeys(counts, 60), counts


def _encode(batch: SpanBatch) -> bytes:
    from spanhouse.collector.writer.spool import encode

    return encode(batch)
