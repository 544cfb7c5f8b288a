"""The store's client: queries and commands on one connection, Arrow inserts on lanes of their own,
migrations and retention. Which engine serves it (embedded or server) is the location's backend.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from spanhouse.collector.store.errors import StoreError, split_statements, sql_file
from spanhouse.collector.store.location import StoreLocation
from spanhouse.collector.store.migrations import RETENTION_TIME_EXPR, available_migrations

log = logging.getLogger("spanhouse.store")


class Store:
    """A clickhouse-connect client plus a lock: chDB runs one query at a time per handle.

    Arrow inserts go through two more connections of their own (`InsertLane`): one for
    `insert_arrow`, one driven by a background thread for `insert_arrow_async`, so that the
    engine writes one table while the caller goes on with the next.
    """

    def __init__(self, location: StoreLocation, client: Any) -> None:
        self.location = location
        self.client = client
        self.lock = threading.RLock()
        self.backend = location.backend
        self._lane = InsertLane(location)
        self._side_lane = InsertLane(location)
        self._side: ThreadPoolExecutor | None = None
        self._closed = False
        self._purge = True

    @classmethod
    def open(cls, url: str, create: bool = True) -> Store:
        """The store at `url`; without `create`, a store that does not exist is a StoreError, not a new one."""
        location = StoreLocation.parse(url)
        return cls(location, location.backend.open_client(location, create))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self.lock:
            self._closed = True
            if self._side is not None:
                self._side.shutdown(wait=True)
                self._side = None
            self._side_lane.close()
            self._lane.close()
            self.client.close()

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self.lock:
            return self.client.command(sql, parameters=parameters)

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.client.query(sql, parameters=parameters).result_rows

    def raw_query(self, sql: str, fmt: str, settings: dict[str, Any] | None = None,
                  parameters: dict[str, Any] | None = None) -> bytes:
        with self.lock:
            return self.client.raw_query(sql, parameters=parameters, fmt=fmt, settings=settings)

    def insert(self, table: str, data: list[list[Any]], column_names: list[str],
               settings: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.client.insert(table, data, column_names=column_names, column_oriented=True, settings=settings)

    def insert_arrow(self, table: str, data: Any, settings: dict[str, Any] | None = None) -> None:
        """Insert a pyarrow Table whose column names are the table's, on the first insert lane."""
        self._lane.insert(table, data, settings)

    def insert_arrow_async(self, table: str, data: Any, settings: dict[str, Any] | None = None) -> Future[None]:
        """Start `insert_arrow` on the second lane and return at once; the future raises its failure."""
        with self.lock:
            if self._closed:
                raise StoreError(f"store {self.location.redacted()} is closed")
            if self._side is None:
                self._side = ThreadPoolExecutor(1, thread_name_prefix="spanhouse-insert")
            return self._side.submit(self._side_lane.insert, table, data, settings)

    def release_memory(self) -> None:
        """Hand memory freed by the last inserts back to the system.

        Both allocators keep freed pages for reuse: pyarrow's pool (the insert columns) and, in the
        embedded engine, its jemalloc (insert blocks, merges). At ingest rates that is hundreds of MiB
        held between batches; purging after each write keeps the process near what is in use.
        """
        arrow = sys.modules.get("pyarrow")
        if arrow is not None:
            arrow.default_memory_pool().release_unused()
        if self._purge:
            self._purge = self.backend.purge_allocator(self)

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> ClickHouse type name of `table`, in table order."""
        rows = self.query_rows(split_statements(sql_file("admin/column_types.sql"))[0], {"table": table})
        if not rows:
            raise StoreError(f"table {table!r} does not exist in {self.location.redacted()}: run the migrations")
        return {name: type_name for name, type_name in rows}

    # --- schema -----------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the numbered migrations not yet recorded; returns the names applied now."""
        for statement in split_statements(sql_file("admin/migrations_table.sql")):
            self.command(statement)
        done = {int(v) for (v,) in self.query_rows(sql_file("admin/applied_migrations.sql"))}
        applied = []
        for version, name, text in available_migrations():
            if version in done:
                continue
            for statement in split_statements(text):
                try:
                    self.command(statement)
                except Exception as exc:
                    raise StoreError(f"migration {version:03d}_{name} failed: {exc}") from exc
            checksum = hashlib.sha256(text.encode()).hexdigest()
            self.insert("spanhouse_migrations", [[version], [name], [checksum]], ["Version", "Name", "Checksum"])
            applied.append(f"{version:03d}_{name}")
            log.info("applied migration %03d_%s", version, name)
        return applied

    def check_cluster_schema(self, cluster: str) -> None:
        """StoreError unless the cluster schema's record lists every shipped migration."""
        from spanhouse.collector.store.cluster import check_cluster_schema

        try:
            applied = {int(v) for (v,) in self.query_rows(sql_file("admin/applied_migrations.sql"))}
        except Exception as exc:  # no spanhouse_migrations table at all: the schema was never created
            log.debug("reading spanhouse_migrations failed: %s", exc)
            applied = set()
        check_cluster_schema(applied, cluster)

    def apply_retention(self, days_by_table: dict[str, int]) -> None:
        """Set (or remove, for 0 days) the TTL of each table, only where it differs."""
        for table, days in days_by_table.items():
            time_expr = RETENTION_TIME_EXPR[table]
            (engine_full,) = self.query_rows(sql_file("admin/table_engine.sql"), {"table": table})[0]
            has_ttl = " TTL " in f" {engine_full} "
            if days == 0:
                if has_ttl:
                    self.command(split_statements(sql_file("admin/remove_ttl.sql"))[0].format(table=table))
                continue
            if f"toIntervalDay({days})" in engine_full:
                continue
            template = split_statements(sql_file("admin/set_ttl.sql"))[0]
            self.command(template.format(table=table, time_expr=time_expr, days=int(days)))


class InsertLane:
    """A connection of its own for Arrow inserts, opened at its first insert.

    The embedded engine reads the pyarrow Table where it is, through chDB's `Python()` table
    function: no serialized copy, no temporary file, and most of its work runs without the GIL.
    A server gets the table as an Arrow stream through clickhouse-connect.
    """

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self._lock = threading.Lock()
        self._connection: Any = None
        self._closed = False

    def insert(self, table: str, data: Any, settings: dict[str, Any] | None = None) -> None:
        with self._lock:
            if self._closed:  # never reopen: an open connection would keep the embedded engine on this path
                raise StoreError(f"store {self.location.redacted()} is closed")
            if self._connection is None:
                self._connection = self.location.backend.open_insert_connection(self.location)
            self.location.backend.insert_arrow(self._connection, table, data, settings)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
