"""The query endpoint speaks ClickHouse's HTTP interface: clickhouse-connect and plain HTTP read the store
through it in every format, with ClickHouse's headers, error codes and compression."""

from __future__ import annotations

import csv
import gzip
import io
import json
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import lz4.frame
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backports import zstd

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError
from spanhouse.collector.query import clickhouse_http as ch
from spanhouse.collector.query.limits import TooBusy
from spanhouse.collector.query.server import _as_clickhouse_error

from access_harness import Key, auth_overrides, export, span_request
from clickhouse_http_helpers import Reply, call, decode_native, decode_row_binary_with_names_and_types
from collector_harness import RunningCollector, start_collector
from native_readers import CLICKHOUSE_CONNECT_REVISION, CLICKHOUSE_GO_REVISION, rows_at_revision

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)
BY_SERVICE = ("SELECT CAST(ServiceName, 'String') AS service, toUInt32(count()) AS spans FROM spans "
              "GROUP BY service ORDER BY service")
EXPECTED = [("acme-app", 3), ("globex-app", 5)]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = start_collector(tmp_path_factory.mktemp("chttp") / "store", **auth_overrides(ACME, GLOBEX, ADMIN))
    try:
        export(collector.grpc_endpoint, span_request("acme-app", 3), metadata=ACME.metadata)
        export(collector.grpc_endpoint, span_request("globex-app", 5), metadata=GLOBEX.metadata)
        collector.flush()
        yield collector
    finally:
        collector.collector.stop()


def client(running: RunningCollector, key: Key, **kwargs: Any) -> Any:
    host, port = running.query_endpoint.rsplit(":", 1)
    return clickhouse_connect.get_client(host=host, port=int(port), username=key.tenant, password=key.key, **kwargs)


def admin(running: RunningCollector, sql: str | None = None, **kwargs: Any) -> Reply:
    return call(running.query_endpoint, sql, key=ADMIN.key, **kwargs)


# --- clickhouse-connect ---

def test_clickhouse_connect_connects_and_queries(running: RunningCollector) -> None:
    c = client(running, ADMIN)
    assert c.server_version == running.collector.store.query_rows("SELECT version()")[0][0]
    assert c.query(BY_SERVICE).result_rows == EXPECTED
    assert c.command("SELECT count() FROM spans") == 8


def test_clickhouse_connect_binds_parameters_on_the_server(running: RunningCollector) -> None:
    c = client(running, ADMIN)
    result = c.query("SELECT count() AS n, {s:String} AS echo FROM spans WHERE ServiceName = {service:String}",
                     parameters={"service": "globex-app", "s": "tab\there 'quoted' back\\slash"})
    assert result.result_rows == [(5, "tab\there 'quoted' back\\slash")]


def test_clickhouse_connect_reads_arrow_and_dataframes(running: RunningCollector) -> None:
    c = client(running, ADMIN)
    table = c.query_arrow(BY_SERVICE)
    assert table.column("service").to_pylist() == ["acme-app", "globex-app"]
    assert table.column("spans").to_pylist() == [3, 5]
    frame = c.query_df(BY_SERVICE)
    assert list(frame["service"]) == ["acme-app", "globex-app"] and list(frame["spans"]) == [3, 5]


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", "deflate", False])
def test_clickhouse_connect_with_each_compression(running: RunningCollector, compress: Any) -> None:
    assert client(running, ADMIN, compress=compress).query(BY_SERVICE).result_rows == EXPECTED


def test_clickhouse_connect_writes_are_refused_as_readonly(running: RunningCollector) -> None:
    c = client(running, ADMIN)
    with pytest.raises(DatabaseError) as dropped:
        c.command("DROP TABLE spans")
    assert dropped.value.code == 164 and "readonly" in str(dropped.value)
    with pytest.raises(DatabaseError) as inserted:
        c.insert("spans", [["injected"]], column_names=["SpanName"])
    assert inserted.value.code == 164
    assert running.query("SELECT count() FROM spans WHERE SpanName = 'injected'") == [(0,)]
    assert running.query("EXISTS TABLE spans") == [(1,)]


