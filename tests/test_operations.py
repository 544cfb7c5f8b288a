"""Operations: the embedded store's documented backup and restore, and the upgrade from the previous release's schema."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from spanhouse.collector.store import Store, available_migrations
from spanhouse.collector.store import client as store_client

from access_harness import export, span_request
from collector_harness import RunningCollector, start_collector

TABLES = ("spans", "spans_trace_id_ts", "genai_calls", "genai_usage_1m", "genai_usage_1h", "spanhouse_migrations")
# A query a user would run, whose answer must be the same after a restore.
SPANS_BY_SERVICE = "SELECT ServiceName, count(), groupArraySorted(100)(SpanId) FROM spans GROUP BY ServiceName ORDER BY ServiceName"


def send(running: RunningCollector, service: str, count: int) -> None:
    response = export(running.grpc_endpoint, span_request(service, count))
    assert not response.HasField("partial_success")
    running.flush()


def wait_for_spans(running: RunningCollector, expected: int) -> None:
    deadline = time.monotonic() + 30
    while running.query("SELECT count() FROM spans") != [(expected,)]:
        assert time.monotonic() < deadline, f"spans never reached {expected}: {running.query('SELECT count() FROM spans')}"
        running.flush()


def snapshot(running: RunningCollector) -> tuple[dict[str, int], list[tuple]]:
    counts = {table: running.query(f"SELECT count() FROM {table}")[0][0] for table in TABLES}
    return counts, running.query(SPANS_BY_SERVICE)


def test_backup_by_copying_the_stopped_store_restores_every_row(tmp_path: Path) -> None:
    """The documented procedure (docs/operations.md): stop, tar the store directory, restore by unpacking it."""
    store = tmp_path / "store"
    archive = tmp_path / "spanhouse-backup.tar.gz"

    running = start_collector(store)
    try:
        send(running, "checkout", 20)
        send(running, "search", 7)
        wait_for_spans(running, 27)
        before = snapshot(running)
    finally:
        running.collector.stop()
    assert before[0]["spans"] == 27 and before[0]["spanhouse_migrations"] == len(available_migrations())

    subprocess.run(["tar", "-C", str(tmp_path), "-czf", str(archive), "store"], check=True)

    # Work after the backup, which the restore must undo.
    running = start_collector(store)
    try:
        send(running, "checkout", 5)
        wait_for_spans(running, 32)
        assert snapshot(running) != before
    finally:
        running.collector.stop()

    shutil.rmtree(store)
    subprocess.run(["tar", "-C", str(tmp_path), "-xzf", str(archive)], check=True)

    running = start_collector(store)
    try:
        assert snapshot(running) == before
        send(running, "after-restore", 3)  # the restored store takes new writes
        wait_for_spans(running, 30)
    finally:
        running.collector.stop()


def test_previous_release_store_upgrades_with_rows_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store made by the release before 009_otel_traces and 010_alerts, opened by the current code."""
    url = f"chdb://{tmp_path / 'store'}"
    every = available_migrations()
    previous = [m for m in every if m[0] <= 8]
    new = [f"{v:03d}_{name}" for v, name, _ in every if v > 8]
    assert len(previous) == 8 and new[:2] == ["009_otel_traces", "010_alerts"]

    now_ns = time.time_ns()
    with monkeypatch.context() as patched:
        patched.setattr(store_client, "available_migrations", lambda: previous)
        old = Store.open(url)
        try:
            assert old.migrate() == [f"{v:03d}_{name}" for v, name, _ in previous]
            tables = {name for (name,) in old.query_rows("SHOW TABLES")}
            assert "otel_traces" not in tables and "alerts" not in tables
            old.insert("spans", [["acme"] * 3, [now_ns] * 3, ["a" * 32] * 3, ["b" * 15 + str(i) for i in range(3)],
                                 ["checkout"] * 3],
                       ["TenantId", "Timestamp", "TraceId", "SpanId", "ServiceName"])
            rows_before = old.query_rows("SELECT TenantId, TraceId, SpanId, ServiceName FROM spans ORDER BY SpanId")
        finally:
            old.close()

    current = Store.open(url)
    try:
        assert current.migrate() == new
        assert current.query_rows("SELECT TenantId, TraceId, SpanId, ServiceName FROM spans ORDER BY SpanId") == rows_before
        assert current.query_rows("SELECT count() FROM otel_traces") == [(3,)]  # the new view reads the old rows
        assert current.query_rows("SELECT count() FROM alerts") == [(0,)]
        assert current.migrate() == []  # a second run is a no-op
        recorded = current.query_rows("SELECT Version FROM spanhouse_migrations FINAL ORDER BY Version")
        assert [v for (v,) in recorded] == [v for v, _, _ in every]
    finally:
        current.close()

    reopened = Store.open(url)  # and after a restart
    try:
        assert reopened.migrate() == []
        assert reopened.query_rows("SELECT count() FROM spans") == [(3,)]
        # The checks docs/operations.md gives run and answer as it says.
        check, size = documented_sql()
        assert [row[:2] for row in reopened.query_rows(check)] == [(v, name) for v, name, _ in every]
        sizes = {row[0]: row for row in reopened.query_rows(size)}
        assert sizes["spans"][2] == 3 and sizes["spans"][3] > 0
    finally:
        reopened.close()


def documented_sql() -> tuple[str, str]:
    """The migration check and the store-size query, as docs/operations.md prints them."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    check = re.search(r'spanhouse query "(SELECT Version[^"]+)"', text)
    size = re.search(r"```sql\n(\s*SELECT table.*?)```", text, re.DOTALL)
    assert check and size, "docs/operations.md lost its migration check or store-size query"
    return check.group(1), size.group(1)
