"""What bounds the memory of the insert path: the embedded engine's caches and pyarrow's pool."""

from __future__ import annotations

import pyarrow as pa
import pytest

from spanhouse.collector.store import Store
from spanhouse.collector.store.backends import ENGINE_STARTUP_OPTIONS
from spanhouse.collector.writer.arrow import choose_memory_pool
from spanhouse.collector.writer.clickhouse import ClickHouseSink

CACHES = ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size", "query_condition_cache_size",
          "compiled_expression_cache_size")


def test_embedded_engine_starts_with_bounded_caches(store: Store) -> None:
    rows = dict(store.query_rows("SELECT name, value FROM system.server_settings WHERE name IN {names:Array(String)}",
                                 {"names": list(CACHES)}))
    assert rows == {name: ENGINE_STARTUP_OPTIONS[name] for name in CACHES}
    # ClickHouse's own default for the mark cache is 5 GiB: ours is far below it.
    assert int(rows["mark_cache_size"]) <= 256 * 1024 * 1024


def test_sink_converts_through_the_jemalloc_pool(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/test_sink_columns.py checks that every value reads back exactly through this pool.
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool()
    try:
        ClickHouseSink(store)
        try:
            pa.jemalloc_memory_pool()
        except NotImplementedError:
            assert pa.default_memory_pool() is before  # a pyarrow without jemalloc keeps its default
        else:
            assert pa.default_memory_pool().backend_name == "jemalloc"
    finally:
        pa.set_memory_pool(before)


def test_a_pool_the_user_named_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    before = pa.default_memory_pool()
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        pa.set_memory_pool(pa.system_memory_pool())
        assert choose_memory_pool() == "system"
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)
