"""Loopback HTTP endpoint for read-only SQL while the collector owns the embedded store.

chDB admits one process per store directory, so other processes (`spanhouse
query`, `spanhouse demo`) reach the data through the collector:

    POST /query?format=JSONCompact   body: one SQL statement  -> the formatted result
    POST /flush                       write everything accepted so far
    GET  /health, GET /stats          liveness, the collector's counters as JSON
    GET  /metrics, GET /ready         Prometheus metrics and readiness (collector/metrics/)

With API keys configured (auth.keys), every path but /health needs
`Authorization: Bearer <key>`: an admin key may run any read-only statement
and read /stats; any other key runs SELECTs confined to its tenant's rows
(see tenant_scope). No caller reaches the host's files, URLs or other servers
(see guard.py, unless query.allow_host_access opens them to admins), and
every query runs under the limits of limits.py. Replies to an authenticated
caller carry `Spanhouse-Store: <store URL without password>`, so a read command
that named another store knows this answer is not from it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from spanhouse.collector.auth import AuthError, KeyRing, Principal
from spanhouse.collector.query.guard import HostAccessRefused, check_statement
from spanhouse.collector.query.limits import (
    CallerSlots,
    LimitExceeded,
    TooBusy,
    engine_settings,
    explain_limit,
    run_read,
)
from spanhouse.collector.query.tenant_scope import NotAllowed, TenantScope

if TYPE_CHECKING:
    from spanhouse.collector.config import Config, QueryConfig
    from spanhouse.collector.metrics.http import MetricsEndpoint
    from spanhouse.collector.store import Store

log = logging.getLogger("spanhouse.query")

# First line of `EXPLAIN AST` for statements that cannot change data.
READ_ONLY_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "ShowColumns",
                        "ShowCreate", "DescribeQuery", "Explain", "ExistsTableQuery", "ShowDatabases",
                        "ShowTablesQuery")
OUTPUT_FORMATS = ("JSONCompact", "CSVWithNames", "JSONEachRow", "TabSeparatedWithNames", "PrettyCompact")
MAX_SQL_BYTES = 1 << 20
# Response header naming the store that answered (its URL without password), on authenticated replies.
STORE_HEADER = "Spanhouse-Store"
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)


class NotReadOnly(ValueError):
    """The statement would change something; `kind` is its statement kind when that is the reason."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class StatementSyntaxError(ValueError):
    """The statement does not parse; the engine's message, positions counted in the statement."""


def check_single_statement(store: Store, sql: str) -> str | None:
    """Raise NotReadOnly for more than one statement; else the statement formatted on one line (None when
    the engine cannot format it: a parse error, which running it reports better)."""
    # formatQuery refuses multi-statements without running anything.
    try:
        ((formatted,),) = store.query_rows("SELECT formatQuerySingleLine({q:String})", {"q": sql})
    except Exception as exc:
        text = str(exc)
        if "Multi-statements" in text:
            raise NotReadOnly("send one SQL statement at a time") from None
        wrapper = text.rfind(" In scope SELECT formatQuerySingleLine(")
        if "(SYNTAX_ERROR)" in text and wrapper > 0:
            # Positions here count from the statement's own start (EXPLAIN's would count its prefix too);
            # the wrapper this check put around it is no part of the user's statement.
            raise StatementSyntaxError(text[:wrapper].rstrip(" :") + ". (SYNTAX_ERROR)") from None
        return None
    return str(formatted)


def check_read_only(store: Store, sql: str) -> tuple[list[str], str]:
    """Raise NotReadOnly unless `sql` is exactly one statement that only reads; else its (AST rows, formatted SQL)."""
    # EXPLAIN AST of a single statement names its kind without running it; a parse error is
    # reported by EXPLAIN, without the formatQuery wrapper in it.
    formatted = check_single_statement(store, sql)
    ast = store.raw_query(f"EXPLAIN AST {sql.strip().rstrip(';')}", "TabSeparatedRaw").decode().splitlines()
    kind = ast[0].split(" ", 1)[0] if ast else ""
    if not kind.startswith(READ_ONLY_STATEMENTS):
        raise NotReadOnly(f"only read-only statements (SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS) may run through "
                          f"the collector; this is a {kind.strip()}. Stop the collector to change the store "
                          "(then `spanhouse query --write`).", kind=kind.strip())
    if formatted is None:
        raise NotReadOnly("this statement could not be checked to be read-only; simplify it")
    # A SELECT ... INTO OUTFILE writes a file as the collector's user: not read-only.
    if _INTO_OUTFILE.search(_QUOTED.sub("", formatted)):
        raise NotReadOnly("INTO OUTFILE would write a file on the collector's host; "
                          "drop it and use `spanhouse query --format csv|json > FILE` instead")
    return ast, formatted