# --- every format over plain HTTP ---

def _tsv(body: bytes) -> list[list[str]]:
    return [line.split("\t") for line in body.decode().splitlines()]


def _arrow_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return list(zip(table.column("service").to_pylist(), table.column("spans").to_pylist()))


DECODERS = {
    "TabSeparated": lambda b: [(s, int(n)) for s, n in _tsv(b)],
    "TabSeparatedWithNames": lambda b: (_tsv(b)[0], [(s, int(n)) for s, n in _tsv(b)[1:]]),
    "TabSeparatedWithNamesAndTypes": lambda b: (_tsv(b)[:2], [(s, int(n)) for s, n in _tsv(b)[2:]]),
    "CSVWithNames": lambda b: (lambda r: (r[0], [(s, int(n)) for s, n in r[1:]]))(list(csv.reader(io.StringIO(b.decode())))),
    "JSON": lambda b: [(row["service"], row["spans"]) for row in json.loads(b)["data"]],
    "JSONCompact": lambda b: [tuple(row) for row in json.loads(b)["data"]],
    "JSONEachRow": lambda b: [(json.loads(line)["service"], json.loads(line)["spans"]) for line in b.splitlines()],
    "Arrow": lambda b: _arrow_rows(pa.ipc.open_file(pa.BufferReader(b)).read_all()),
    "ArrowStream": lambda b: _arrow_rows(pa.ipc.open_stream(pa.BufferReader(b)).read_all()),
    "Parquet": lambda b: _arrow_rows(pq.read_table(pa.BufferReader(b))),
    "Native": decode_native,
    "RowBinaryWithNamesAndTypes": decode_row_binary_with_names_and_types,
    # The formats `spanhouse query` has always asked for on /query, here through ClickHouse's interface too.
    "TSVWithNames": lambda b: (_tsv(b)[0], [(s, int(n)) for s, n in _tsv(b)[1:]]),
    "PrettyCompact": lambda b: [(cells[1], int(cells[2])) for cells in  # "1. │ acme-app │ 3 │": row number first
                                ([c.strip() for c in line.split("│")] for line in b.decode().splitlines()[1:-1])],
}
NAMES = ["service", "spans"]
DECODED = {
    "TabSeparatedWithNames": (NAMES, EXPECTED),
    "TSVWithNames": (NAMES, EXPECTED),
    "TabSeparatedWithNamesAndTypes": ([NAMES, ["String", "UInt32"]], EXPECTED),
    "CSVWithNames": (NAMES, EXPECTED),
    "Native": (NAMES, ["String", "UInt32"], EXPECTED),
    "RowBinaryWithNamesAndTypes": (NAMES, ["String", "UInt32"], EXPECTED),
}


@pytest.mark.parametrize("fmt", list(DECODERS))
def test_each_format_decodes_to_the_rows(running: RunningCollector, fmt: str) -> None:
    reply = admin(running, BY_SERVICE, params={"default_format": fmt})
    assert reply.status == 200, reply.body[:300]
    assert reply.header("X-ClickHouse-Format") == fmt
    assert reply.header("Content-Type") == ch.FORMATS[fmt]
    assert DECODERS[fmt](reply.body) == DECODED.get(fmt, EXPECTED)


@pytest.mark.parametrize("fmt", ["Native", "RowBinaryWithNamesAndTypes", "Parquet", "JSONCompact"])
def test_the_bytes_are_the_engines_own(running: RunningCollector, fmt: str) -> None:
    store = running.collector.store
    own = store.backend.read(store, BY_SERVICE, fmt, {}, True)
    reply = admin(running, BY_SERVICE, params={"default_format": fmt})
    if fmt == "JSONCompact":  # statistics hold the elapsed time: compare everything else
        assert {k: v for k, v in json.loads(reply.body).items() if k != "statistics"} == \
            {k: v for k, v in json.loads(own).items() if k != "statistics"}
    elif fmt == "Parquet":
        assert pq.read_table(pa.BufferReader(reply.body)).equals(pq.read_table(pa.BufferReader(own)))
    else:
        assert reply.body == own


