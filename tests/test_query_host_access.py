"""No caller of the query endpoint reaches the collector's host: files, URLs, other servers, processes.

Every case goes through the real endpoint (HTTP, embedded store) for the keyless local caller and for
an admin key; tenant keys have their own table in test_access_query.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


from access_harness import Key, auth_overrides, export, http, span_request
from collector_harness import RunningCollector, start_collector

ADMIN = Key.new("ops", admin=True)
ACME = Key.new("acme")
REFUSED_FUNCTION = "is not available through the query endpoint"


class _Target(BaseHTTPRequestHandler):
    """A loopback HTTP server that counts requests: a URL table function must never reach it."""
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"reached\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=["no key", "admin key"])
def caller(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCollector, str | None]]:
    """A collector without API keys (any local process may query) or with an admin and a tenant key.

    One embedded engine per process: pytest finishes one parameter's collector before the next starts.
    """
    keyed = request.param == "admin key"
    running = start_collector(tmp_path_factory.mktemp("hostaccess") / "store",
                              **(auth_overrides(ADMIN, ACME) if keyed else {}))
    try:
        export(running.grpc_endpoint, span_request("app", 2), metadata=ACME.metadata if keyed else None)
        running.flush()
        yield running, ADMIN.key if keyed else None
    finally:
        running.collector.stop()


# (SQL, what the refusal must say); {url} is a loopback server that counts the requests reaching it.
HOST_ACCESS = [
    ("SELECT * FROM file('/etc/passwd', 'LineAsString') LIMIT 2", "table function file()"),
    ("SELECT * FROM FILE('/etc/passwd', 'LineAsString')", "table function FILE()"),
    ("SELECT * FROM `file`('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT * FROM /* hidden */ file /* again */ ('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT * FROM -- comment\n file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT * FROM url('{url}', 'LineAsString')", "table function url()"),
    ("SELECT * FROM urlCluster('default', '{url}', 'LineAsString')", "table function urlCluster()"),
    ("SELECT * FROM s3('{url}', 'LineAsString')", "table function s3()"),
    ("SELECT * FROM s3Cluster('default', '{url}', 'LineAsString')", "table function s3Cluster()"),
    ("SELECT * FROM gcs('{url}', 'LineAsString')", "table function gcs()"),
    ("SELECT * FROM hdfs('hdfs://127.0.0.1:9000/x', 'LineAsString')", "table function hdfs()"),
    ("SELECT * FROM azureBlobStorage('{url}', 'c', 'b')", "table function azureBlobStorage()"),
    ("SELECT * FROM remote('127.0.0.1:9000', system.one)", "table function remote()"),
    ("SELECT * FROM remoteSecure('127.0.0.1:9440', system.one)", "table function remoteSecure()"),
    ("SELECT * FROM cluster('default', system.one)", "table function cluster()"),
    ("SELECT * FROM clusterAllReplicas('default', system.one)", "table function clusterAllReplicas()"),
    ("SELECT * FROM mysql('127.0.0.1:3306', 'd', 't', 'u', 'p')", "table function mysql()"),
    ("SELECT * FROM postgresql('127.0.0.1:5432', 'd', 't', 'u', 'p')", "table function postgresql()"),
    ("SELECT * FROM mongodb('127.0.0.1:27017', 'd', 'c', 'u', 'p', 'x String')", "table function mongodb()"),
    ("SELECT * FROM redis('127.0.0.1:6379', 'k', 'k String')", "table function redis()"),
    ("SELECT * FROM jdbc('jdbc:x', 't')", "table function jdbc()"),
    ("SELECT * FROM odbc('DSN=x', 't')", "table function odbc()"),
    ("SELECT * FROM sqlite('/etc/x.db', 't')", "table function sqlite()"),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", "table function executable()"),
    ("SELECT * FROM input('x String')", "table function input()"),
    ("SELECT * FROM filesystem('/etc')", "table function filesystem()"),
    ("SELECT * FROM python(globals)", "table function python()"),
    ("SELECT * FROM dictionary('d')", "table function dictionary()"),
    ("SELECT * FROM icebergLocal('/etc')", "table function icebergLocal()"),
    ("SELECT * FROM deltaLakeLocal('/etc')", "table function deltaLakeLocal()"),
    ("SELECT * FROM format(CSV, 'x String', '1')", "table function format()"),
    # bypass shapes: the table function hidden inside another construct
    ("SELECT count() FROM spans WHERE SpanName IN (SELECT * FROM file('/etc/passwd', 'LineAsString'))",
     "table function file()"),
    ("SELECT count() FROM spans WHERE SpanName IN url('{url}', 'LineAsString')", "table function url()"),
    ("SELECT * FROM spans AS s JOIN url('{url}', 'LineAsString') AS u ON 1 = 1", "table function url()"),
    ("SELECT * FROM numbers(1) CROSS JOIN (SELECT * FROM file('/etc/passwd', 'LineAsString')) AS f",
     "table function file()"),
    ("WITH x AS (SELECT * FROM file('/etc/passwd', 'LineAsString')) SELECT * FROM x", "table function file()"),
    ("SELECT * FROM view(SELECT * FROM file('/etc/passwd', 'LineAsString'))", "table function file()"),
    ("SELECT * FROM view(SELECT * FROM executable('id', 'TSV', 'x String'))", "table function executable()"),
    ("SELECT 1 UNION ALL SELECT count() FROM url('{url}', 'LineAsString')", "table function url()"),
    ("EXPLAIN SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("DESCRIBE TABLE file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT (SELECT count() FROM s3('{url}', 'LineAsString'))", "table function s3()"),
    # scalar functions that read outside the store
    ("SELECT file('/etc/passwd')", "function file()"),
    ("SELECT FiLe('/etc/passwd')", "function FiLe()"),
    ("SELECT length(file('/etc/passwd')) FROM spans", "function file()"),
    ("SELECT dictGet('d', 'x', 1)", "function dictGet()"),
    ("SELECT dictGetOrDefault('d', 'x', 1, '')", "function dictGetOrDefault()"),
    ("SELECT getClientHTTPHeader('Authorization')", "function getClientHTTPHeader()"),
    ("SELECT catboostEvaluate('/etc/model.bin', 1)", "function catboostEvaluate()"),
    ("SELECT filesystemAvailable()", "function filesystemAvailable()"),
]


@pytest.mark.parametrize(("sql", "reason"), HOST_ACCESS, ids=[sql[:60] for sql, _ in HOST_ACCESS])
def test_no_caller_reaches_the_host(caller: tuple[RunningCollector, str | None], target: str,
                                    sql: str, reason: str) -> None:
    running, key = caller
    hits = _Target.hits
    status, body = http(running.query_endpoint, "/query", sql.replace("{url}", target), key=key)
    assert status == 403, body
    assert reason in body and REFUSED_FUNCTION in body, body
    assert "root:" not in body
    assert _Target.hits == hits, "the collector fetched the URL"


# Statements that must keep working for admins and the keyless caller: the store, system tables and
# the table functions of the allow-list.
READS = [
    ("SELECT count() FROM spans", [[2]]),
    ("SELECT count() > 0 FROM system.tables WHERE name = 'spans'", [[1]]),
    ("SELECT sum(number) FROM numbers(10)", [["45"]]),
    ("SELECT count() FROM numbers_mt(100)", [["100"]]),
    ("SELECT * FROM values('x UInt8', 1, 2)", [[1], [2]]),
    ("SELECT count() FROM (SELECT * FROM generateRandom('a UInt8') LIMIT 4)", [["4"]]),
    ("SELECT count() FROM null('x UInt8')", [["0"]]),
    ("SELECT * FROM generate_series(1, 3)", [["1"], ["2"], ["3"]]),
    ("SELECT * FROM view(SELECT count() AS c FROM spans)", [["2"]]),
    ("SELECT count() FROM merge(currentDatabase(), '^spans$')", [["2"]]),
    ("WITH c AS (SELECT count() AS n FROM spans) SELECT n FROM c", [["2"]]),
    ("SELECT count() FROM spans WHERE SpanName IN (SELECT SpanName FROM spans)", [["2"]]),
    ("SELECT 'file(''/etc/passwd'')' AS looks_like_a_call", [["file('/etc/passwd')"]]),
]


@pytest.mark.parametrize(("sql", "expected"), READS, ids=[sql[:60] for sql, _ in READS])
def test_store_system_tables_and_allowed_table_functions_are_readable(
        caller: tuple[RunningCollector, str | None], sql: str, expected: list[list[object]]) -> None:
    running, key = caller
    status, body = http(running.query_endpoint, "/query", sql, key=key)
    assert status == 200, body
    got = [[str(v) if not isinstance(v, str) else v for v in row] for row in json.loads(body)["data"]]
    assert got == [[str(v) for v in row] for row in expected]


@pytest.mark.parametrize("sql", ["SHOW TABLES", "DESCRIBE spans", "EXPLAIN SELECT count() FROM spans",
                                 "EXISTS TABLE spans"])
def test_other_read_statements_still_run(caller: tuple[RunningCollector, str | None], sql: str) -> None:
    running, key = caller
    status, body = http(running.query_endpoint, "/query", sql, key=key)
    assert status == 200, body


def test_into_outfile_writes_nothing(caller: tuple[RunningCollector, str | None], tmp_path: Path) -> None:
    running, key = caller
    out = tmp_path / "out.csv"
    for sql in (f"SELECT * FROM spans INTO OUTFILE '{out}'", f"select 1 into   outfile '{out}' FORMAT CSV"):
        status, body = http(running.query_endpoint, "/query", sql, key=key)
        assert status == 403 and "INTO OUTFILE" in body, body
    assert not out.exists()


def test_a_settings_clause_cannot_lift_the_limits(caller: tuple[RunningCollector, str | None]) -> None:
    running, key = caller
    for sql in ("SELECT count() FROM spans SETTINGS max_execution_time = 0",
                "SELECT count() FROM (SELECT * FROM spans SETTINGS max_memory_usage = 0)",
                "SELECT 1 SETTINGS readonly = 0"):
        status, body = http(running.query_endpoint, "/query", sql, key=key)
        assert status == 403 and "SETTINGS clause" in body and "query.*" in body, body