class ReadPolicy:
    """Runs one caller's read: read-only check, host-access guard, tenant scope, then the limited query."""

    def __init__(self, store: Store, cfg: QueryConfig) -> None:
        self.store = store
        self.cfg = cfg
        self.scope = TenantScope(store)
        self.slots = CallerSlots(cfg.max_concurrent_per_caller, cfg.max_concurrent)

    def run(self, caller: Principal, sql: str, fmt: str) -> bytes:
        """The result, or NotReadOnly / HostAccessRefused / NotAllowed / TooBusy / LimitExceeded / engine error."""
        ast, formatted = check_read_only(self.store, sql)
        host_access = caller.admin and self.cfg.allow_host_access
        settings = engine_settings(self.cfg)
        if not caller.admin:  # first: its refusals name what a tenant may read instead
            self.scope.check(ast, formatted)
            settings.update(self.scope.settings(caller.tenant))
        check_statement(ast, self.scope.table_only_functions(), host_access=host_access)
        who = f"tenant:{caller.tenant}" if not caller.admin else f"admin:{caller.name or caller.tenant}"
        with self.slots.hold(who):
            try:
                return run_read(self.store, sql, fmt, settings, engine_readonly=not host_access)
            except Exception as exc:
                raise explain_limit(exc, self.cfg) from None


    def run_write(self, sql: str, fmt: str) -> bytes:
        """One statement that may change the store (`spanhouse query --write`, the store opened directly,
        never through the endpoint): the host-access guard and the engine limits still hold."""
        check_single_statement(self.store, sql)
        ast = self.store.raw_query(f"EXPLAIN AST {sql.strip().rstrip(';')}", "TabSeparatedRaw").decode().splitlines()
        check_statement(ast, self.scope.table_only_functions(), host_access=self.cfg.allow_host_access)
        try:
            return run_read(self.store, sql, fmt, engine_settings(self.cfg), engine_readonly=False)
        except Exception as exc:
            raise explain_limit(exc, self.cfg) from None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    _authenticated = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("query endpoint: " + format, *args)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if self._authenticated:  # which store answers, so `spanhouse query --store X` can tell it is not X
            self.send_header(STORE_HEADER, self.server.collector.store.location.redacted())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _caller(self) -> Principal | None:
        """The authenticated caller (an all-seeing one without keys), or None after replying 401."""
        keys = self.server.keys
        if keys is None:
            self._authenticated = True
            return Principal("", admin=True)
        try:
            principal = keys.authenticate(self.headers.get("Authorization"))
            self._authenticated = True
            return principal
        except AuthError as exc:
            log.warning("refused query endpoint call to %s: %s", urlsplit(self.path).path, exc)
            body = f"{exc} (set SPANHOUSE_API_KEY for `spanhouse query`)\n".encode()
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", "Bearer")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = urlsplit(self.path).path
        if path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n")
        elif path in ("/metrics", "/ready"):  # collector/metrics/http.py
            reply = self.server.collector.metrics.answer(path, self._caller)
            if reply is not None:
                self._reply(*reply)
        elif path == "/stats":
            caller = self._caller()
            if caller is None:
                return
            if not caller.admin:
                self._reply(HTTPStatus.FORBIDDEN, b"the collector's counters need an admin key\n")
                return
            body = json.dumps(self.server.collector.counters(), indent=2).encode()
            self._reply(HTTPStatus.OK, body, "application/json")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"unknown path; use POST /query, POST /flush, GET /health, GET /stats\n")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        parts = urlsplit(self.path)
        if parts.path not in ("/flush", "/query"):
            self._reply(HTTPStatus.NOT_FOUND, b"unknown path; use POST /query\n")
            return
        caller = self._caller()
        if caller is None:
            return
        if parts.path == "/flush":
            ok = self.server.collector.flush(timeout_s=60.0)
            self._reply(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE,
                        b"flushed\n" if ok else b"flush did not finish in 60s\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_SQL_BYTES:
            self._reply(HTTPStatus.BAD_REQUEST, f"send one SQL statement of 1..{MAX_SQL_BYTES} bytes\n".encode())
            return
        sql = self.rfile.read(length).decode("utf-8", "replace")
        fmt = parse_qs(parts.query).get("format", ["JSONCompact"])[0]
        if fmt not in OUTPUT_FORMATS:
            self._reply(HTTPStatus.BAD_REQUEST, f"format must be one of {', '.join(OUTPUT_FORMATS)}\n".encode())
            return
        try:
            body = self.server.policy.run(caller, sql, fmt)
        except (NotReadOnly, NotAllowed, HostAccessRefused) as exc:
            self._reply(HTTPStatus.FORBIDDEN, f"{exc}\n".encode())
            return
        except TooBusy as exc:
            self._reply(HTTPStatus.TOO_MANY_REQUESTS, f"{exc}\n".encode())
            return
        except LimitExceeded as exc:
            log.info("query stopped at a limit: %s", exc)
            self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, f"{exc}\n".encode())
            return
        except Exception as exc:  # ClickHouse's own message is what the user needs
            self._reply(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode())
            return
        self._reply(HTTPStatus.OK, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    collector: ServedCollector
    keys: KeyRing | None
    policy: ReadPolicy


class ServedCollector(Protocol):
    """What the endpoint needs of the running collector (service.Collector is one)."""

    config: Config
    store: Store

    metrics: MetricsEndpoint

    def counters(self) -> dict[str, int]:
        ...

    def flush(self, timeout_s: float = 30.0) -> bool:
        ...


class QueryServer:
    def __init__(self, collector: ServedCollector, endpoint: str) -> None:
        host, _, port = endpoint.rpartition(":")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"query.endpoint must be a loopback address, got {endpoint!r}")
        try:
            self._server = _Server((host, int(port)), _Handler)
        except OSError as exc:
            raise OSError(f"cannot listen for queries on {endpoint}: {exc.strerror}") from None
        self._server.collector = collector
        keys = KeyRing.from_config(collector.config.auth)
        self._server.keys = keys if keys else None
        self._server.policy = ReadPolicy(collector.store, collector.config.query)
        if collector.config.query.allow_host_access:
            log.warning("query.allow_host_access is on: admin keys%s may read the host's files and URLs and "
                        "reach other servers through the query endpoint",
                        "" if self._server.keys else " and every local process (no API keys are configured)")
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="spanhouse-query", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("query endpoint listening on http://127.0.0.1:%d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
