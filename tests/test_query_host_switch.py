"""`query.allow_host_access` opens the host to admin keys only, and the query command that opens the
store itself is guarded like the endpoint. (Separate from test_query_host_access: each test here runs
its own embedded engine, and a process holds one at a time.)"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spanhouse.collector.query import client as query_client
from spanhouse.collector.config import load

from access_harness import Key, auth_overrides, http
from collector_harness import start_collector

ADMIN = Key.new("ops", admin=True)
ACME = Key.new("acme")


def test_the_query_command_opening_the_store_itself_is_guarded_too(tmp_path: Path) -> None:
    from spanhouse.collector.store import Store

    made = Store.open(f"chdb://{tmp_path / 'store'}")  # reads never create a store: make one
    made.migrate()
    made.close()
    cfg = load(None, environ={}, overrides={"store": {"url": f"chdb://{tmp_path / 'store'}"},
                                             "query": {"endpoint": ""}})
    with pytest.raises(query_client.QueryError, match=r"table function file\(\) is not available"):
        query_client.run(cfg, "SELECT * FROM file('/etc/passwd', 'LineAsString')", "JSONCompact")
    assert json.loads(query_client.run(cfg, "SELECT count() FROM spans", "JSONCompact"))["data"] == [[0]]


def test_host_access_is_an_explicit_admin_only_switch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passwd = tmp_path / "readable.txt"
    passwd.write_text("host line\n")
    with caplog.at_level(logging.WARNING, logger="spanhouse.query"):
        running = start_collector(tmp_path / "store", query={"endpoint": "127.0.0.1:0", "allow_host_access": True},
                                  **auth_overrides(ADMIN, ACME))
    try:
        assert any("query.allow_host_access is on" in r.getMessage() for r in caplog.records if
                   r.levelno == logging.WARNING)
        sql = f"SELECT * FROM file('{passwd}', 'LineAsString')"
        status, body = http(running.query_endpoint, "/query", sql, key=ADMIN.key)
        assert status == 200 and "host line" in body, body
        for tenant_sql in (sql, f"SELECT file('{passwd}') FROM spans", "SELECT * FROM numbers(3)"):
            status, body = http(running.query_endpoint, "/query", tenant_sql, key=ACME.key)
            assert status == 403 and "not available to tenant keys" in body and "host line" not in body, body
        # still no process run, no file written and no limit lifted, even for the admin
        for never in ("SELECT * FROM executable('id', 'TSV', 'x String')",
                      "SELECT * FROM view(SELECT * FROM EXECUTABLE('id', 'TSV', 'x String'))",
                      "SELECT * FROM python(globals)"):
            status, body = http(running.query_endpoint, "/query", never, key=ADMIN.key)
            assert status == 403 and "is not available through the query endpoint" in body, body
        out = tmp_path / "out.csv"
        status, body = http(running.query_endpoint, "/query", f"SELECT 1 INTO OUTFILE '{out}'", key=ADMIN.key)
        assert status == 403 and not out.exists(), body
        status, body = http(running.query_endpoint, "/query", "SELECT 1 SETTINGS max_execution_time = 0",
                            key=ADMIN.key)
        assert status == 403 and "SETTINGS clause" in body, body
    finally:
        running.collector.stop()
