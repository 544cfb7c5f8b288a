"""ClickHouse client creation (server URL or embedded chDB), migrations and retention.

One URL picks the store: `chdb:///abs/path` or `chdb://./rel/path` for the
embedded engine, `http(s)://user:pass@host:8123/db` for a server or cluster.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("spanhouse.store")

MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class StoreError(RuntimeError):
    """The store cannot be opened or prepared; the message says what to do."""


class StoreBusyError(StoreError):
    """The embedded store is held by another process."""


def sql_file(relative: str) -> str:
    """The text of a packaged SQL file, e.g. `admin/set_ttl.sql`."""
    return resources.files("spanhouse.schemas").joinpath(relative).read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    """Statements of a migration file: `--` comment lines dropped, split on `;` at line end."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    body = "\n".join(lines)
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


@dataclass(frozen=True)
class StoreLocation:
    url: str
    embedded: bool
    path: Path | None  # embedded store directory

    @classmethod
    def parse(cls, url: str) -> StoreLocation:
        parts = urlsplit(url)
        if parts.scheme == "chdb":
            raw = url[len("chdb://"):]
            if not raw:
                raise StoreError(f"store URL {url!r} names no directory: use chdb:///abs/path or chdb://./rel/path")
            path = Path(raw).expanduser().resolve()
            return cls(url=f"chdb://{path}", embedded=True, path=path)
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise StoreError(f"store URL {url!r} names no host: use http://user:pass@host:8123/db")
            return cls(url=url, embedded=False, path=None)
        raise StoreError(
            f"store URL {url!r} has unsupported scheme {parts.scheme!r}: "
            "use chdb:///path (embedded) or http(s)://user:pass@host:8123/db (server)"
        )

    def redacted(self) -> str:
        """The URL without its password, for logs and errors."""
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@", 1)
        return self.url


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
        self._lane = InsertLane(location)
        self._side_lane = InsertLane(location)
        self._side: ThreadPoolExecutor | None = None
        self._closed = False
        self._purge = True

    @classmethod
    def open(cls, url: str) -> Store:
        import clickhouse_connect

        location = StoreLocation.parse(url)
        if location.embedded:
            assert location.path is not None
            location.path.mkdir(parents=True, exist_ok=True)
            try:
                client = clickhouse_connect.get_client(dsn=location.url)
            except Exception as exc:  # chdb reports a held directory lock only through its message
                if _held_by_other_process(location.path):
                    raise StoreBusyError(
                        f"embedded store {location.path} is in use by another process "
                        "(only one process may open it; stop that process or query through it)"
                    ) from exc
                raise StoreError(f"cannot open embedded store {location.path}: {exc}") from exc
        else:
            try:
                client = _server_client(location.url)
            except Exception as exc:
                raise StoreError(f"cannot connect to ClickHouse at {location.redacted()}: {exc}") from exc
        return cls(location, client)

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

    def raw_query(self, sql: str, fmt: str, settings: dict[str, Any] | None = None) -> bytes:
        with self.lock:
            return self.client.raw_query(sql, fmt=fmt, settings=settings)

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
        if self.location.embedded and self._purge:
            try:
                self.command("SYSTEM JEMALLOC PURGE")
            except Exception as exc:  # an engine built without jemalloc: nothing to purge, ever
                self._purge = False
                log.info("the embedded engine cannot purge its allocator (%s); not trying again", exc)

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
        done = {int(v) for (v,) in self.query_rows("SELECT Version FROM spanhouse_migrations FINAL")}
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

    def apply_retention(self, days_by_table: dict[str, int]) -> None:
        """Set (or remove, for 0 days) the TTL of each table, only where it differs."""
        for table, days in days_by_table.items():
            time_expr = RETENTION_TIME_EXPR[table]
            (engine_full,) = self.query_rows(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
                {"t": table},
            )[0]
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
                self._connection = self._connect()
            if self.location.embedded:
                _insert_in_place(self._connection, table, data, settings)
            else:
                self._connection.insert_arrow(table, data, settings=settings)

    def _connect(self) -> Any:
        try:
            if self.location.embedded:
                import chdb

                # chDB admits more connections to the engine this process already runs.
                return chdb.connect(str(self.location.path))
            import clickhouse_connect

            return clickhouse_connect.get_client(dsn=self.location.url)
        except Exception as exc:
            raise StoreError(f"cannot open an insert connection to {self.location.redacted()}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None


SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _insert_in_place(connection: Any, table: str, arrow_table: Any, settings: dict[str, Any] | None) -> None:
    """INSERT ... SELECT FROM Python(arrow_table): chDB finds the table by that local name."""
    columns = ", ".join(f"`{name}`" for name in arrow_table.schema.names)
    clause = ""
    if settings:
        for key in settings:
            if not SETTING_NAME.match(key):
                raise StoreError(f"invalid setting name {key!r}")
        clause = " SETTINGS " + ", ".join(f"{key} = {_sql_string(value)}" for key, value in settings.items())
    connection.query(f"INSERT INTO `{table}` ({columns}) SELECT {columns} FROM Python(arrow_table){clause}")


def _sql_string(value: Any) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# Table -> the expression its TTL is measured from.
RETENTION_TIME_EXPR = {
    "spans": "toDateTime(Timestamp)",
    "spans_trace_id_ts": "End",
    "genai_calls": "toDateTime(Timestamp)",
    "genai_usage_1m": "Minute",
    "genai_usage_1h": "Hour",
    "trace_costs": "Day",
}


def available_migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("spanhouse.schemas").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def _server_client(url: str) -> Any:
    """A client for a ClickHouse server, creating the URL's database if it is missing."""
    import clickhouse_connect

    parts = urlsplit(url)
    database = parts.path.strip("/")
    if database:
        bootstrap = clickhouse_connect.get_client(dsn=parts._replace(path="/default").geturl())
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        bootstrap.close()
    return clickhouse_connect.get_client(dsn=url)


def _held_by_other_process(path: Path) -> bool:
    """True when chDB's status file in `path` is flock()ed, as a running engine keeps it."""
    import fcntl

    status = path / "status"
    if not status.exists():
        return False
    with open(status, "rb+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False
