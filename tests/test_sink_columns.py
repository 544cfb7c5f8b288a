"""Every column the sink writes reads back exactly as the batch held it, in both tables."""

from __future__ import annotations

from typing import Any

import pytest

from spanhouse.collector.batch import GENAI_COLUMNS, WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.store import Store, StoreError
from spanhouse.collector.writer import ClickHouseSink
from spanhouse.collector.writer.arrow import UnsupportedColumnType, arrow_type
from spanhouse.collector.writer.clickhouse import GENAI_CALLS_COLUMNS, SPANS_COLUMNS

T0 = 1_763_900_000_123_456_789  # nanosecond precision must survive
MAX_U64 = 2**64 - 1


def _row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "TenantId": "acme", "Timestamp": T0, "TraceId": "ab" * 16, "SpanId": "01" * 8, "ParentSpanId": "",
        "TraceState": "", "SpanName": "span", "SpanKind": "Internal", "ServiceName": "svc",
        "ResourceAttributes": {}, "ScopeName": "", "ScopeVersion": "", "SpanAttributes": {}, "Duration": 0,
        "StatusCode": "Unset", "StatusMessage": "",
        "Events.Timestamp": [], "Events.Name": [], "Events.Attributes": [],
        "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": [],
        **GENAI_COLUMNS,
    }
    row.update(values)
    return row


ROWS = [
    _row(SpanId="0000000000000001", SpanName="chat gpt-4o", Operation="chat", Provider="openai",
         RequestModel="gpt-4o", ResponseModel="gpt-4o-2024-08-06", ResponseId="chatcmpl-1",
         FinishReasons=("stop", "tool_calls"), InputTokens=MAX_U64, OutputTokens=0, CacheReadTokens=None,
         CostInput=0.000125, CostTotal=1e-12, TimeToFirstToken=0.25, Duration=MAX_U64, SampleRate=0.25,
         ResourceAttributes={"service.name": "svc", "ключ": "値 ✓"},
         SpanAttributes={"gen_ai.input.messages": '[{"role": "user", "content": "tab\\there"}]',
                         "nul": "a\x00b", "newline": "line1\nline2", "empty": "", "emoji": "🙂" * 3},
         **{"Events.Timestamp": [T0 + 1, T0 + 2], "Events.Name": ["gen_ai.content.chunk", "exception"],
            "Events.Attributes": [{}, {"exception.message": "boom", "exception.type": "ValueError"}],
            "Links.TraceId": ["cd" * 16], "Links.SpanId": ["02" * 8], "Links.TraceState": ["k=v"],
            "Links.Attributes": [{"link.kind": "caused-by"}]}),
    _row(SpanId="0000000000000002", SpanName="GET /", SpanKind="Server", StatusCode="Error",
         StatusMessage="déjà vu", Duration=1, ParentSpanId="0000000000000001", TraceState="a=b",
         ToolName="", FinishReasons=[]),
    _row(SpanId="0000000000000003", SpanName="execute_tool lookup", Operation="execute_tool",
         ToolName="lookup", ToolCallId="call_7", AgentName="cashier", AgentId="agent-1",
         ConversationId="conv-9", ErrorType="TimeoutError", CostTotal=0.0, ReasoningTokens=7),
]


def _batch(rows: list[dict[str, Any]]) -> SpanBatch:
    return SpanBatch({name: [row[name] for row in rows] for name in rows[0]}, len(rows))


