"""The read-only query endpoint and `spanhouse query`: through the collector, or straight to the store."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanhouse.collector import cli

from access_harness import export, span_request
from collector_harness import RunningCollector, free_port, start_collector
from test_cli import CollectorProcess, http_post, run_cli

def send_spans(endpoint: str, service: str, count: int) -> None:
    response = export(endpoint, span_request(service, count))
    assert not response.HasField("partial_success")


def post(endpoint: str, sql: str, path: str = "/query") -> tuple[int, str]:
    request = urllib.request.Request(f"http://{endpoint}{path}", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get(endpoint: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{endpoint}{path}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# --- the endpoint, in process -----------------------------------------------------------------


@pytest.fixture
def with_spans(running_collector: RunningCollector) -> RunningCollector:
    send_spans(running_collector.grpc_endpoint, "query-test", 3)
    running_collector.flush()
    return running_collector


def test_select_returns_rows(with_spans: RunningCollector) -> None:
    status, body = post(with_spans.query_endpoint, "SELECT ServiceName, count() AS n FROM spans GROUP BY ServiceName")
    assert status == 200
    assert json.loads(body)["data"] == [["query-test", 3]]


@pytest.mark.parametrize("fmt, expected", [
    ("CSVWithNames", '"n"\n3\n'),
    ("JSONEachRow", '{"n":3}\n'),
    ("TabSeparatedWithNames", "n\n3\n"),
])
def test_output_format_is_chosen_by_query_parameter(with_spans: RunningCollector, fmt: str, expected: str) -> None:
    assert post(with_spans.query_endpoint, "SELECT count() AS n FROM spans", f"/query?format={fmt}") == (200, expected)


@pytest.mark.parametrize("sql", [
    "SHOW TABLES",
    "DESCRIBE TABLE spans",
    "EXISTS TABLE spans",
    "EXPLAIN SELECT 1",
    "WITH 2 AS x SELECT x * 2",
    "SELECT 1 UNION ALL SELECT 2",
    "SELECT 1;",
    "SELECT 'INTO OUTFILE' AS s",  # only the clause is refused, not the words in a string
])
def test_other_read_only_statements_are_allowed(running_collector: RunningCollector, sql: str) -> None:
    status, body = post(running_collector.query_endpoint, sql)
    assert status == 200, body


@pytest.mark.parametrize("sql, message", [
    ("INSERT INTO spans (TenantId, SpanName) VALUES ('t', 'injected')", "this statement is InsertQuery"),
    ("INSERT INTO FUNCTION file('x.csv', 'CSV') SELECT 1", "this statement is InsertQuery"),
    ("DROP TABLE spans", "this statement is DropQuery"),
    ("TRUNCATE TABLE spans", "this statement is TruncateQuery"),
    ("ALTER TABLE spans DELETE WHERE 1", "this statement is AlterQuery"),
    ("CREATE TABLE t (x UInt8) ENGINE = Memory", "this statement is CreateQuery"),
    ("RENAME TABLE spans TO spans_old", "this statement is Rename"),
    ("OPTIMIZE TABLE spans FINAL", "this statement is OptimizeQuery"),
    ("SYSTEM DROP DNS CACHE", "this statement is SYSTEM"),
    ("SET max_threads = 1", "this statement is Set"),
    ("SELECT 1; DROP TABLE spans", "send one SQL statement at a time"),
    ("SELECT count() FROM spans; SELECT 2", "send one SQL statement at a time"),
    ("SELECT * FROM spans INTO OUTFILE '{outfile}'", "INTO OUTFILE would write a file"),
])
def test_statements_that_change_anything_are_refused_with_403(
        with_spans: RunningCollector, tmp_path: Path, sql: str, message: str) -> None:
    outfile = tmp_path / "leak.csv"
    status, body = post(with_spans.query_endpoint, sql.format(outfile=outfile))
    assert status == 403
    assert message in body
    assert "read-only" in body or "one SQL statement" in body or "OUTFILE" in body
    assert not outfile.exists()
    assert with_spans.query("SELECT count() FROM spans") == [(3,)]
    assert with_spans.query("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                            "AND name IN ('spans', 't', 'spans_old')") == [(1,)]


@pytest.mark.parametrize("sql, message", [
    ("SELEC 1", "Syntax error"),
    ("SELECT FROM WHERE", "Syntax error"),
    ("SELECT * FROM no_such_table", "UNKNOWN_TABLE"),
    ("SELECT no_such_column FROM spans", "UNKNOWN_IDENTIFIER"),
])
def test_bad_sql_returns_clickhouse_message_with_400(running_collector: RunningCollector, sql: str,
                                                     message: str) -> None:
    status, body = post(running_collector.query_endpoint, sql)
    assert status == 400
    assert message in body


@pytest.mark.parametrize("path, body, status, message", [
    ("/query", "", 400, "send one SQL statement"),
    ("/query?format=XML", "SELECT 1", 400, "format must be one of"),
    ("/nope", "SELECT 1", 404, "unknown path"),
])
def test_malformed_query_requests(running_collector: RunningCollector, path: str, body: str, status: int,
                                  message: str) -> None:
    got_status, got_body = post(running_collector.query_endpoint, body, path)
    assert (got_status, message in got_body) == (status, True)


def test_health_stats_and_flush(running_collector: RunningCollector) -> None:
    endpoint = running_collector.query_endpoint
    assert get(endpoint, "/health") == (200, "ok\n")
    send_spans(running_collector.grpc_endpoint, "stats", 2)
    assert post(endpoint, "", "/flush") == (200, "flushed\n")
    status, body = get(endpoint, "/stats")
    assert status == 200
    stats = json.loads(body)
    assert stats["spans_accepted_total"] == 2
    assert stats["writer_spans_written_total"] == 2
    assert stats["writer_spans_pending"] == 0


# --- `spanhouse query` with and without a collector -------------------------------------------


@pytest.fixture(scope="module")
def collector_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A `spanhouse collector` child process that owns an embedded store holding 5 spans."""
    process = CollectorProcess(tmp_path_factory.mktemp("owned") / "store", "127.0.0.1:0")
    try:
        send_spans(process.grpc_endpoint, "owned", 5)
        http_post(process.query_endpoint, "/flush", b"")
        yield process
    finally:
        process.stop()


