"""Rows the store refuses for good: the writer writes the rest of their batch once, sets them aside with the
reason, and the batches behind them are not held up, on the embedded store, after a restart and from a spool."""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanhouse.collector import cli
from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.config import Config
from spanhouse.collector.store import Store
from spanhouse.collector.writer import BatchingWriter, ClickHouseSink, InMemorySink
from spanhouse.collector.writer.dead_letter import DeadLetterError, DeadLetters
from spanhouse.collector.writer.errors import Kind, RowsNotStorable, classify
from spanhouse.collector.writer.spool import Spool, encode
from spanhouse.collector.writer.storable import DATETIME64_MAX_NS, unstorable_rows

from collector_harness import start_collector
from durability_helpers import wait_until
from test_sink_columns import _row

_ids = itertools.count(1)
NOW_NS = time.time_ns()  # inside every retention window


def span_rows(n: int, **values: Any) -> list[dict[str, Any]]:
    return [_row(SpanId=f"{next(_ids):016x}", Timestamp=NOW_NS, **values) for _ in range(n)]


def batch_of(rows: list[dict[str, Any]]) -> SpanBatch:
    return SpanBatch({name: [row[name] for row in rows] for name in rows[0]}, len(rows))


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["SpanId"] for row in rows}


# Every value that once wedged the writer, as it reaches the sink. (A start of 0 with an end of 2^64-1
# arrives as Duration 2^64-1, which the store takes: the decoder refuses that span, not the sink.)
POISON = [
    pytest.param({"Timestamp": 2**63}, id="start-2^63"),
    pytest.param({"Timestamp": 2**64 - 1}, id="start-2^64-1"),
    pytest.param({"Timestamp": 16_725_225_600 * 10**9}, id="year-2500"),
    pytest.param({"Timestamp": DATETIME64_MAX_NS - 10, "Duration": 100}, id="start+duration-overflows"),
    pytest.param({"Events.Timestamp": [2**64 - 1], "Events.Name": ["e"], "Events.Attributes": [{}]},
                 id="event-2^64-1"),
]


class Writers:
    def __init__(self) -> None:
        self.made: list[BatchingWriter] = []
        self.spools: list[Spool] = []

    def make(self, sink: Any, **kwargs: Any) -> BatchingWriter:
        kwargs.setdefault("max_wait_s", 0.05)
        kwargs.setdefault("retry_initial_s", 0.01)
        kwargs.setdefault("retry_max_s", 0.05)
        writer = BatchingWriter(sink, **kwargs)
        self.made.append(writer)
        return writer

    def close(self, writer: BatchingWriter) -> None:
        self.made.remove(writer)
        writer.close(5.0)


@pytest.fixture
def writers() -> Iterator[Writers]:
    made = Writers()
    yield made
    for writer in made.made:
        writer.close(1.0)


@pytest.mark.parametrize("poison", POISON)
def test_a_poison_row_is_set_aside_and_its_batch_and_the_next_are_stored(
        store: Store, writers: Writers, tmp_path: Path, poison: dict[str, Any]) -> None:
    dead = DeadLetters(tmp_path / "dead")
    writer = writers.make(ClickHouseSink(store), dead_letters=dead, max_batch_rows=1000, max_wait_s=3600)
    good = span_rows(3, Operation="chat")
    bad = [_row(**{**_row(SpanId=f"{next(_ids):016x}", Timestamp=NOW_NS, Operation="chat"), **poison})]
    writer.submit(batch_of(good[:1] + bad + good[1:]))
    assert writer.flush(30)
    later = span_rows(2)
    writer.submit(batch_of(later))
    assert writer.flush(30)

    stored = {r[0] for r in store.query_rows("SELECT SpanId FROM spans")}
    assert stored == ids(good) | ids(later)
    calls = store.query_rows("SELECT SpanId, count() FROM genai_calls GROUP BY SpanId")
    assert sorted(calls) == sorted((i, 1) for i in ids(good))
    assert store.query_rows("SELECT sum(Calls) FROM genai_usage_1m") == [(3,)]
    [file] = dead.files()
    assert file.rows == 1
    [line] = file.path.read_text().splitlines()
    record = json.loads(line)
    assert record["columns"]["SpanId"] == bad[0]["SpanId"]
    assert "DateTime64(9)" in record["error"] or "UInt64" in record["error"]
    counters = writer.counters()
    assert counters["spans_dead_lettered_total"] == 1
    assert counters["spans_written_total"] == 6  # every row accepted is accounted for: written or set aside


