"""The collector's query endpoint: ClickHouse's HTTP interface over the store, plus the collector's own paths.

chDB admits one process per store directory, so everything that reads the data goes through the collector:

    GET /ping, GET /?query=..., POST /  ClickHouse's HTTP interface (clickhouse_http.py): any ClickHouse
                                      client reads the store as it would a ClickHouse server
    POST /query?format=JSONCompact   body: one SQL statement  -> the formatted result (`spanhouse query`)
    POST /flush                       write everything accepted so far
    GET  /health, GET /stats          liveness, the collector's counters as JSON
    GET  /metrics, GET /ready         Prometheus metrics and readiness (collector/metrics/)
    GET  /ui/...                      the web UI: static pages, and their data from /ui/api/ (collector/ui/)

With API keys configured (auth.keys), every path but /health and /ping needs a key: `Authorization: Bearer
<key>`, or as ClickHouse clients send it, the password of HTTP Basic (any user name), `X-ClickHouse-Key`
or `password=`. An admin key may run any read-only statement and read /stats; any other key runs SELECTs
confined to its tenant's rows (see tenant_scope). No caller reaches the host's files, URLs or other servers
(see guard.py, unless query.allow_host_access opens them to admins), and every query runs under the limits
of limits.py, which URL settings may lower but never raise. Replies to an authenticated caller carry
`Spanhouse-Store: <store URL without password>`, so a read command that named another store knows this
answer is not from it. The endpoint listens on loopback unless API keys are configured; then it may face
other machines, with TLS (query.tls_cert_file / tls_key_file, optionally tls_client_ca_file).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import ssl
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from spanhouse.collector.auth import AuthError, KeyRing, Principal, is_loopback
from spanhouse.collector.query import clickhouse_http as ch
from spanhouse.collector.query import http_compression
from spanhouse.collector.query.clickhouse_http import ClickHouseError, ClickHouseRequest
from spanhouse.collector.query.guard import HostAccessRefused
from spanhouse.collector.query.limits import LimitExceeded, TooBusy
from spanhouse.collector.query.read_policy import (  # re-exported: the read commands import them from here
    MultipleStatements,
    NotReadOnly,
    ReadPolicy,
    StatementSyntaxError,
    check_read_only,
    check_single_statement,
    statement_format,
)
from spanhouse.collector.query.tenant_scope import NotAllowed
from spanhouse.collector.listeners import RefusalLog, server_ssl_context
from spanhouse.collector.ui.http import UiEndpoint

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.metrics.http import MetricsEndpoint
    from spanhouse.collector.store import Store

__all__ = ["MAX_SQL_BYTES", "OUTPUT_FORMATS", "STORE_HEADER", "MultipleStatements", "NotReadOnly", "QueryServer",
           "ReadPolicy", "ServedCollector", "StatementSyntaxError", "check_read_only", "check_single_statement",
           "statement_format"]

log = logging.getLogger("spanhouse.query")

OUTPUT_FORMATS = ("JSONCompact", "CSVWithNames", "JSONEachRow", "TabSeparatedWithNames", "PrettyCompact")
MAX_SQL_BYTES = 1 << 20
# POST /content: one export page of spans with their attributes.
MAX_CONTENT_BYTES = 64 << 20
# Response header naming the store that answered (its URL without password), on authenticated replies.
STORE_HEADER = "Spanhouse-Store"
# A connection that sends nothing for this long is closed (its thread is freed), as on the OTLP/HTTP receiver.
IDLE_TIMEOUT_S = 60.0
# Largest request body read on ClickHouse's interface, compressed or not (an INSERT's data is refused anyway).
MAX_BODY_BYTES = MAX_SQL_BYTES


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: ClickHouse clients reuse their connections
    timeout = IDLE_TIMEOUT_S
    _authenticated = False
    _body_read = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("query endpoint: " + format, *args)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            log.debug("query endpoint connection from %s ended: %s", self.client_address[0], exc)

    def _start_reply(self, status: HTTPStatus, content_type: str, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if self._authenticated:  # which store answers, so `spanhouse query --store X` can tell it is not X
            self.send_header(STORE_HEADER, self.server.collector.store.location.redacted())
        self.send_header("Content-Length", str(length))
        if self.command == "POST" and not self._body_read:
            # The body was not read, so the next request on this connection could not be found: end it.
            self.close_connection = True
            self.send_header("Connection", "close")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8",
               headers: dict[str, str] | None = None) -> None:
        self._start_reply(status, content_type, len(body))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
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
            self._start_reply(HTTPStatus.UNAUTHORIZED, "text/plain; charset=utf-8", len(body))
            self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)
            return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n")
        elif path in ("/metrics", "/ready"):  # collector/metrics/http.py
            reply = self.server.collector.metrics.answer(path, self._caller)
            if reply is not None:
                self._reply(*reply)
        elif path == "/ping":
            self._reply(HTTPStatus.OK, b"Ok.\n")
        elif (path == "/ui" or path.startswith("/ui/")) and self.server.ui is not None:
            # The UI authenticates its API calls itself (collector/ui/http.py); the page shells need no key.
            status, body, content_type, headers = self.server.ui.get(path, parts.query,
                                                                     self.headers.get("Authorization"))
            self._reply(status, body, content_type, headers)
        elif path == "/":
            if not parts.query:
                self._reply(HTTPStatus.OK, b"Ok.\n")  # ClickHouse answers a bare GET / like /ping
            else:
                self._clickhouse(parts.query, with_body=False)
        elif path == "/whoami":  # which tenant the caller's key reads, and whether it is an admin key
            caller = self._caller()
            if caller is not None:
                body = json.dumps({"tenant": caller.tenant, "admin": caller.admin}).encode()
                self._reply(HTTPStatus.OK, body, "application/json")
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
            self._reply(HTTPStatus.NOT_FOUND, b"unknown path; use GET /ping, GET or POST / (ClickHouse's HTTP "
                                              b"interface), GET /ui/ (the web UI), POST /query, POST /flush, GET /health, GET /stats, "
                                              b"GET /whoami\n")

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        """Liveness for load balancers and probes that use HEAD: /ping, /health and a bare / only."""
        path = urlsplit(self.path).path
        ok = path in ("/ping", "/health") or (path == "/" and not urlsplit(self.path).query)
        body = (b"ok\n" if path == "/health" else b"Ok.\n") if ok else b""
        self._start_reply(HTTPStatus.OK if ok else HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", len(body))
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        parts = urlsplit(self.path)
        if parts.path == "/":
            self._clickhouse(parts.query, with_body=True)
            return
        if parts.path not in ("/flush", "/query", "/content"):
            self._reply(HTTPStatus.NOT_FOUND, b"unknown path; use POST /query, or POST / for ClickHouse's HTTP "
                                              b"interface\n")
            return
        caller = self._caller()
        if caller is None:
            return
        if parts.path == "/content":
            self._content(caller)
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
        self._body_read = True
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

    def _content(self, caller: Principal) -> None:
        """POST /content: {"rows": [{trace_id, span_id, attributes}, ...]} with archived content put back for
        an admin key, each read recorded in genai_content_access (`spanhouse export` sends its spans here)."""
        from spanhouse.collector.query.content import ContentAccessError, resolve_archived

        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_CONTENT_BYTES:
            self._reply(HTTPStatus.BAD_REQUEST, f"send a JSON document of 1..{MAX_CONTENT_BYTES} bytes\n".encode())
            return
        raw = self.rfile.read(length)
        self._body_read = True
        try:
            rows = json.loads(raw)["rows"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError("rows must be a list of objects")
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, f'expected {{"rows": [{{...}}, ...]}}: {exc}\n'.encode())
            return
        try:
            resolved = resolve_archived(rows, self.server.policy, caller, "export")
        except ContentAccessError as exc:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}\n".encode())
            return
        body = json.dumps({"rows": resolved}, ensure_ascii=False).encode("utf-8")
        self._reply(HTTPStatus.OK, body, "application/json")

    # --- ClickHouse's HTTP interface (clickhouse_http.py) ---

    def _clickhouse(self, url_query: str, with_body: bool) -> None:
        query = parse_qs(url_query, keep_blank_values=True)
        query_id = (query.get("query_id") or [""])[0]
        if not ch.safe_query_id(query_id):  # it is echoed in a header: never a line break from the caller
            query_id = str(uuid.uuid4())
        try:
            # The key first: an unauthenticated caller gets no body read or decompressed (the connection
            # is closed after the refusal instead).
            caller = self._clickhouse_caller(query)
            body = self._clickhouse_body() if with_body else None
            content_type = self.headers.get("Content-Type") or ""
            if body is not None and content_type.lower().startswith("multipart/form-data"):
                # The query and its parameters as form fields (clickhouse-connect sends long parameters so).
                query = ch.merge_form(query, ch.parse_form(body, content_type))
                body = None
            request = ch.parse_request(query, body.decode("utf-8", "replace") if body is not None else None)
            query_id = request.query_id
            result, fmt = self.server.policy.run_clickhouse(caller, request)
            data = result.data
            if fmt == "Native":
                data = ch.native_for_client(data, request.client_protocol_version)
        except Exception as exc:
            error = _as_clickhouse_error(exc)
            if error.code == ch.UNKNOWN_EXCEPTION:  # not the engine's, not a refusal: a failure of ours
                log.error("query endpoint request failed", exc_info=exc)
            self._clickhouse_error(error, query_id)
            return
        self._clickhouse_reply(request, fmt, data, result)

    def _clickhouse_body(self) -> bytes:
        """The request body, decompressed per Content-Encoding; BodyTooLarge past MAX_BODY_BYTES."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = self._read_chunked(MAX_BODY_BYTES)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ClickHouseError("BAD_REQUEST_PARAMETER", "Content-Length is not a number") from None
            if length < 0 or length > MAX_BODY_BYTES:
                raise http_compression.BodyTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes")
            raw = self.rfile.read(length)
        self._body_read = True
        return http_compression.decompress(raw, self.headers.get("Content-Encoding") or "", MAX_BODY_BYTES)

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):  # hex digits only: no sign, no "0x"
                raise ClickHouseError("BAD_REQUEST_PARAMETER", "malformed chunked request body")
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise http_compression.BodyTooLarge(f"the request body is larger than {limit} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF after each chunk

    def _clickhouse_caller(self, query: dict[str, list[str]]) -> Principal:
        """The caller from any one of the ways ClickHouse clients present a key; ClickHouseError otherwise."""
        presented: list[str] = []
        authorization = self.headers.get("Authorization")
        if authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    raise ClickHouseError("AUTHENTICATION_FAILED", "malformed Basic authorization") from None
                presented.append(password)
            elif scheme.lower() == "bearer":
                presented.append(value.strip())
            else:
                raise ClickHouseError("AUTHENTICATION_FAILED", "unsupported Authorization scheme: use Basic "
                                                               "(user: tenant or anything, password: API key) or Bearer")
        if self.headers.get("X-ClickHouse-Key") is not None:
            presented.append(self.headers.get("X-ClickHouse-Key", ""))
        if "password" in query:
            presented.append(query["password"][0])
        keys = self.server.keys
        if keys is None:  # no keys configured: a loopback-only endpoint where every caller is an admin
            self._authenticated = True
            return Principal("", admin=True)
        if len(presented) > 1:
            raise ClickHouseError("AUTHENTICATION_FAILED", "credentials were sent in more than one way (Authorization, "
                                                           "X-ClickHouse-Key, password=); send the API key once")
        if not presented and (self.headers.get("X-ClickHouse-SSL-Certificate-Auth") or "").lower() == "on":
            raise ClickHouseError("AUTHENTICATION_FAILED", "certificate authentication maps to no tenant here: send "
                                                           "the API key as the password as well (clickhouse-connect: "
                                                           "tls_mode='strict' with client_cert)")
        if not presented or not presented[0]:
            raise ClickHouseError("REQUIRED_PASSWORD", "an API key is required: send it as the password (HTTP Basic, "
                                                       "X-ClickHouse-Key or password=) or as Authorization: Bearer")
        try:
            principal = keys.authenticate_key(presented[0])
        except AuthError as exc:
            self.server.refusals.refused(self.client_address[0], str(exc))
            raise ClickHouseError("AUTHENTICATION_FAILED", f"{exc}: the password must be an API key configured "
                                                           "in auth.keys") from None
        self._authenticated = True
        return principal

    def _clickhouse_headers(self, query_id: str) -> None:
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Server-Display-Name", ch.SERVER_DISPLAY_NAME)
        try:
            self.send_header("X-ClickHouse-Timezone", self.server.policy.engine_info()[1])
        except Exception:  # the store is unreachable: the reply says so in its body
            pass

    def _clickhouse_reply(self, request: ClickHouseRequest, fmt: str, data: bytes, result: Any) -> None:
        encoding = None
        if request.compress_response:
            encoding = http_compression.choose(self.headers.get("Accept-Encoding") or "")
            if encoding is not None:
                data = http_compression.compress(data, encoding, request.compression_level)
        self._start_reply(HTTPStatus.OK, ch.FORMATS[fmt], len(data))
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self._clickhouse_headers(request.query_id)
        self.send_header("X-ClickHouse-Format", fmt)
        self.send_header("X-ClickHouse-Summary", ch.summary(result))
        self.end_headers()
        self.wfile.write(data)

    def _clickhouse_error(self, error: ClickHouseError, query_id: str) -> None:
        try:
            version = self.server.policy.engine_info()[0]
        except Exception:
            version = "unknown"
        body = error.body(version)
        self._start_reply(error.status, "text/plain; charset=UTF-8", len(body))
        self.send_header("X-ClickHouse-Exception-Code", str(error.code))
        self._clickhouse_headers(query_id)
        if error.code == ch.CODES["REQUIRED_PASSWORD"]:
            self.send_header("WWW-Authenticate", 'Basic realm="spanhouse", charset="UTF-8"')
        self.end_headers()
        self.wfile.write(body)


def _as_clickhouse_error(exc: Exception) -> ClickHouseError:
    """Any failure of a read as ClickHouse's error: our refusals get ClickHouse's codes for them, the
    engine's errors keep their own code."""
    if isinstance(exc, ClickHouseError):
        return exc
    if isinstance(exc, http_compression.BodyTooLarge):
        return ClickHouseError("QUERY_IS_TOO_LARGE", f"{exc}; send one statement, not data")
    if isinstance(exc, http_compression.BadEncoding):
        return ClickHouseError("CANNOT_DECOMPRESS" if "not valid" in str(exc) else "UNKNOWN_COMPRESSION_METHOD",
                               str(exc))
    if isinstance(exc, MultipleStatements):
        return ClickHouseError("SYNTAX_ERROR", f"Multi-statements are not allowed: {exc}")
    if isinstance(exc, NotReadOnly):
        return ClickHouseError("READONLY", f"Cannot execute query in readonly mode: {exc}")
    if isinstance(exc, (NotAllowed, HostAccessRefused)):
        return ClickHouseError("ACCESS_DENIED", str(exc))
    if isinstance(exc, TooBusy):
        return ClickHouseError("TOO_MANY_SIMULTANEOUS_QUERIES", str(exc))
    if isinstance(exc, StatementSyntaxError):
        return ch.engine_error(exc) if "Code:" in str(exc) else ClickHouseError("SYNTAX_ERROR", str(exc))
    if isinstance(exc, LimitExceeded):
        # explain_limit keeps the engine's words in the message; its code says which limit stopped it.
        error = ch.engine_error(exc)
        for name in ("TIMEOUT_EXCEEDED", "MEMORY_LIMIT_EXCEEDED", "TOO_MANY_ROWS_OR_BYTES", "READONLY"):
            if f"({name})" in str(exc):
                return ClickHouseError(name, str(exc).replace(f" ({name})", ""))
        return error
    return ch.engine_error(exc)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    collector: ServedCollector
    keys: KeyRing | None
    policy: ReadPolicy
    ssl_context: ssl.SSLContext | None = None
    refusals: RefusalLog
    ui: UiEndpoint | None = None

    def __init__(self, address: tuple[str, int]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The TLS handshake happens on the first read, in the connection's own thread.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


def _otlp_endpoints(collector: Any) -> dict[str, str]:
    """Where the collector takes spans (for the UI's empty states): the bound ports, not the configured 0."""
    out = {}
    grpc_port = getattr(collector, "grpc_port", None)
    if grpc_port:
        out["otlp_grpc"] = f"{collector.config.receiver.grpc.endpoint.rpartition(':')[0].strip('[]')}:{grpc_port}"
    http_url = getattr(collector, "http_url", None)
    if http_url:
        out["otlp_http"] = str(http_url)
    return out


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
        cfg = collector.config.query
        host, _, port = endpoint.rpartition(":")
        host = host.strip("[]")
        keys = KeyRing.from_config(collector.config.auth)
        if not keys and not is_loopback(host):  # config validation refuses this first; never serve it anyway
            raise ValueError(f"query.endpoint {endpoint!r} is not a loopback address and no API keys are configured")
        try:
            self._server = _Server((host, int(port)))
        except OSError as exc:
            raise OSError(f"cannot listen for queries on {endpoint}: {exc.strerror}") from None
        self._server.collector = collector
        self._server.keys = keys if keys else None
        self._server.policy = ReadPolicy(collector.store, cfg)
        self._server.ui = UiEndpoint(self._server.policy, self._server.keys, lambda: _otlp_endpoints(collector)) \
            if cfg.ui else None
        # Bad keys on ClickHouse's interface: a client retrying fast is logged once per reason per interval.
        self._server.refusals = RefusalLog(log, "ClickHouse interface call")
        self._server.ssl_context = server_ssl_context(cfg.tls_cert_file, cfg.tls_key_file, cfg.tls_client_ca_file)
        self.host = host
        self.endpoint = endpoint
        if cfg.allow_host_access:
            log.warning("query.allow_host_access is on: admin keys%s may read the host's files and URLs and "
                        "reach other servers through the query endpoint",
                        "" if self._server.keys else " and every local process (no API keys are configured)")
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="spanhouse-query", daemon=True)

    def start(self) -> None:
        self._thread.start()
        tls = self._server.ssl_context is not None
        log.info("query endpoint (ClickHouse HTTP interface) listening on http%s://%s:%d", "s" if tls else "",
                 self.host, self.port)
        if self._server.keys and not tls and not is_loopback(self.host):
            log.warning("API keys are sent in plaintext to the query endpoint %s: configure query.tls_cert_file and "
                        "tls_key_file, or terminate TLS in front of the collector", self.endpoint)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