def test_query_goes_through_the_collector_that_owns_the_store(collector_process: CollectorProcess) -> None:
    result = run_cli("query", "--store", collector_process.store_url, "--format", "csv",
                     "SELECT ServiceName, count() FROM spans GROUP BY ServiceName",
                     env={"SPANHOUSE_QUERY__ENDPOINT": collector_process.query_endpoint})
    assert (result.returncode, result.stdout, result.stderr) == (
        0, '"ServiceName","count()"\n"owned",5\n',
        f"spanhouse: answered by the collector at {collector_process.query_endpoint} "
        f"(store {collector_process.store_url})\n")


def test_query_through_the_collector_refuses_writes(collector_process: CollectorProcess) -> None:
    result = run_cli("query", "--store", collector_process.store_url, "DROP TABLE spans",
                     env={"SPANHOUSE_QUERY__ENDPOINT": collector_process.query_endpoint})
    assert result.returncode == 1
    assert "only read-only statements" in result.stderr
    assert http_post(collector_process.query_endpoint, "/query?format=CSVWithNames",
                     b"SELECT count() FROM spans") == b'"count()"\n5\n'


@pytest.mark.parametrize("endpoint, reason", [
    ("", "query.endpoint is disabled"),
    (f"127.0.0.1:{free_port()}", "no collector answered on the query endpoint"),
])
def test_query_on_a_held_store_without_an_endpoint_fails_clearly(
        collector_process: CollectorProcess, endpoint: str, reason: str) -> None:
    result = run_cli("query", "--store", collector_process.store_url, "SELECT count() FROM spans",
                     env={"SPANHOUSE_QUERY__ENDPOINT": endpoint})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "is in use by another process" in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert collector_process.proc.poll() is None


def test_query_opens_a_free_store_directly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    running = start_collector(tmp_path / "store")
    send_spans(running.grpc_endpoint, "direct", 4)
    assert running.collector.stop() == 0
    # the collector's endpoint is gone (same address, nobody listening): the store is opened directly
    args = ["query", "--store", running.store_url, "--format", "csv", "SELECT count() FROM spans"]
    os.environ["SPANHOUSE_QUERY__ENDPOINT"] = running.query_endpoint
    try:
        assert cli.main(args) == 0
    finally:
        del os.environ["SPANHOUSE_QUERY__ENDPOINT"]
    assert capsys.readouterr().out == '"count()"\n4\n'


def test_query_never_creates_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANHOUSE_QUERY__ENDPOINT", "")
    typo = tmp_path / "fresh"
    assert cli.main(["query", "--store", f"chdb://{typo}", "--format", "csv", "SELECT count() FROM genai_calls"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"no store at {typo} (the directory does not exist)" in err
    assert "--store" in err and "--config" in err and "spanhouse collector" in err
    assert not typo.exists()
