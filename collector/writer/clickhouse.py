"""Sinks: where the writer's merged batches go. ClickHouse for real, memory for tests."""

from __future__ import annotations

import threading
from itertools import compress
from typing import Any, Protocol

from spanhouse.collector.batch import BASE_COLUMNS, GENAI_COLUMNS, WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.store import Store

SPANS_COLUMNS: tuple[str, ...] = BASE_COLUMNS + tuple(GENAI_COLUMNS)

GENAI_CALLS_COLUMNS: tuple[str, ...] = (
    "TenantId", "Timestamp", "ServiceName", "TraceId", "SpanId", "ParentSpanId", "SpanName",
    "Operation", "Provider", "RequestModel", "ResponseModel", "ResponseId", "FinishReasons",
    "InputTokens", "OutputTokens", "CacheReadTokens", "CacheWriteTokens", "ReasoningTokens",
    "CostInput", "CostOutput", "CostCacheRead", "CostCacheWrite", "CostTotal",
    "Duration", "TimeToFirstToken", "StatusCode", "ErrorType",
    "ToolName", "ToolCallId", "AgentName", "AgentId", "ConversationId",
)


class Sink(Protocol):
    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        """Store the whole batch or raise; a raise means nothing may be assumed stored.

        `token` identifies the batch: writing it again with the same token must not store a second copy.
        """
        ...


class ClickHouseSink:
    """Column-oriented inserts: GenAI spans into genai_calls, spans into spans, as the routing columns say.

    Without routing columns (no sampler), every GenAI span goes to genai_calls and every span to spans.
    Each insert carries `insert_deduplication_token`; the tables keep a deduplication window
    (migration 006), so a retried batch is stored once in them and in the views they feed.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        if not batch.size:
            return
        settings = {"insert_deduplication_token": token} if token else None
        calls_mask: list[Any] = batch.column("Operation")
        if WRITE_CALL in batch.columns:
            calls_mask = [bool(op) and wanted for op, wanted in zip(calls_mask, batch[WRITE_CALL])]
        genai = sum(map(bool, calls_mask))
        if genai:
            # Only genai_calls' own columns are copied, not the whole batch (attribute maps, events, ...).
            calls = [batch.column(c) for c in GENAI_CALLS_COLUMNS]
            if genai != batch.size:
                calls = [list(compress(values, calls_mask)) for values in calls]
            self.store.insert("genai_calls", calls, list(GENAI_CALLS_COLUMNS), settings)
        spans = [batch.column(c) for c in SPANS_COLUMNS]
        if WRITE_SPAN in batch.columns:
            spans_mask = batch[WRITE_SPAN]
            kept = sum(map(bool, spans_mask))
            if not kept:
                return
            if kept != batch.size:
                spans = [list(compress(values, spans_mask)) for values in spans]
        self.store.insert("spans", spans, list(SPANS_COLUMNS), settings)


class InMemorySink:
    """Keeps written batches in memory: the fake beside the seam, for tests of other stages.

    Like the ClickHouse tables, it keeps one copy of a batch written twice with the same token.
    """

    def __init__(self) -> None:
        self.batches: list[SpanBatch] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self.fail_next: int = 0

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
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