def test_the_statements_own_format_wins_then_default_format_then_tab_separated(running: RunningCollector) -> None:
    own = admin(running, "SELECT 1 AS a FORMAT JSONEachRow", params={"default_format": "CSV"})
    assert (own.header("X-ClickHouse-Format"), own.text) == ("JSONEachRow", '{"a":1}\n')
    default = admin(running, "SELECT 1 AS a", params={"default_format": "CSVWithNames"})
    assert (default.header("X-ClickHouse-Format"), default.text) == ("CSVWithNames", '"a"\n1\n')
    plain = admin(running, "SELECT 'x' AS a, 2 AS b")
    assert (plain.header("X-ClickHouse-Format"), plain.text) == ("TabSeparated", "x\t2\n")
    # A string that reads like a FORMAT clause is not one.
    quoted = admin(running, "SELECT 'FORMAT JSON' AS a")
    assert (quoted.header("X-ClickHouse-Format"), quoted.text) == ("TabSeparated", "FORMAT JSON\n")


def test_a_format_outside_the_list_is_refused(running: RunningCollector) -> None:
    reply = admin(running, "SELECT 1 FORMAT Template")
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (404, "73")
    assert "UNKNOWN_FORMAT" in reply.text and "JSONEachRow" in reply.text


# --- how the query arrives ---

def test_get_with_the_query_in_the_url(running: RunningCollector) -> None:
    reply = admin(running, method="GET", params={"query": BY_SERVICE, "default_format": "JSONCompact"})
    assert reply.status == 200 and [tuple(r) for r in json.loads(reply.body)["data"]] == EXPECTED


def test_the_url_query_and_the_body_are_joined(running: RunningCollector) -> None:
    reply = admin(running, "FROM spans WHERE ServiceName = 'acme-app'", params={"query": "SELECT count()"})
    assert (reply.status, reply.text) == (200, "3\n")


def test_ping_and_bare_get(running: RunningCollector) -> None:
    assert call(running.query_endpoint, method="GET", headers={}).text == "Ok.\n"
    host, port = running.query_endpoint.rsplit(":", 1)
    import http.client

    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/ping")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"Ok.\n")
    conn.request("HEAD", "/ping")
    head = conn.getresponse()
    assert (head.status, head.getheader("Content-Length"), head.read()) == (200, "4", b"")
    conn.request("HEAD", "/?query=SELECT%201")  # a query is never run by HEAD
    assert conn.getresponse().status == 404
    conn.close()


def test_session_and_database_parameters(running: RunningCollector) -> None:
    ok = admin(running, "SELECT currentDatabase()", params={"session_id": "s-1", "database": "default"})
    assert (ok.status, ok.text) == (200, "default\n")
    other = admin(running, "SELECT 1", params={"database": "elsewhere"})
    assert (other.status, other.header("X-ClickHouse-Exception-Code")) == (404, "81")


def test_query_parameters_from_the_url(running: RunningCollector) -> None:
    reply = admin(running, "SELECT count() FROM spans WHERE ServiceName = {svc:String} AND {n:UInt8} = 7",
                  params={"param_svc": "globex-app", "param_n": "7"})
    assert (reply.status, reply.text) == (200, "5\n")
    missing = admin(running, "SELECT {svc:String}")
    assert missing.header("X-ClickHouse-Exception-Code") == "456" and "UNKNOWN_QUERY_PARAMETER" in missing.text


