"""Sinks: where the writer's merged batches go. ClickHouse for real, memory for tests."""

from __future__ import annotations

import threading
from itertools import compress
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spanhouse.collector.batch import (
    BASE_COLUMNS,
    DUPLICATE_OF,
    GENAI_CALLS_COLUMNS,
    GENAI_COLUMNS,
    WRITE_CALL,
    WRITE_SPAN,
    SpanBatch,
)
from spanhouse.collector.component import Sink
from spanhouse.collector.store import Store, StoreError
from spanhouse.collector.writer.arrow import arrow_type, build_array, choose_memory_pool
from spanhouse.collector.writer.errors import RowsNotStorable
from spanhouse.collector.writer.storable import unstorable_rows

__all__ = ["GENAI_CALLS_COLUMNS", "SPANS_COLUMNS", "ClickHouseSink", "InMemorySink", "Sink"]

SPANS_COLUMNS: tuple[str, ...] = BASE_COLUMNS + tuple(GENAI_COLUMNS)


class ClickHouseSink:
    """Column-oriented inserts: GenAI spans into genai_calls, spans into spans, as the routing columns say.

    Without routing columns (no sampler), every GenAI span goes to genai_calls and every span to spans.
    Each insert carries `insert_deduplication_token`; the tables keep a deduplication window
    (migration 006), so a retried batch is stored once in them and in the views they feed.

    Rows travel as Arrow record batches (see writer/arrow.py): each column is converted once,
    in C++, and genai_calls takes a filtered view of the arrays it shares with spans.
    The Arrow types follow the tables' column types, read from the store at the first write.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._types: dict[str, dict[str, pa.DataType]] = {}
        choose_memory_pool()
        pa.array([""])  # pyarrow's first conversion imports pandas (~0.3 s): at start-up, not on the first batch

    def _table_types(self, table: str, columns: tuple[str, ...]) -> dict[str, pa.DataType]:
        types = self._types.get(table)
        if types is None:
            stored = self.store.column_types(table)
            missing = [c for c in columns if c not in stored]
            if missing:
                raise StoreError(f"table {table!r} has no column(s) {', '.join(missing)}: run the migrations")
            types = self._types[table] = {c: arrow_type(stored[c]) for c in columns}
        return types

    def probe(self) -> None:
        self.store.query_rows("SELECT 1")

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        if not batch.size:
            return
        unstorable = unstorable_rows(batch)
        if unstorable:
            raise RowsNotStorable(unstorable)
        settings = {"insert_deduplication_token": token} if token else None
        columns = _ArrowColumns(batch)
        calls = self._calls_table(batch, columns)
        # The engine writes genai_calls on the store's second insert lane (its work mostly outside the
        # GIL) while this thread converts the span columns and inserts spans on the first.
        pending = self.store.insert_arrow_async("genai_calls", calls, settings) if calls is not None else None
        try:
            spans = self._spans_table(batch, columns)
            if spans is not None:
                self.store.insert_arrow("spans", spans, settings)
        finally:
            if pending is not None:
                pending.result()  # a failure of either insert fails the write; the retry is deduplicated
        self.store.release_memory()

    def _calls_table(self, batch: SpanBatch, columns: _ArrowColumns) -> pa.Table | None:
        types = self._table_types("genai_calls", GENAI_CALLS_COLUMNS)
        mask = pc.not_equal(columns.get("Operation", types["Operation"]), "")
        if DUPLICATE_OF in batch.columns:  # a call traced twice is counted once (processors/dedup.py)
            mask = pc.and_(mask, pc.equal(columns.get(DUPLICATE_OF, pa.string()), ""))
        if WRITE_CALL in batch.columns:
            mask = pc.and_(mask, pa.array(batch[WRITE_CALL], pa.bool_()))
        calls = pc.sum(mask).as_py() or 0
        if not calls:
            return None
        table = pa.Table.from_arrays([columns.get(c, t) for c, t in types.items()], names=list(types))
        return table if calls == batch.size else table.filter(mask)

    def _spans_table(self, batch: SpanBatch, columns: _ArrowColumns) -> pa.Table | None:
        types = self._table_types("spans", SPANS_COLUMNS)
        spans_mask = batch.columns.get(WRITE_SPAN)
        kept = batch.size if spans_mask is None else sum(map(bool, spans_mask))
        if not kept:
            return None
        if kept == batch.size:
            arrays = [columns.get(c, t) for c, t in types.items()]
        else:
            assert spans_mask is not None
            mask = pa.array(spans_mask, pa.bool_())
            # Columns genai_calls did not need are converted for the kept rows only (the maps are the costly part).
            arrays = [columns.built[(c, t)].filter(mask) if (c, t) in columns.built
                      else build_array(list(compress(batch.column(c), spans_mask)), t)
                      for c, t in types.items()]
        return pa.Table.from_arrays(arrays, names=list(types))


class _ArrowColumns:
    """A batch's columns as Arrow arrays, each converted once however many tables use it."""

    def __init__(self, batch: SpanBatch) -> None:
        self.batch = batch
        self.built: dict[tuple[str, pa.DataType], pa.Array] = {}

    def get(self, name: str, arrow_t: pa.DataType) -> pa.Array:
        key = (name, arrow_t)
        array = self.built.get(key)
        if array is None:
            array = self.built[key] = build_array(self.batch.column(name), arrow_t)
        return array


class InMemorySink:
    """Keeps written batches in memory: the fake beside the seam, for tests of other stages.

    Like the ClickHouse tables, it keeps one copy of a batch written twice with the same token.
    """

    def __init__(self) -> None:
        self.batches: list[SpanBatch] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self.fail_next: int = 0

    def probe(self) -> None:
        pass

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        unstorable = unstorable_rows(batch)
        if unstorable:
            raise RowsNotStorable(unstorable)
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("InMemorySink told to fail")
            if token is not None:
                if token in self.tokens:
                    return
                self.tokens.add(token)
            self.batches.append(batch)

    def rows(self) -> SpanBatch:
        with self._lock:
            return SpanBatch.concat(self.batches)

    def spans(self) -> list[dict[str, Any]]:
        merged = self.rows()
        return [{k: v[i] for k, v in merged.columns.items()} for i in range(merged.size)]
