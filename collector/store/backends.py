"""The two kinds of store, chosen once from the URL: the embedded engine (chDB) and a ClickHouse server.

Everything that differs between them is here, behind one shape (`Backend`): how the query client
and the insert connections are opened, how an Arrow table is inserted, and whether the engine's
allocator can be purged. The rest of the store code does not ask which kind it has.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from spanhouse.collector.store.errors import StoreBusyError, StoreError, split_statements, sql_file


class StoreLocation(Protocol):
    """What a backend reads of a location (store/location.py)."""

    url: str
    path: Path | None

    def redacted(self) -> str:
        ...


class Store(Protocol):
    """What a backend calls on the store it serves (store/client.py)."""

    location: StoreLocation

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        ...

    def raw_query(self, sql: str, fmt: str, settings: dict[str, Any] | None = None,
                  parameters: dict[str, Any] | None = None) -> bytes:
        ...

log = logging.getLogger("spanhouse.store")

SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Backend(Protocol):
    embedded: bool

    def open_client(self, location: StoreLocation, create: bool = True) -> Any:
        """The clickhouse-connect client for queries, commands and small inserts. `create`: make the store
        (directory, database) when it does not exist; a reader passes False and gets a StoreError instead."""
        ...

    def open_insert_connection(self, location: StoreLocation) -> Any:
        """A further connection of its own for Arrow inserts (see store.client.InsertLane)."""
        ...

    def insert_arrow(self, connection: Any, table: str, data: Any, settings: dict[str, Any] | None) -> None:
        ...

    def purge_allocator(self, store: Store) -> bool:
        """Hand freed engine memory back to the system; False when this engine never can (stop asking)."""
        ...

    def read(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool) -> bytes:
        """`sql`'s result in `fmt` under `settings` (a caller's read: it must not hold up the writer)."""
        ...

    def read_result(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool,
                    params: dict[str, str] | None = None) -> ReadResult:
        """Like `read`, with the engine's counters, and `params` for the statement's `{name:Type}`
        placeholders: values in ClickHouse's escaped text form, as the HTTP interface's `param_<name>`."""
        ...


@dataclass
class ReadResult:
    """A read's bytes and what the engine counted (zeros where it cannot tell)."""

    data: bytes
    read_rows: int = 0
    read_bytes: int = 0
    result_rows: int = 0
    elapsed_ns: int = 0


MIB = 1024 * 1024

# Server-level sizes for the embedded engine, given as start-up options of the connection that starts it
# (later connections share the running engine; their start-up options are ignored). ClickHouse sizes
# these caches for a server with the machine to itself, 5 GiB each for marks, primary indexes and
# skip-index marks; inside a collector they are memory that the UI's and the CLI's reads would grow
# into over days of uptime, on top of what ingestion needs. Ingestion does not use them; a read loads
# the marks of the columns and parts it touches, and the least recently used ones are dropped first.
ENGINE_STARTUP_OPTIONS: dict[str, str] = {
    "mark_cache_size": str(128 * MIB),
    "primary_index_cache_size": str(64 * MIB),
    "index_mark_cache_size": str(32 * MIB),
    "query_condition_cache_size": str(32 * MIB),
    "compiled_expression_cache_size": str(32 * MIB),
}