def test_native_for_a_client_revision_is_what_a_server_writes_for_it(running: RunningCollector) -> None:
    request = ch.parse_request({"query": ["SELECT 1"], "client_protocol_version": ["54460"]}, None)
    assert request.client_protocol_version == 54460
    plain = admin(running, BY_SERVICE, params={"default_format": "Native", "client_protocol_version": "0"})
    assert decode_native(plain.body)[2] == EXPECTED
    # clickhouse-go (Grafana's plugin) over HTTP: its handshake, then LowCardinality columns as stored.
    go = {"default_format": "Native", "client_protocol_version": str(CLICKHOUSE_GO_REVISION)}
    handshake = call(running.query_endpoint, "SELECT displayName(), version(), revision(), timezone()",
                     key=ACME.key, params=go)
    ((_, version, revision, zone),) = rows_at_revision(handshake.body, CLICKHOUSE_GO_REVISION)
    assert version == running.collector.store.query_rows("SELECT version()")[0][0] and revision > 54460 and zone
    rows = rows_at_revision(admin(running, "SELECT ServiceName, count() FROM spans GROUP BY ServiceName "
                                           "ORDER BY ServiceName", params=go).body, CLICKHOUSE_GO_REVISION)
    assert rows == EXPECTED
    bad = admin(running, "SELECT 1", params={"client_protocol_version": "x"})
    assert (bad.status, bad.header("X-ClickHouse-Exception-Code")) == (400, "408")


def test_clickhouse_connect_negotiates_block_headers_and_reads_low_cardinality(running: RunningCollector) -> None:
    c = client(running, ACME)
    assert c.protocol_version == CLICKHOUSE_CONNECT_REVISION  # its probe found a server's BlockInfo form
    assert c.query("SELECT ServiceName, count() FROM spans GROUP BY ServiceName").result_rows == [("acme-app", 3)]


# --- headers ---

def test_reply_headers(running: RunningCollector) -> None:
    query_id = f"q-{uuid.uuid4()}"
    reply = admin(running, BY_SERVICE, params={"query_id": query_id})
    assert reply.header("X-ClickHouse-Query-Id") == query_id
    assert reply.header("X-ClickHouse-Timezone") == running.collector.store.query_rows("SELECT timezone()")[0][0]
    assert reply.header("X-ClickHouse-Server-Display-Name") == "spanhouse"
    summary = json.loads(reply.header("X-ClickHouse-Summary"))
    assert set(summary) == {"read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read",
                            "result_rows", "result_bytes", "elapsed_ns"}
    assert summary["result_rows"] == "2" and int(summary["read_rows"]) >= 8
    assert summary["result_bytes"] == str(len(reply.body)) and summary["written_rows"] == "0"
    assert int(summary["elapsed_ns"]) > 0
    generated = admin(running, "SELECT 1").header("X-ClickHouse-Query-Id")
    assert uuid.UUID(generated)


# --- errors ---