def _read(store: Store, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of `table` by SpanId, timestamps as Unix nanoseconds (clickhouse-connect reads microseconds)."""
    exprs = []
    for name in columns:
        if name == "Timestamp":
            exprs.append("toUnixTimestamp64Nano(Timestamp)")
        elif name == "Events.Timestamp":
            exprs.append("arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)")
        else:
            exprs.append(f"`{name}`")
    rows = store.query_rows(f"SELECT {', '.join(exprs)} FROM {table} ORDER BY SpanId")
    return [dict(zip(columns, row)) for row in rows]


def _expected(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: list(row[name]) if isinstance(row[name], tuple) else row[name] for name in columns}


def test_every_column_reads_back_as_written(store: Store) -> None:
    ClickHouseSink(store).write(_batch(ROWS), token="t-1")
    assert _read(store, "spans", SPANS_COLUMNS) == [_expected(r, SPANS_COLUMNS) for r in ROWS]
    genai = [r for r in ROWS if r["Operation"]]
    assert _read(store, "genai_calls", GENAI_CALLS_COLUMNS) == [_expected(r, GENAI_CALLS_COLUMNS) for r in genai]


def test_routed_rows_keep_their_values(store: Store) -> None:
    batch = _batch(ROWS)
    batch.set_column(WRITE_CALL, [False, True, True])
    batch.set_column(WRITE_SPAN, [True, False, False])
    ClickHouseSink(store).write(batch, token="t-2")
    assert _read(store, "spans", SPANS_COLUMNS) == [_expected(ROWS[0], SPANS_COLUMNS)]
    assert _read(store, "genai_calls", GENAI_CALLS_COLUMNS) == [_expected(ROWS[2], GENAI_CALLS_COLUMNS)]


def test_spans_sharing_one_resource_map_each_store_it(store: Store) -> None:
    resource = {"service.name": "svc", "host.name": "pod-1"}
    other = {"service.name": "other"}
    rows = [_row(SpanId=f"{i:016x}", ResourceAttributes=other if i % 5 == 4 else resource) for i in range(20)]
    ClickHouseSink(store).write(_batch(rows), token="t-3")
    stored = store.query_rows("SELECT SpanId, ResourceAttributes FROM spans ORDER BY SpanId")
    assert stored == [(r["SpanId"], r["ResourceAttributes"]) for r in rows]


@pytest.mark.parametrize("token", ["same", "it's a \\ token"])
def test_a_batch_written_again_with_its_token_is_stored_once(store: Store, token: str) -> None:
    sink = ClickHouseSink(store)
    sink.write(_batch(ROWS), token=token)
    sink.write(_batch(ROWS), token=token)
    assert store.query_rows("SELECT count() FROM spans") == [(3,)]
    assert store.query_rows("SELECT count() FROM genai_calls") == [(2,)]


def test_a_store_without_the_tables_is_a_clear_error(tmp_path) -> None:
    bare = Store.open(f"chdb://{tmp_path / 'bare'}")
    try:
        with pytest.raises(StoreError, match="genai_calls.*run the migrations"):
            ClickHouseSink(bare).write(_batch(ROWS))
    finally:
        bare.close()


@pytest.mark.parametrize(("clickhouse_type", "expected"), [
    ("LowCardinality(String)", "string"),
    ("Nullable(UInt64)", "uint64"),
    ("Array(LowCardinality(String))", "list<item: string>"),
    ("Map(LowCardinality(String), String)", "map<string, string>"),
    ("Array(Map(LowCardinality(String), String))", "list<item: map<string, string>>"),
    ("DateTime64(9)", "timestamp[ns]"),
])
def test_arrow_types_follow_the_clickhouse_types(clickhouse_type: str, expected: str) -> None:
    assert str(arrow_type(clickhouse_type)) == expected


def test_an_unmapped_clickhouse_type_is_named() -> None:
    with pytest.raises(UnsupportedColumnType, match=r"DateTime64\(3\)"):
        arrow_type("DateTime64(3)")


def test_a_closed_store_refuses_inserts_instead_of_reopening(tmp_path) -> None:
    opened = Store.open(f"chdb://{tmp_path / 'store'}")
    opened.migrate()
    sink = ClickHouseSink(opened)
    sink.write(_batch(ROWS), token="before")
    opened.close()
    with pytest.raises(StoreError, match="closed"):
        sink.write(_batch(ROWS), token="after")
    other = Store.open(f"chdb://{tmp_path / 'other'}")  # the engine was let go: another path opens
    other.close()


def test_inserted_batches_are_compact_parts_and_memory_is_handed_back(store: Store) -> None:
    """Migration 007: a batch of ~14 MB (above the engine's default 10 MB for Wide parts) lands as one
    Compact part per table, one stream instead of one per column; the write ends by purging both
    allocators, and the embedded engine accepts the purge."""
    content = "x" * 1024
    rows = [_row(SpanId=f"{i:016x}", Operation="chat", SpanAttributes={"gen_ai.input.messages": content})
            for i in range(14_000)]
    ClickHouseSink(store).write(_batch(rows))
    parts = store.query_rows("SELECT table, part_type, sum(rows) FROM system.parts WHERE active"
                             " AND database = currentDatabase() AND table IN ('spans', 'genai_calls')"
                             " GROUP BY table, part_type ORDER BY table")
    assert parts == [("genai_calls", "Compact", 14_000), ("spans", "Compact", 14_000)]
    assert store._purge