def test_rows_the_check_misses_are_found_by_splitting(writers: Writers) -> None:
    """A permanent failure no check foresaw: halves are written until the failing rows stand alone."""

    class PickySink(InMemorySink):
        """Refuses, the way ClickHouse refuses a value, any batch holding a span named 'poison'."""

        def write(self, batch: SpanBatch, token: str | None = None) -> None:
            if "poison" in batch["SpanName"]:
                raise RuntimeError("Code: 407. DB::Exception: Decimal math overflow: (DECIMAL_OVERFLOW)")
            super().write(batch, token)

    sink = PickySink()
    writer = writers.make(sink, max_batch_rows=1000, max_wait_s=3600)
    rows = span_rows(40)
    for i in (3, 17, 18, 39):
        rows[i]["SpanName"] = "poison"
    writer.submit(batch_of(rows))
    writer.submit(batch_of(merged := span_rows(5)))  # merged into the same insert
    assert writer.flush(30)
    stored = [s["SpanId"] for s in sink.spans()]
    assert sorted(stored) == sorted([r["SpanId"] for r in rows if r["SpanName"] != "poison"] + list(ids(merged)))
    [(refused, reasons)] = writer.dead_lettered
    assert refused["SpanName"] == ["poison"] * 4
    assert all("Decimal math overflow" in r for r in reasons)
    # The next batch waited for none of it.
    writer.submit(batch_of(later := span_rows(2)))
    assert writer.flush(30)
    assert ids(later) <= {s["SpanId"] for s in sink.spans()}


def test_splitting_again_with_the_same_token_stores_no_part_twice(writers: Writers) -> None:
    """After a crash the batch is replayed with its token: the parts get the same tokens and are kept once."""
    sink = InMemorySink()
    writer = writers.make(sink)
    rows = span_rows(10)
    rows[4]["Timestamp"] = 2**64 - 1
    batch = batch_of(rows)
    first = RowsNotStorable(unstorable_rows(batch))
    assert writer._settle(batch, "tok", first)
    assert writer._settle(batch, "tok", first)
    assert sorted(s["SpanId"] for s in sink.spans()) == sorted(r["SpanId"] for i, r in enumerate(rows) if i != 4)


def test_an_unknown_error_is_retried_while_the_store_is_down_then_split_when_it_answers(writers: Writers) -> None:
    class FlakySink(InMemorySink):
        def __init__(self) -> None:
            super().__init__()
            self.store_up = False
            self.attempts = 0

        def probe(self) -> None:
            if not self.store_up:
                raise ConnectionError("store down")

        def write(self, batch: SpanBatch, token: str | None = None) -> None:
            self.attempts += 1
            if "odd" in batch["SpanName"]:
                raise RuntimeError("something no list names")
            super().write(batch, token)

    sink = FlakySink()
    writer = writers.make(sink, unknown_error_attempts=3)
    rows = span_rows(4)
    rows[2]["SpanName"] = "odd"
    writer.submit(batch_of(rows))
    wait_until(lambda: sink.attempts >= 6, 30, "several attempts while the store does not answer")
    assert writer.dead_lettered == [] and sink.spans() == []
    sink.store_up = True
    assert writer.flush(30)
    assert len(sink.spans()) == 3
    [(refused, reasons)] = writer.dead_lettered
    assert refused["SpanName"] == ["odd"] and reasons == ["something no list names"]


def test_a_transient_failure_while_splitting_is_retried_not_dead_lettered(writers: Writers) -> None:
    class Sink(InMemorySink):
        def __init__(self) -> None:
            super().__init__()
            self.hiccups = 3

        def write(self, batch: SpanBatch, token: str | None = None) -> None:
            if "." in (token or "") and self.hiccups:
                self.hiccups -= 1
                raise ConnectionError("connection reset")
            super().write(batch, token)

    sink = Sink()
    writer = writers.make(sink)
    rows = span_rows(6)
    rows[0]["Timestamp"] = 2**64 - 1
    writer.submit(batch_of(rows))
    assert writer.flush(30)
    assert len(sink.spans()) == 5
    assert writer.counters()["spans_dead_lettered_total"] == 1


