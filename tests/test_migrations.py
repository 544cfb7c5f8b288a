"""Store: migrations are recorded and idempotent; retention TTLs follow the configuration."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from spanhouse.collector.store import Store, StoreError, StoreLocation, available_migrations, split_statements

from collector_harness import start_collector

TABLES = ("spans", "spans_trace_id_ts", "genai_calls", "genai_usage_1m", "genai_usage_1h")


def ttl_days(store: Store) -> dict[str, int | None]:
    """Table -> TTL in days as ClickHouse reports it in system.tables (None: no TTL)."""
    rows = store.query_rows("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()")
    engines = dict(rows)
    out: dict[str, int | None] = {}
    for table in TABLES:
        match = re.search(r"\bTTL\b.*?toIntervalDay\((\d+)\)", engines[table])
        out[table] = int(match.group(1)) if match else None
    return out


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    expected = [f"{v:03d}_{name}" for v, name, _ in available_migrations()]
    assert expected, "no packaged migrations found"

    store = Store.open(url)
    try:
        assert store.migrate() == expected
        assert store.migrate() == []  # second run in the same process: nothing to do, no error
        tables = {name for (name,) in store.query_rows("SHOW TABLES")}
        assert set(TABLES) <= tables
        store.insert("spans", [["t"], [1], ["a" * 32], ["b" * 16]], ["TenantId", "Timestamp", "TraceId", "SpanId"])
    finally:
        store.close()

    store = Store.open(url)  # a restart: the record survives and data is untouched
    try:
        assert store.migrate() == []
        recorded = store.query_rows("SELECT Version, Name FROM spanhouse_migrations FINAL ORDER BY Version")
        assert [f"{v:03d}_{n}" for v, n in recorded] == expected
        assert store.query_rows("SELECT count() FROM spans") == [(1,)]
    finally:
        store.close()


def test_collector_restart_on_a_migrated_store_works(tmp_path: Path) -> None:
    for _ in range(2):
        running = start_collector(tmp_path / "store")
        try:
            assert running.query("SELECT count() FROM spanhouse_migrations FINAL") == [(len(available_migrations()),)]
        finally:
            running.collector.stop()


def test_retention_ttl_comes_from_config_and_changes_on_restart(tmp_path: Path) -> None:
    steps = [
        ({}, {"spans": 30, "spans_trace_id_ts": 30, "genai_calls": 400, "genai_usage_1m": None,
              "genai_usage_1h": None}),  # the documented defaults
        ({"spans_days": 7, "rollups_days": 90},
         {"spans": 7, "spans_trace_id_ts": 7, "genai_calls": 400, "genai_usage_1m": 90, "genai_usage_1h": 90}),
        ({"spans_days": 0, "genai_calls_days": 3, "rollups_days": 90},
         {"spans": None, "spans_trace_id_ts": None, "genai_calls": 3, "genai_usage_1m": 90, "genai_usage_1h": 90}),
    ]
    for retention, expected in steps:
        running = start_collector(tmp_path / "store", retention=retention)
        try:
            assert ttl_days(running.collector.store) == expected, retention
        finally:
            running.collector.stop()


@pytest.mark.parametrize("text, statements", [
    ("CREATE TABLE a (x UInt8) ENGINE = Memory;\n", ["CREATE TABLE a (x UInt8) ENGINE = Memory"]),
    ("-- comment; with a semicolon\nSELECT 1;\n\n  -- indented comment\nSELECT 2;",
     ["SELECT 1", "SELECT 2"]),
    ("SELECT ';' AS s;\nSELECT 3", ["SELECT ';' AS s", "SELECT 3"]),
    ("-- only a comment\n", []),
])
def test_split_statements(text: str, statements: list[str]) -> None:
    assert split_statements(text) == statements


@pytest.mark.parametrize("url, embedded, path", [
    ("chdb:///abs/dir", True, Path("/abs/dir")),
    ("chdb://./rel/dir", True, Path.cwd() / "rel" / "dir"),
    ("http://u:p@ch:8123/db", False, None),
    ("https://ch.example.com:8443/db", False, None),
])
def test_store_location_parse(url: str, embedded: bool, path: Path | None) -> None:
    location = StoreLocation.parse(url)
    assert (location.embedded, location.path) == (embedded, path)


def test_store_location_redacts_the_password() -> None:
    assert StoreLocation.parse("http://alice:s3cret@ch:8123/db").redacted() == "http://alice:***@ch:8123/db"


@pytest.mark.parametrize("url, message", [
    ("ftp://x/y", "unsupported scheme 'ftp'"),
    ("chdb://", "names no directory"),
    ("https:///db", "names no host"),
])
def test_store_location_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        StoreLocation.parse(url)


def test_opening_without_create_never_makes_a_store(tmp_path) -> None:
    missing = tmp_path / "typo"
    with pytest.raises(StoreError, match="no store at .*typo"):
        Store.open(f"chdb://{missing}", create=False)
    assert not missing.exists()


def test_otel_views_read_spans_and_survive_retention_and_restart(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    now_s = int(time.time())
    store = Store.open(url)
    try:
        store.migrate()
        store.insert("spans", [["acme"], [now_s * 1_000_000_000], ["a" * 32], ["b" * 16], [2_500_000_000]],
                     ["TenantId", "Timestamp", "TraceId", "SpanId", "Duration"])
        store.apply_retention({"spans": 7, "spans_trace_id_ts": 7})
    finally:
        store.close()
    store = Store.open(url)
    try:
        assert store.migrate() == []
        engines = dict(store.query_rows("SELECT name, engine FROM system.tables WHERE database = currentDatabase()"))
        assert engines["otel_traces"] == engines["otel_traces_trace_id_ts"] == "View"
        assert store.query_rows("SELECT TenantId, TraceId, Duration FROM otel_traces") == [("acme", "a" * 32, 2_500_000_000)]
        ((start, end),) = store.query_rows("SELECT toUnixTimestamp(Start), toUnixTimestamp(End) "
                                          "FROM otel_traces_trace_id_ts WHERE TraceId = {t:String}", {"t": "a" * 32})
        assert (start, end) == (now_s, now_s + 2)  # End = last span's start + its duration
    finally:
        store.close()
