"""Native output for a client's protocol revision (collector/query/native.py).

Expected bytes are written out by hand from ClickHouse's Native format description; real output comes
from the embedded engine over a migrated store with rows in every table, read the way the query
endpoint reads it, and is decoded with clickhouse-connect's own Native reader to show the re-encoded
stream holds the same values.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from spanhouse.collector.query import native_types
from spanhouse.collector.query.native import (
    HIGHEST_REVISION,
    NativeFormatError,
    adapt_native,
    compile_type,
    negotiated_revision,
    parse_client_revision,
    walk_native,
)
from spanhouse.collector.query.native_type_names import plain_type_name
from spanhouse.collector.store import Store

from native_readers import (
    BLOCK_INFO,
    BLOCK_INFO_WITH_BUCKETS,
    CLICKHOUSE_CONNECT_REVISION,
    CLICKHOUSE_GO_REVISION,
    reference_rows,
    rows_at_revision,
)



def text(value: str) -> bytes:
    """A Native String: VarUInt length, then the UTF-8 bytes."""
    raw = value.encode()
    length, prefix = len(raw), bytearray()
    while length >= 0x80:
        prefix.append(length & 0x7F | 0x80)
        length >>= 7
    return bytes(prefix) + bytes([length]) + raw


# One block, one row, one column x UInt8 = 7, as the engine writes it (revision 0).
UINT8_BLOCK = b"\x01\x01" + text("x") + text("UInt8") + b"\x07"


@pytest.mark.parametrize(("revision", "expected"), [
    (0, UINT8_BLOCK),
    (1, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x07"),
    (CLICKHOUSE_CONNECT_REVISION, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x07"),
    (54453, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x07"),
    (54454, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
    (CLICKHOUSE_GO_REVISION, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
    (54479, BLOCK_INFO + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
    (54480, BLOCK_INFO_WITH_BUCKETS + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
    (HIGHEST_REVISION, BLOCK_INFO_WITH_BUCKETS + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
    (10**9, BLOCK_INFO_WITH_BUCKETS + b"\x01\x01" + text("x") + text("UInt8") + b"\x00\x07"),
])
def test_one_uint8_column_at_each_revision_boundary(revision: int, expected: bytes) -> None:
    assert adapt_native(UINT8_BLOCK, revision) == expected


def test_every_block_gets_its_block_info_and_every_column_its_flag() -> None:
    two_columns = (b"\x02\x02" + text("s") + text("String") + text("ab") + text("")
                   + text("n") + text("Nullable(UInt16)") + b"\x01\x00" + b"\x00\x00\x05\x00")
    second = (b"\x02\x01" + text("s") + text("String") + text("c")
              + text("n") + text("Nullable(UInt16)") + b"\x01\x00\x00")
    adapted = adapt_native(two_columns + second, CLICKHOUSE_GO_REVISION)
    assert adapted == (
        BLOCK_INFO + b"\x02\x02" + text("s") + text("String") + b"\x00" + text("ab") + text("")
        + text("n") + text("Nullable(UInt16)") + b"\x00" + b"\x01\x00" + b"\x00\x00\x05\x00"
        + BLOCK_INFO + b"\x02\x01" + text("s") + text("String") + b"\x00" + text("c")
        + text("n") + text("Nullable(UInt16)") + b"\x00" + b"\x01\x00\x00")


def test_a_block_without_rows_has_headers_and_flags_but_no_data() -> None:
    header_only = b"\x01\x00" + text("m") + text("Map(LowCardinality(String), String)")
    assert adapt_native(header_only, CLICKHOUSE_GO_REVISION) == (
        BLOCK_INFO + b"\x01\x00" + text("m") + text("Map(LowCardinality(String), String)") + b"\x00")


def test_no_blocks_stay_no_bytes() -> None:
    assert adapt_native(b"", CLICKHOUSE_GO_REVISION) == b""
    assert walk_native(b"") == []


def test_revision_zero_returns_the_bytes_unchanged() -> None:
    data = UINT8_BLOCK * 3
    assert adapt_native(data, 0) is data


def test_datetime_time_zone_is_cut_only_below_its_revision() -> None:
    block = b"\x01\x01" + text("t") + text("DateTime('UTC')") + b"\x01\x00\x00\x00"
    cut = BLOCK_INFO + b"\x01\x01" + text("t") + text("DateTime") + b"\x01\x00\x00\x00"
    assert adapt_native(block, 54336) == cut
    assert adapt_native(block, 54337) == BLOCK_INFO + block


def low_cardinality_block(type_name: str, keys: list[bytes], indexes: bytes) -> bytes:
    """One LowCardinality column as the engine writes it: key version 1, then one granule with UInt8
    indexes, keys to add (flag bits 9 and 10) and the indexes."""
    return (bytes([1, len(indexes)]) + text("kind") + text(type_name)
            + struct.pack("<QQQ", 1, 0x600, len(keys)) + b"".join(keys)
            + struct.pack("<Q", len(indexes)) + indexes)


def test_low_cardinality_is_written_out_in_full_for_clients_that_predate_it() -> None:
    keys = [text(""), text("a"), text("bc")]
    block = low_cardinality_block("LowCardinality(String)", keys, b"\x01\x02\x01")
    assert adapt_native(block, 54404) == (BLOCK_INFO + b"\x01\x03" + text("kind") + text("String")
                                          + text("a") + text("bc") + text("a"))
    assert adapt_native(block, 54405) == BLOCK_INFO + block


def test_nullable_low_cardinality_becomes_a_null_map_and_the_keys() -> None:
    # Key 0 stands for NULL and holds the default value, key 1 the default itself.
    block = low_cardinality_block("LowCardinality(Nullable(String))", [text(""), text(""), text("a")],
                                  b"\x00\x02\x01")
    assert adapt_native(block, 1) == (BLOCK_INFO + b"\x01\x03" + text("kind") + text("Nullable(String)")
                                      + b"\x01\x00\x00" + text("") + text("a") + text(""))


def test_low_cardinality_of_a_fixed_width_type_expands_by_width() -> None:
    block = low_cardinality_block("LowCardinality(UInt16)", [b"\x00\x00", b"\x07\x00"], b"\x01\x01\x00")
    assert adapt_native(block, 54404).endswith(text("UInt16") + b"\x07\x00\x07\x00\x00\x00")


@pytest.mark.parametrize(("type_name", "plain"), [
    ("LowCardinality(String)", "String"),
    ("Map(LowCardinality(String), String)", "Map(String, String)"),
    ("Array(LowCardinality(Nullable(String)))", "Array(Nullable(String))"),
    ("Tuple(a LowCardinality(FixedString(2)), b Array(LowCardinality(String)))",
     "Tuple(a FixedString(2), b Array(String))"),
    ("Enum8('LowCardinality(' = 1)", "Enum8('LowCardinality(' = 1)"),
    ("Tuple(`LowCardinality(` String)", "Tuple(`LowCardinality(` String)"),
])
def test_plain_type_names_drop_low_cardinality_outside_quotes(type_name: str, plain: str) -> None:
    assert plain_type_name(type_name) == plain


def test_a_low_cardinality_index_past_its_keys_or_too_large_to_write_out_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="column 'kind' of type LowCardinality.*index 5 past its 2 keys"):
        adapt_native(low_cardinality_block("LowCardinality(String)", [text(""), text("a")], b"\x05"), 54404)
    monkeypatch.setattr(native_types, "MAX_EXPANDED_BYTES", 10)
    block = low_cardinality_block("LowCardinality(String)", [text(""), text("abcdef")], b"\x01\x01")
    with pytest.raises(ValueError, match="select fewer rows"):
        adapt_native(block, 54404)


def test_revision_is_capped_and_parsed_like_a_url_parameter() -> None:
    assert negotiated_revision(CLICKHOUSE_GO_REVISION) == CLICKHOUSE_GO_REVISION
    assert negotiated_revision(HIGHEST_REVISION + 1000) == HIGHEST_REVISION
    assert parse_client_revision(None) == 0
    assert parse_client_revision("") == 0
    assert parse_client_revision("54460") == 54460
    for bad in ("-1", "54460x", "1e5", "٥٤", "9" * 40):
        with pytest.raises(ValueError, match="client_protocol_version"):
            parse_client_revision(bad)
    with pytest.raises(ValueError, match="client_protocol_version"):
        adapt_native(UINT8_BLOCK, -1)


# ---------------------------------------------------------------- real output of the embedded engine

SEED_STATEMENTS = [
    """INSERT INTO spans (TenantId, Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind,
        ServiceName, ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage,
        `Events.Timestamp`, `Events.Name`, `Events.Attributes`, `Links.TraceId`, `Links.SpanId`,
        `Links.TraceState`, `Links.Attributes`, Operation, Provider, RequestModel, ResponseModel, ResponseId,
        FinishReasons, InputTokens, OutputTokens, CacheReadTokens, CostTotal, TimeToFirstToken, ToolName,
        AgentName, ConversationId, ErrorType, SampleRate, DuplicateOf)
    SELECT ['acme', 'globex'][number % 2 + 1], toDateTime64('2026-03-01 10:00:00', 9) + number * 61,
        lower(hex(MD5(toString(intDiv(number, 3))))), lower(hex(substring(MD5(toString(number)), 1, 8))),
        if(number % 3 = 0, '', lower(hex(substring(MD5(toString(number - 1)), 1, 8)))), '',
        ['chat gpt-4o', 'invoke_agent planner', 'execute_tool search'][number % 3 + 1], 'Client',
        'svc-' || toString(number % 4),
        map('service.name', 'svc-' || toString(number % 4), 'host.name', 'h\\'' || toString(number)),
        'opentelemetry.instrumentation.openai',
        if(number % 5 = 0, map(), map('gen_ai.system', 'openai', 'ünïcödé', repeat('x', number * 13))),
        1000000 * (number + 1), ['Unset', 'Ok', 'Error'][number % 3 + 1], if(number % 3 = 2, 'boom', ''),
        arrayMap(i -> toDateTime64('2026-03-01 10:00:00', 9) + i, range(number % 3)),
        arrayMap(i -> 'event ' || toString(i), range(number % 3)),
        arrayMap(i -> map('k' || toString(i), 'v'), range(number % 3)),
        arrayMap(i -> 'trace' || toString(i), range(number % 2)), arrayMap(i -> 'span', range(number % 2)),
        arrayMap(i -> '', range(number % 2)), arrayMap(i -> map(), range(number % 2)),
        ['chat', 'invoke_agent', 'execute_tool'][number % 3 + 1], 'openai', 'gpt-4o', 'gpt-4o-2024-08-06',
        'resp_' || toString(number), arrayResize(['stop', 'length'], number % 3),
        if(number % 4 = 0, NULL, number * 100), if(number % 4 = 0, NULL, number * 10), NULL,
        if(number % 4 = 0, NULL, number / 1000), if(number % 2 = 0, NULL, 0.25),
        if(number % 3 = 2, 'search', ''),
        'planner', 'conv-' || toString(number % 2), if(number % 7 = 3, 'timeout', ''), 1, ''
    FROM numbers(23)""",
    """INSERT INTO genai_calls (TenantId, Timestamp, ServiceName, TraceId, SpanId, ParentSpanId, SpanName,
        Operation, Provider, RequestModel, ResponseModel, ResponseId, FinishReasons, InputTokens,
        OutputTokens,
        CacheReadTokens, CacheWriteTokens, ReasoningTokens, CostInput, CostOutput, CostTotal, Duration,
        TimeToFirstToken, StatusCode, ErrorType, ToolName, AgentName, ConversationId)
    SELECT ['acme', 'globex'][number % 2 + 1], toDateTime64('2026-03-01 10:00:00', 9) + number * 97,
        'svc-' || toString(number % 4), lower(hex(MD5(toString(intDiv(number, 2))))), toString(number), '',
        'chat', ['chat', 'execute_tool'][number % 2 + 1], ['openai', 'anthropic'][number % 2 + 1],
        'model-' || toString(number % 3), if(number % 5 = 0, '', 'model-' || toString(number % 3) || '-x'),
        '', ['stop'], number * 3, if(number % 3 = 0, NULL, number), NULL, NULL, if(number % 2 = 0, NULL, 7),
        number / 1e6, if(number % 3 = 0, NULL, number / 1e5), if(number % 3 = 0, NULL, number / 1e4),
        (number + 1) * 1e6, if(number % 2 = 0, NULL, number / 100), ['Ok', 'Error'][number % 2 + 1],
        if(number % 2 = 1, 'rate_limit', ''), '', 'agent', 'c'
    FROM numbers(41)""",
    """INSERT INTO model_prices (Provider, Model, EffectiveFrom, InputPerMTok, OutputPerMTok,
        CacheReadPerMTok,
        CacheWritePerMTok, LongContextAboveTokens, Source, Origin, TableChecksum)
    VALUES ('openai', 'gpt-4o', '2024-05-13 00:00:00.000', 2.5, 10, 1.25, 2.5, 0, 'https://openai.com',
            'builtin', 'c'),
           ('anthropic', 'claude', '2025-01-01 00:00:00.000', 3, 15, 0.3, 3.75, 200000, '', 'config', 'c')""",
    # Alert history: a Nullable(DateTime64) (firing rows have no end yet) and Maps of labels.
    """INSERT INTO alerts (TenantId, Timestamp, Fingerprint, AlertName, Event, Status, Severity, StartsAt, EndsAt,
        Summary, Labels, Annotations)
    SELECT ['acme', ''][number % 2 + 1], toDateTime64('2026-03-01 10:00:00', 3) + number * 60,
        lower(hex(MD5(toString(number % 5)))), ['cost_spike', 'secret_detected'][number % 2 + 1],
        ['fired', 'resolved'][number % 2 + 1], ['firing', 'resolved'][number % 2 + 1], 'critical',
        toDateTime64('2026-03-01 09:00:00', 3), if(number % 2 = 1, toDateTime64('2026-03-01 11:00:00', 3), NULL),
        'cost ' || toString(number), map('alertname', 'cost_spike', 'service', 'svc-' || toString(number % 3)),
        map('summary', 'over budget')
    FROM numbers(40)""",
    # Archived content and its access log (content by reference).
    """INSERT INTO genai_content (TenantId, TraceId, SpanId, Timestamp, Key, Content, Sha256, ArchivedAt)
    SELECT ['acme', 'globex'][number % 2 + 1], lower(hex(MD5(toString(number)))), lower(hex(number)),
        toDateTime64('2026-01-01 00:00:00', 9) + number, 'gen_ai.input.messages', repeat('x', number % 7),
        lower(hex(SHA256(repeat('x', number % 7)))), toDateTime64('2026-01-09 00:00:00', 3)
    FROM numbers(40)""",
    """INSERT INTO genai_content_access (TenantId, Timestamp, Caller, CallerTenant, Admin, Path, TraceId, SpanId,
        Key, Sha256, Statement)
    SELECT 'acme', toDateTime64('2026-01-10 00:00:00', 3) + number, 'ops', '', 1, ['ui', 'export'][number % 2 + 1],
        lower(hex(MD5(toString(number)))), lower(hex(number)), 'gen_ai.input.messages', '', ''
    FROM numbers(40)""",
]

AGGREGATES = [
    "SELECT count() FROM spans",
    "SELECT ServiceName, count() AS calls, sum(Duration) AS total, avg(Duration) AS mean "
    "FROM spans GROUP BY ServiceName",
    "SELECT Model, quantiles(0.5, 0.95, 0.99)(Duration / 1e6) AS p "
    "FROM genai_calls GROUP BY Model ORDER BY Model",
    "SELECT toStartOfHour(Timestamp) AS hour, sum(CostTotal) AS cost, countIf(CostTotal IS NULL) AS unpriced "
    "FROM genai_calls GROUP BY hour ORDER BY hour",
    "SELECT Hour, Model, sum(Calls) AS calls, quantilesTDigestMerge(0.5, 0.9)(DurationMs) AS p "
    "FROM genai_usage_1h GROUP BY Hour, Model ORDER BY Hour, Model",
    "SELECT TenantId, TraceId, min(Start) AS start, max(End) AS end, sum(CostTotal) AS cost, "
    "groupUniqArrayArray(Models) AS models FROM trace_costs "
    "GROUP BY TenantId, TraceId ORDER BY cost DESC LIMIT 5",
    "SELECT SpanAttributes['gen_ai.system'] AS system, any(ResourceAttributes) AS attrs, "
    "groupArray(FinishReasons) AS reasons, uniq(TraceId) AS traces FROM spans GROUP BY system",
    "SELECT arrayJoin(`Events.Name`) AS event, count() FROM spans GROUP BY event ORDER BY event",
    "SELECT Model, toTypeName(Model) FROM genai_calls LIMIT 3",
    "SELECT NULL AS nothing, [] AS empty, tuple(1, 'a') AS pair, "
    "CAST((1, 'b') AS Tuple(n UInt8, s String)) AS named, toDecimal128(1.5, 3) AS dec, "
    "toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0') AS id, toIPv6('::1') AS ip6, "
    "toFixedString('ab', 4) AS fixed, "
    "CAST('b', 'Enum8(\\'a\\' = 1, \\'b\\' = 2)') AS e, toDate32('2026-01-01') AS d, "
    "[toLowCardinality(toNullable('x')), NULL] AS lcs, map(1, [2, 3]) AS nested_map",
    "SELECT displayName(), version(), revision(), timezone()",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(f"chdb://{tmp_path_factory.mktemp('native') / 'store'}")
    try:
        opened.migrate()
        for statement in SEED_STATEMENTS:
            opened.command(statement)
        yield opened
    finally:
        opened.close()


def engine_native(store: Store, sql: str, block_rows: int = 5) -> bytes:
    """`sql` in Native as the query endpoint reads it, in blocks of at most `block_rows` rows."""
    return store.backend.read(store, sql, "Native", {"max_block_size": block_rows}, True)


def stored_tables(store: Store) -> list[str]:
    return [name for (name,) in store.query_rows(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View' "
        "ORDER BY name")]


SEEDED_TABLES = ("spans", "genai_calls", "genai_usage_1m", "genai_usage_1h", "trace_costs",
                 "spans_trace_id_ts", "model_prices", "alerts", "genai_content", "genai_content_access")


def test_every_table_has_rows_to_walk(store: Store) -> None:
    tables = stored_tables(store)
    assert set(SEEDED_TABLES) <= set(tables)
    for table in SEEDED_TABLES:
        ((count,),) = store.query_rows(f"SELECT count() FROM {table}")
        assert count > 0, table


def check_round_trip(data: bytes, decode_aggregate_states: bool = True) -> None:
    blocks = walk_native(data)
    assert blocks, "the query returned rows"
    assert blocks[0].start == 0 and blocks[-1].end == len(data), "the walker consumed every byte"
    assert all(a.end == b.start for a, b in zip(blocks, blocks[1:], strict=False))
    assert adapt_native(data, 0) == data
    if not decode_aggregate_states:
        for revision in (1, 54404, CLICKHOUSE_GO_REVISION, HIGHEST_REVISION):
            assert len(adapt_native(data, revision)) >= len(data)
        return
    expected = reference_rows(data)
    assert expected
    for revision in (1, 54404, CLICKHOUSE_CONNECT_REVISION):  # below 54405 LowCardinality is written out
        assert reference_rows(adapt_native(data, revision), block_info=True) == expected
    for revision in (CLICKHOUSE_GO_REVISION, HIGHEST_REVISION):
        assert rows_at_revision(adapt_native(data, revision), revision) == expected


def two_blocks_of(columns: str, table: str) -> str:
    # A table's small part comes back as one block whatever max_block_size says; a UNION ALL gives two.
    return f"(SELECT {columns} FROM {table} LIMIT 100) UNION ALL (SELECT {columns} FROM {table} LIMIT 3)"


def test_select_star_of_every_table_walks_and_decodes_to_the_same_rows(store: Store) -> None:
    for table in stored_tables(store):
        data = engine_native(store, two_blocks_of("*", table))
        assert len(walk_native(data)) >= 2, table
        columns = walk_native(data)[0].columns
        has_states = any(c.type.startswith("AggregateFunction") for c in columns)
        check_round_trip(data, decode_aggregate_states=not has_states)
        if has_states:
            # clickhouse-connect cannot read aggregate states: compare the other columns' values.
            plain = ", ".join(f"`{c.name}`" for c in columns if not c.type.startswith("AggregateFunction"))
            check_round_trip(engine_native(store, two_blocks_of(plain, table)))


def test_every_column_type_of_every_table_walks(store: Store) -> None:
    for table in stored_tables(store):
        for column, type_name in store.column_types(table).items():
            compile_type(type_name)  # raises NativeFormatError naming the type otherwise
            data = engine_native(store, f"SELECT `{column}` FROM {table} LIMIT 50", block_rows=7)
            assert walk_native(data)[-1].end == len(data) if data else True, (table, column)


@pytest.mark.parametrize("sql", AGGREGATES)
def test_typical_queries_walk_and_decode_to_the_same_rows(store: Store, sql: str) -> None:
    check_round_trip(engine_native(store, sql, block_rows=2))


def test_the_engine_answers_clickhouse_go_handshake_query_itself(store: Store) -> None:
    data = engine_native(store, "SELECT displayName(), version(), revision(), timezone()")
    ((name, version, revision, zone),) = rows_at_revision(adapt_native(data, CLICKHOUSE_GO_REVISION),
                                                          CLICKHOUSE_GO_REVISION)
    assert [c.type for c in walk_native(data)[0].columns] == ["String", "String", "UInt32", "String"]
    assert name and zone
    assert version.count(".") >= 2 and version.split(".")[0].isdigit()
    assert revision > 54000


def test_aggregate_states_of_the_rollups_walk(store: Store) -> None:
    data = engine_native(store, "SELECT DurationMs, TimeToFirstTokenMs FROM genai_usage_1m", block_rows=3)
    blocks = walk_native(data)
    assert blocks[-1].end == len(data)
    assert {c.type for b in blocks for c in b.columns} == {"AggregateFunction(quantileTDigest, Float64)"}
    adapted = adapt_native(data, CLICKHOUSE_GO_REVISION)
    assert len(adapted) == len(data) + len(blocks) * (len(BLOCK_INFO) + 2)


# ---------------------------------------------------------------- hostile input

@pytest.fixture(scope="module")
def mixed_stream(store: Store) -> bytes:
    return engine_native(store, "SELECT TenantId, Timestamp, SpanAttributes, `Events.Attributes`, "
                                "FinishReasons, InputTokens, StatusMessage FROM spans LIMIT 9", block_rows=4)


def test_every_truncation_is_refused_unless_it_falls_between_blocks(mixed_stream: bytes) -> None:
    boundaries = {block.end for block in walk_native(mixed_stream)}
    for cut in range(1, len(mixed_stream)):
        if cut in boundaries:
            assert walk_native(mixed_stream[:cut])[-1].end == cut
            continue
        with pytest.raises(NativeFormatError):
            adapt_native(mixed_stream[:cut], CLICKHOUSE_GO_REVISION)


def test_random_corruption_is_refused_or_walks_never_crashes(mixed_stream: bytes) -> None:
    rng = random.Random(7)
    refused = 0
    for _ in range(400):
        corrupt = bytearray(mixed_stream)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        try:
            blocks = walk_native(bytes(corrupt))
        except NativeFormatError:
            refused += 1
        else:
            assert blocks[-1].end == len(corrupt)
        for revision in (54404, CLICKHOUSE_GO_REVISION):  # written out in full, and copied through
            try:
                adapt_native(bytes(corrupt), revision)
            except NativeFormatError:
                pass
    assert refused > 100


LC_HEADER = b"\x01\x01" + text("l") + text("LowCardinality(String)")  # one row of LowCardinality(String)
HOSTILE = {
    "varint over 64 bits": b"\xff" * 11,
    "rows far beyond the data": b"\x01" + b"\xff" * 8 + b"\x7f" + text("n") + text("UInt64") + b"\x00" * 16,
    "strings far beyond the data": (b"\x01" + b"\xff" * 8 + b"\x7f" + text("s") + text("String")
                                    + b"\x00" * 16),
    "a huge string length": b"\x01\x01" + text("s") + text("String") + b"\xff\xff\xff\xff\x0f",
    "an array ending past the data": b"\x01\x01" + text("a") + text("Array(String)") + b"\xff" * 8 + b"\x00",
    "columns beyond the data": b"\xff\xff\xff\xff\x0f\x01",
    "a type name of a gigabyte": b"\x01\x01" + text("n") + b"\xff\xff\xff\xff\x03" + b"U",
    "a wrong LowCardinality version": LC_HEADER + struct.pack("<Q", 2),
    "a global dictionary": LC_HEADER + struct.pack("<QQ", 1, 0x100),
    "an empty LowCardinality granule": LC_HEADER + struct.pack("<QQQ", 1, 0x600, 0) + struct.pack("<Q", 0),
    "LowCardinality keys beyond the data": LC_HEADER + struct.pack("<QQQ", 1, 0x600, 2**62),
    "t-digest centroids beyond the data": (b"\x01\x01" + text("q")
                                           + text("AggregateFunction(quantileTDigest, Float64)")
                                           + b"\xff\xff\xff\xff\x0f"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bytes_fail_fast_without_allocating(name: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(NativeFormatError):
            adapt_native(HOSTILE[name], CLICKHOUSE_GO_REVISION)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 8 << 20


@pytest.mark.parametrize(("type_name", "named"), [
    ("Foo", "Foo"),
    ("Dynamic", "Dynamic"),
    ("JSON", "JSON"),
    ("Variant(String, UInt64)", "Variant(String, UInt64)"),
    ("Object('json')", "Object('json')"),
    ("AggregateFunction(uniq, UInt64)", "AggregateFunction(uniq, UInt64)"),
    ("AggregateFunction(sumMap, Array(UInt8), Array(UInt8))", "sumMap"),
    ("Decimal(100, 2)", "Decimal(100, 2)"),
    ("FixedString(0)", "FixedString(0)"),
    ("FixedString(-3)", "FixedString(-3)"),
    ("Array(String", "Array(String"),
    ("Tuple(a UInt8,, b String)", "Tuple(a UInt8,, b String)"),
    ("Array(" * 100 + "UInt8" + ")" * 100, "deeper than"),
    ("Map(String, Dynamic)", "Dynamic"),
])
def test_types_that_cannot_be_sized_are_named_in_the_error(type_name: str, named: str) -> None:
    block = b"\x01\x01" + text("c") + text(type_name) + b"\x00" * 64
    with pytest.raises(ValueError, match="column 'c' of type") as caught:
        adapt_native(block, CLICKHOUSE_GO_REVISION)
    assert named in str(caught.value)


@pytest.mark.parametrize("type_name", [
    "Array(Tuple(`a b` LowCardinality(String), c Nullable(DateTime64(9, 'UTC'))))",
    "Nested(a UInt8, b Map(LowCardinality(String), String))",
    "Enum16('a,(b' = 1, 'c\\'d' = 2)",
    "SimpleAggregateFunction(groupUniqArrayArray, Array(String))",
    "AggregateFunction(quantilesTDigest(0.5, 0.9), Float64)",
    "MultiPolygon", "IntervalSecond", "Decimal(76, 10)", "BFloat16", "Time64(3)",
])
def test_less_common_type_names_parse(type_name: str) -> None:
    compile_type(type_name)


def test_walking_a_large_result_is_fast_enough_to_stay_out_of_the_way(store: Store) -> None:
    data = engine_native(store, "SELECT toString(number) AS s, number AS n, [number, 1] AS a, "
                                "toLowCardinality(toString(number % 100)) AS l, "
                                "map('k', toString(number)) AS m "
                                "FROM numbers(200000)", block_rows=65536)
    started = time.perf_counter()
    adapted = adapt_native(data, CLICKHOUSE_GO_REVISION)
    elapsed = time.perf_counter() - started
    assert len(adapted) == len(data) + len(walk_native(data)) * (len(BLOCK_INFO) + 5)
    assert elapsed < 5.0  # about 0.05 s on a developer machine; a generous bound for a shared one