class EmbeddedBackend:
    """chDB in this process: one engine per process and directory, which the collector owns."""

    embedded = True

    def open_client(self, location: StoreLocation, create: bool = True) -> Any:
        import clickhouse_connect

        assert location.path is not None
        if not create and not location.path.is_dir():
            raise StoreError(f"no store at {location.path} (the directory does not exist)")
        location.path.mkdir(parents=True, exist_ok=True)
        try:
            return clickhouse_connect.get_client(dsn=location.url, chdb_options=ENGINE_STARTUP_OPTIONS)
        except Exception as exc:  # chdb reports a held directory lock only through its message
            if _held_by_other_process(location.path):
                raise StoreBusyError(
                    f"embedded store {location.path} is in use by another process "
                    "(only one process may open it; stop that process or query through it)"
                ) from exc
            raise StoreError(f"cannot open embedded store {location.path}: {exc}") from exc

    def open_insert_connection(self, location: StoreLocation) -> Any:
        try:
            import chdb

            # chDB admits more connections to the engine this process already runs.
            return chdb.connect(str(location.path))
        except Exception as exc:
            raise StoreError(f"cannot open an insert connection to {location.redacted()}: {exc}") from exc

    def insert_arrow(self, connection: Any, table: str, data: Any, settings: dict[str, Any] | None) -> None:
        """INSERT ... SELECT FROM Python(arrow_table): the engine reads the pyarrow table where it is."""
        arrow_table = data  # chDB finds the table by this local name
        columns = ", ".join(f"`{name}`" for name in arrow_table.schema.names)
        clause = ""
        if settings:
            for key in settings:
                if not SETTING_NAME.match(key):
                    raise StoreError(f"invalid setting name {key!r}")
            clause = " SETTINGS " + ", ".join(f"{key} = {_sql_string(value)}" for key, value in settings.items())
        connection.query(f"INSERT INTO `{table}` ({columns}) SELECT {columns} FROM Python(arrow_table){clause}")

    def read(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool) -> bytes:
        return self.read_result(store, sql, fmt, settings, readonly).data

    def read_result(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool,
                    params: dict[str, str] | None = None) -> ReadResult:
        """On a connection of its own (about 0.1 ms to open): the store's shared client holds a lock the
        writer needs, and settings are per connection, so `readonly` set last holds for this query only.
        chDB takes `params` in the same escaped text form as ClickHouse's HTTP interface."""
        import chdb

        location = store.location
        try:
            connection = chdb.connect(str(location.path))
        except Exception as exc:
            raise StoreError(f"cannot open a query connection to {location.redacted()}: {exc}") from exc
        try:
            for name, value in settings.items():
                connection.query(f"SET {_setting(name)} = {_literal(value)}")
            if readonly:
                connection.query("SET readonly = 1")  # last: from here on no setting can change
            result = connection.query(sql, fmt, params=params or {})
            data = result.bytes()
            # rows_read() counts the rows of the result; storage_* the rows the engine read to make it.
            return ReadResult(data, read_rows=int(result.storage_rows_read()),
                              read_bytes=int(result.storage_bytes_read()), result_rows=int(result.rows_read()),
                              elapsed_ns=int(result.elapsed() * 1e9))
        finally:
            connection.close()

    def purge_allocator(self, store: Store) -> bool:
        try:
            store.command(split_statements(sql_file("admin/purge_allocator.sql"))[0])
        except Exception as exc:  # an engine built without jemalloc: nothing to purge, ever
            log.info("the embedded engine cannot purge its allocator (%s); not trying again", exc)
            return False
        return True


class ServerBackend:
    """A ClickHouse server or cluster over HTTP(S)."""

    embedded = False

    def open_client(self, location: StoreLocation, create: bool = True) -> Any:
        try:
            return _server_client(location.url, create)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot connect to ClickHouse at {location.redacted()}: {exc}") from exc

    def open_insert_connection(self, location: StoreLocation) -> Any:
        import clickhouse_connect

        try:
            return clickhouse_connect.get_client(dsn=location.url)
        except Exception as exc:
            raise StoreError(f"cannot open an insert connection to {location.redacted()}: {exc}") from exc

    def insert_arrow(self, connection: Any, table: str, data: Any, settings: dict[str, Any] | None) -> None:
        connection.insert_arrow(table, data, settings=settings)

    def read(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool) -> bytes:
        # A server connection is shared; its settings travel with each query. Use a read-only
        # ClickHouse user in store.url for the engine's own read-only layer (see docs/security.md).
        return store.raw_query(sql, fmt, settings=settings)

    def read_result(self, store: Store, sql: str, fmt: str, settings: dict[str, Any], readonly: bool,
                    params: dict[str, str] | None = None) -> ReadResult:
        # clickhouse-connect escapes parameter values itself: hand it the values the escapes stand for.
        parameters = {name: unescape_text(value) for name, value in (params or {}).items()}
        return ReadResult(store.raw_query(sql, fmt, settings=settings, parameters=parameters or None))

    def purge_allocator(self, store: Store) -> bool:
        return False  # the server manages its own memory


EMBEDDED = EmbeddedBackend()
SERVER = ServerBackend()


_ESCAPES = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "a": "\a", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "`": "`", "/": "/", "=": "="}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape_text(value: str) -> str:
    """ClickHouse's escaped text form (`a\\tb`) -> the string it stands for; other escapes keep their character."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


def _sql_string(value: Any) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _setting(name: str) -> str:
    if not SETTING_NAME.match(name):
        raise StoreError(f"invalid setting name {name!r}")
    return name


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return _sql_string(value)


def _server_client(url: str, create: bool = True) -> Any:
    """A client for a ClickHouse server, creating the URL's database if it is missing (with `create`)."""
    import clickhouse_connect

    parts = urlsplit(url)
    database = parts.path.strip("/")
    if database:
        bootstrap = clickhouse_connect.get_client(dsn=parts._replace(path="/default").geturl())
        try:
            if create:
                create_database = split_statements(sql_file("admin/create_database.sql"))[0]
                bootstrap.command(create_database.format(database=database))
            elif not bootstrap.command("EXISTS DATABASE {db:Identifier}", parameters={"db": database}):
                redacted = url.replace(f":{parts.password}@", ":***@", 1) if parts.password else url
                raise StoreError(f"no database {database!r} on the ClickHouse server {redacted}")
        finally:
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