@pytest.mark.parametrize("sql, params, status, code, name", [
    ("SELECT * FROM no_such_table", {}, 404, 60, "UNKNOWN_TABLE"),
    ("SELEC 1", {}, 400, 62, "SYNTAX_ERROR"),
    ("SELECT 1; SELECT 2", {}, 400, 62, "SYNTAX_ERROR"),
    ("DROP TABLE spans", {}, 403, 164, "READONLY"),
    ("INSERT INTO spans (SpanName) FORMAT TabSeparated\ninjected", {}, 403, 164, "READONLY"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", {}, 403, 497, "ACCESS_DENIED"),
    ("SELECT throwIf(1, 'stop here')", {}, 500, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
    ("SELECT count() FROM numbers(1e13)", {"max_execution_time": "0.3"}, 500, 159, "TIMEOUT_EXCEEDED"),
    ("SELECT number FROM numbers(10)", {"max_result_rows": "3"}, 500, 396, "TOO_MANY_ROWS_OR_BYTES"),
], ids=lambda v: v if isinstance(v, str) and v.isupper() else None)
def test_errors_read_as_clickhouse_sends_them(running: RunningCollector, sql: str, params: dict[str, str],
                                              status: int, code: int, name: str) -> None:
    reply = admin(running, sql, params=params)
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (status, str(code)), reply.text
    version = running.collector.store.query_rows("SELECT version()")[0][0]
    assert reply.text.startswith(f"Code: {code}. DB::Exception: ")
    assert reply.text.endswith(f". ({name}) (version {version})\n")
    assert reply.header("X-ClickHouse-Query-Id")


def test_credentials_errors(running: RunningCollector) -> None:
    wrong = call(running.query_endpoint, "SELECT 1", key="shk_not_a_key")
    assert (wrong.status, wrong.header("X-ClickHouse-Exception-Code")) == (403, "516")
    assert "AUTHENTICATION_FAILED" in wrong.text and "shk_not_a_key" not in wrong.text
    missing = call(running.query_endpoint, "SELECT 1")
    assert (missing.status, missing.header("X-ClickHouse-Exception-Code")) == (401, "194")
    assert missing.header("WWW-Authenticate").startswith("Basic")
    twice = call(running.query_endpoint, "SELECT 1", key=ADMIN.key, headers={"X-ClickHouse-Key": ADMIN.key})
    assert (twice.status, twice.header("X-ClickHouse-Exception-Code")) == (403, "516")


def test_too_busy_is_too_many_simultaneous_queries() -> None:
    error = _as_clickhouse_error(TooBusy("this caller already runs 2 queries"))
    assert (error.code, error.name, int(error.status)) == (202, "TOO_MANY_SIMULTANEOUS_QUERIES", 503)


# --- settings ---

def test_output_settings_apply(running: RunningCollector) -> None:
    quoted = admin(running, "SELECT toUInt64(7) AS n", params={"default_format": "JSONEachRow",
                                                              "output_format_json_quote_64bit_integers": "1"})
    assert quoted.text == '{"n":"7"}\n'
    plain = admin(running, "SELECT toUInt64(7) AS n", params={"default_format": "JSONEachRow",
                                                             "output_format_json_quote_64bit_integers": "0"})
    assert plain.text == '{"n":7}\n'
    iso = admin(running, "SELECT toDateTime('2026-01-02 03:04:05', 'UTC')",
                params={"date_time_output_format": "iso"})
    assert iso.text == "2026-01-02T03:04:05Z\n"


@pytest.mark.parametrize("setting, value", [
    ("max_result_rows", "1000000000000"),  # higher than query.max_result_rows
    ("max_execution_time", "-1"),
    ("max_memory_usage", "lots"),
    ("readonly", "0"),
    ("additional_table_filters", "{}"),
    ("output_format_schema", "/tmp/schema.capnp"),  # would write a file on the host
    ("allow_ddl", "1"),
])
def test_settings_that_would_raise_a_limit_or_change_access_are_refused(running: RunningCollector, setting: str,
                                                                        value: str) -> None:
    reply = admin(running, "SELECT 1", params={setting: value})
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (403, "164"), reply.text
    assert setting in reply.text


def test_transport_parameters_clients_always_send_are_accepted(running: RunningCollector) -> None:
    reply = admin(running, "SELECT 1", params={"wait_end_of_query": "1", "send_progress_in_http_headers": "1",
                                               "http_headers_progress_interval_ms": "110000",
                                               "cancel_http_readonly_queries_on_client_close": "1",
                                               "readonly": "1"})
    assert (reply.status, reply.text) == (200, "1\n")


def test_a_limit_of_0_keeps_the_endpoints_own(running: RunningCollector) -> None:
    # ClickHouse's 0 is "no limit"; here it leaves query.max_result_rows (1000000) in force.
    fine = admin(running, "SELECT count() FROM numbers(10)", params={"max_result_rows": "0"})
    assert (fine.status, fine.text) == (200, "10\n")
    over = admin(running, "SELECT number FROM numbers(1000001)", params={"max_result_rows": "0"})
    assert over.header("X-ClickHouse-Exception-Code") == "396" and "query.max_result_rows" in over.text


# --- compression ---

ENCODERS = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstd.compress, "lz4": lz4.frame.compress}
DECOMPRESS = {"gzip": gzip.decompress, "deflate": zlib.decompress, "zstd": zstd.decompress,
              "lz4": lz4.frame.decompress}


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_compressed_request_bodies(running: RunningCollector, encoding: str) -> None:
    reply = admin(running, body=ENCODERS[encoding](BY_SERVICE.encode()), headers={"Content-Encoding": encoding},
                  params={"default_format": "JSONCompact"})
    assert reply.status == 200, reply.text
    assert [tuple(r) for r in json.loads(reply.body)["data"]] == EXPECTED


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_compressed_responses(running: RunningCollector, encoding: str) -> None:
    reply = admin(running, BY_SERVICE, params={"enable_http_compression": "1"},
                  headers={"Accept-Encoding": f"{encoding}, identity"})
    assert reply.header("Content-Encoding") == encoding
    assert DECOMPRESS[encoding](reply.body) == b"acme-app\t3\nglobex-app\t5\n"


def test_responses_stay_plain_without_enable_http_compression(running: RunningCollector) -> None:
    reply = admin(running, BY_SERVICE, headers={"Accept-Encoding": "gzip"})
    assert reply.header("Content-Encoding") == "" and reply.body == b"acme-app\t3\nglobex-app\t5\n"


def test_a_body_that_inflates_past_the_cap_is_refused(running: RunningCollector) -> None:
    bomb = gzip.compress(b"SELECT 1 -- " + b" " * (4 << 20))  # 4 MiB of spaces in a few KiB
    reply = admin(running, body=bomb, headers={"Content-Encoding": "gzip"})
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (413, "229")
    assert "after decompression" in reply.text


@pytest.mark.parametrize("body, encoding, code", [
    (b"not gzip at all", "gzip", "271"),
    (b"SELECT 1", "compress", "89"),
])
def test_bad_encodings_are_named(running: RunningCollector, body: bytes, encoding: str, code: str) -> None:
    reply = admin(running, body=body, headers={"Content-Encoding": encoding})
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (400, code), reply.text


def test_native_block_compression_is_refused_with_what_to_use(running: RunningCollector) -> None:
    reply = admin(running, "SELECT 1", params={"compress": "1"})
    assert reply.header("X-ClickHouse-Exception-Code") == "48" and "Content-Encoding" in reply.text


def test_keep_alive_serves_several_requests_on_one_connection(running: RunningCollector) -> None:
    import http.client

    host, port = running.query_endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for n in range(3):
            assert admin(running, f"SELECT {n}", connection=conn).text == f"{n}\n"
        assert admin(running, "SELEC", connection=conn).status == 400  # an error keeps the connection usable
        assert admin(running, "SELECT 9", connection=conn).text == "9\n"
    finally:
        conn.close()


def test_the_old_query_path_is_unchanged(running: RunningCollector) -> None:
    from access_harness import http

    status, body = http(running.query_endpoint, "/query", "SELECT count() FROM spans", key=ADMIN.key)
    assert (status, json.loads(body)["data"]) == (200, [[8]])
    status, body = http(running.query_endpoint, "/query", "DROP TABLE spans", key=ADMIN.key)
    assert status == 403 and "read-only" in body


def test_the_python_example_in_the_docs_runs(running: RunningCollector) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "queries.md").read_text()
    section = doc[doc.index("## Any ClickHouse client"):]
    example = section[section.index("```python\n") + len("```python\n"):]
    example = example[:example.index("```")]
    host, port = running.query_endpoint.rsplit(":", 1)
    assert 'host="127.0.0.1", port=4319' in example
    code = example.replace('host="127.0.0.1", port=4319', f'host="{host}", port={port}')
    namespace: dict[str, Any] = {"KEY": ACME.key}
    exec(compile(code, "docs/queries.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["client"].query("SELECT count() FROM spans").result_rows == [(3,)]


def test_a_limit_the_request_lowered_is_named_as_the_requests(running: RunningCollector) -> None:
    reply = admin(running, "SELECT number FROM numbers(10)", params={"max_result_rows": "3"})
    assert reply.header("X-ClickHouse-Exception-Code") == "396"
    assert "the limit the request set (max_result_rows = 3)" in reply.text


def test_a_query_id_that_could_split_the_reply_is_not_echoed(running: RunningCollector) -> None:
    reply = admin(running, "SELECT 1", params={"query_id": "q\r\nX-Injected: yes"})
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (400, "408")
    assert reply.header("X-Injected") == "" and uuid.UUID(reply.header("X-ClickHouse-Query-Id"))


def test_a_chunked_request_body(running: RunningCollector) -> None:
    import http.client

    host, port = running.query_endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        chunks = iter([b"SELECT count() ", b"FROM spans ", b"WHERE ServiceName = 'globex-app'"])
        conn.request("POST", "/", body=chunks, encode_chunked=True, headers={
            "X-ClickHouse-Key": ADMIN.key, "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"5\n")
        conn.request("POST", "/", body=b"SELECT 2", headers={"X-ClickHouse-Key": ADMIN.key})
        assert conn.getresponse().read() == b"2\n"  # the connection is still in step
    finally:
        conn.close()


def test_an_unauthenticated_post_is_answered_without_reading_its_body(running: RunningCollector) -> None:
    reply = call(running.query_endpoint, body=b"SELECT 1" * 1000)
    assert (reply.status, reply.header("Connection")) == (401, "close")


@pytest.mark.parametrize("size_line", [b"-5", b"0x10", b"zz", b""])
def test_a_malformed_chunk_size_is_refused(running: RunningCollector, size_line: bytes) -> None:
    import socket

    host, port = running.query_endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-ClickHouse-Key: " +
                     ADMIN.key.encode() + b"\r\n\r\n" + size_line + b"\r\nSELECT 1\r\n0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ") and b"X-ClickHouse-Exception-Code: 408" in reply


def test_long_parameters_go_as_a_form_and_are_bound(running: RunningCollector) -> None:
    # Past 4 KiB of parameters clickhouse-connect sends the query and its parameters as multipart form fields.
    names = [f"service-{i:05d}" for i in range(600)] + ["globex-app"]
    c = client(running, ADMIN)
    assert c.query("SELECT count() FROM spans WHERE ServiceName IN {names:Array(String)}",
                   parameters={"names": names}).result_rows == [(5,)]


def test_an_uploaded_file_is_refused_as_external_data(running: RunningCollector) -> None:
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nSELECT 1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"t\"; filename=\"t.tsv\"\r\n\r\n1\r\n"
            f"--{boundary}--\r\n").encode()
    reply = admin(running, body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.header("X-ClickHouse-Exception-Code") == "48" and "external data" in reply.text


def test_a_caller_past_its_slots_gets_too_many_simultaneous_queries(running: RunningCollector) -> None:
    import threading
    import time

    slots = running.collector.query_server._server.policy.slots
    slow = "SELECT sleepEachRow(0.1) FROM numbers(20) FORMAT Null"  # 2 s, one block, no CPU
    replies: list[Reply] = []
    threads = [threading.Thread(target=lambda: replies.append(admin(running, slow))) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while slots.running() < 2:  # both slow queries hold a slot (query.max_concurrent_per_caller = 2)
        assert time.monotonic() < deadline, "the slow queries never started"
        time.sleep(0.01)
    busy = admin(running, "SELECT 1")
    for thread in threads:
        thread.join(60)
    assert (busy.status, busy.header("X-ClickHouse-Exception-Code")) == (503, "202")
    assert "TOO_MANY_SIMULTANEOUS_QUERIES" in busy.text and "query.max_concurrent_per_caller" in busy.text
    assert [r.status for r in replies] == [200, 200]
    assert admin(running, "SELECT 1").text == "1\n"


@pytest.mark.parametrize("encoding", ["gzip", "zstd", "lz4", "deflate"])
def test_a_truncated_compressed_body_is_refused(running: RunningCollector, encoding: str) -> None:
    whole = ENCODERS[encoding](BY_SERVICE.encode())
    reply = admin(running, body=whole[:len(whole) // 2], headers={"Content-Encoding": encoding})
    assert (reply.status, reply.header("X-ClickHouse-Exception-Code")) == (400, "271"), reply.text


def test_parameter_values_are_unescaped_for_a_server_store() -> None:
    # A ClickHouse server store gets parameters through clickhouse-connect, which escapes them again.
    from spanhouse.collector.store.backends import unescape_text

    assert unescape_text(r"tab\there new\nline back\\slash quote\' plain\q") == "tab\there new\nline back\\slash quote' plainq"