def test_a_spool_holding_a_poison_batch_at_start_up_is_settled_once(store: Store, writers: Writers,
                                                                     tmp_path: Path) -> None:
    """A spool written before the decoder refused these values: the next start writes it and moves on."""
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, 64 << 20)
    poisoned = span_rows(4)
    poisoned[1]["Timestamp"] = 2**63
    poisoned[2].update(Timestamp=DATETIME64_MAX_NS - 5, Duration=10)
    spool.append(encode(batch_of(poisoned)), 4)
    spool.append(encode(batch_of(after := span_rows(3))), 3)
    spool.close()

    dead = DeadLetters(tmp_path / "dead")
    writer = writers.make(ClickHouseSink(store), spool=Spool(spool_dir, 64 << 20), dead_letters=dead)
    assert writer.flush(30)
    writers.close(writer)
    expected = {poisoned[0]["SpanId"], poisoned[3]["SpanId"]} | ids(after)
    assert {r[0] for r in store.query_rows("SELECT SpanId FROM spans")} == expected
    assert sum(f.rows for f in dead.files()) == 2

    again = writers.make(ClickHouseSink(store), spool=Spool(spool_dir, 64 << 20), dead_letters=dead)
    assert again.flush(30)
    assert again.counters()["spans_written_total"] == 0
    assert store.query_rows("SELECT count() FROM spans") == [(len(expected),)]
    assert sum(f.rows for f in dead.files()) == 2


def test_the_cause_is_logged_once_at_error(writers: Writers, caplog: pytest.LogCaptureFixture) -> None:
    writer = writers.make(InMemorySink())
    for _ in range(3):
        rows = span_rows(3)
        rows[1]["Timestamp"] = 2**64 - 1
        writer.submit(batch_of(rows))
        with caplog.at_level(logging.ERROR, logger="spanhouse.writer"):
            assert writer.flush(30)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "DateTime64(9)" in errors[0].getMessage()
    assert writer.counters()["spans_dead_lettered_total"] == 3


@pytest.mark.parametrize(("exc", "kind"), [
    (RuntimeError("Code: 407. DB::Exception: Decimal math overflow"), Kind.PERMANENT),
    (RuntimeError("Code: 6. DB::Exception: Cannot parse text"), Kind.PERMANENT),
    (OverflowError("Python int too large to convert to C long"), Kind.PERMANENT),
    (RowsNotStorable({0: "x"}), Kind.PERMANENT),
    (RuntimeError("Code: 241. DB::Exception: Memory limit (total) exceeded"), Kind.TRANSIENT),
    (RuntimeError("Code: 252. DB::Exception: Too many parts"), Kind.TRANSIENT),
    (RuntimeError("Code: 159. DB::Exception: Timeout exceeded"), Kind.TRANSIENT),
    (ConnectionRefusedError(111, "Connection refused"), Kind.TRANSIENT),
    (TimeoutError("timed out"), Kind.TRANSIENT),
    (RuntimeError("something else"), Kind.UNKNOWN),
])
def test_errors_are_classified_where_they_arise(exc: Exception, kind: Kind) -> None:
    assert classify(exc) is kind


def test_a_dead_letter_file_is_listed_and_replayed_by_the_collector(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An operator lists the dead letters, fixes their cause, queues a file: the next start writes it."""
    data = tmp_path / "data"
    config_file = tmp_path / "spanhouse.yaml"
    config_file.write_text(f"store:\n  url: chdb://{data}\n")
    cfg = Config()
    cfg.store.url = f"chdb://{data}"
    from spanhouse.collector.config import dead_letter_directory

    dead = DeadLetters(dead_letter_directory(cfg))
    rows = span_rows(2, Operation="chat")
    path = dead.write("0123abcd", batch_of(rows), ["a reason since fixed", "a reason since fixed"])

    assert cli.main(["dead-letters", "--config", str(config_file)]) == 0
    listing = capsys.readouterr().out
    assert path.name in listing and "a reason since fixed" in listing
    assert cli.main(["dead-letters", "--config", str(config_file), "replay", "no-such.jsonl"]) == 1
    assert "not a dead-letter file" in capsys.readouterr().err
    assert cli.main(["dead-letters", "--config", str(config_file), "replay", path.name]) == 0
    assert dead.files() == []

    running = start_collector(data)
    try:
        running.flush()
        assert {r[0] for r in running.query("SELECT SpanId FROM spans")} == ids(rows)
        assert {r[0] for r in running.query("SELECT SpanId FROM genai_calls")} == ids(rows)
        assert not (dead.directory / "replay" / path.name).exists()
    finally:
        running.collector.stop()


def test_a_damaged_dead_letter_file_is_named(tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path)
    (tmp_path / "x.jsonl").write_text("{not json\n")
    with pytest.raises(DeadLetterError, match=r"x.jsonl:1: not a JSON object"):
        dead.files()


def test_stats_show_the_dead_letter_counters(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "data")
    try:
        counters = running.collector.counters()
        assert counters["writer_spans_dead_lettered_total"] == 0
        assert counters["writer_batches_split_total"] == 0
    finally:
        running.collector.stop()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
