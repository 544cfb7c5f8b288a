"""OTLP/HTTP receiver: POST /v1/traces, binary protobuf or JSON, into the same pipeline as gRPC.

The OTLP/HTTP rules it follows:

- `Content-Type: application/x-protobuf` or `application/json`; the response
  (an `ExportTraceServiceResponse`, or a `google.rpc.Status` on failure) is
  encoded the same way. Any other type gets 415.
- `Content-Encoding: gzip` (or none); a body larger than the configured
  maximum, before or after decompression, gets 413.
- 200 on success, with `partial_success` when some spans were refused; 400
  when the request cannot be decoded (not retryable), including JSON nested
  deeper than the JSON parser goes; 503 with `Retry-After` when the collector
  cannot take data now (retryable); 401 without a valid API key when keys are
  configured; 500 with the error's name when the collector itself fails on a
  request (logged with its traceback): every request gets an answer.
- In OTLP/JSON, trace and span ids are hex strings (not base64 as in the
  generic protobuf JSON mapping) and enums are integers. Unknown fields are
  ignored. A span whose id is not hex is refused alone, like any bad id.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import socket
import ssl
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.collector.auth import AuthError, KeyRing, is_loopback
from spanhouse.collector.component import ListenError
from spanhouse.collector.listeners import RefusalLog, server_ssl_context
from spanhouse.collector.receiver._wire import MAX_VALUE_DEPTH
from spanhouse.collector.receiver.decode import Decoder, DecodeResult, RequestDecodeError
from spanhouse.collector.receiver.counts import SpanCounts
from spanhouse.collector.writer import WriterFull

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.component import Consumer

log = logging.getLogger("spanhouse.receiver.http")

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values carried in the Status bodies.
_INVALID_ARGUMENT, _UNAVAILABLE, _UNAUTHENTICATED, _RESOURCE_EXHAUSTED, _INTERNAL = 3, 14, 16, 8, 13
# A connection that sends nothing for this long is closed (its thread is freed).
IDLE_TIMEOUT_S = 60.0
_ID_FIELDS = (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))
# AnyValue members that nest further values.
_KVLIST_KEYS = ("kvlistValue", "kvlist_value")
_NESTING_KEYS = ("arrayValue", "array_value", *_KVLIST_KEYS)
# Message levels the JSON parser may descend: a request through a link's attribute value cut one level
# below MAX_VALUE_DEPTH (three levels per key-value list) stays within it.
_MAX_MESSAGE_DEPTH = 8 + 3 * (MAX_VALUE_DEPTH + 1)


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str, code: int = _INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def json_to_protobuf(body: bytes) -> tuple[bytes, dict[str, int]]:
    """An OTLP/JSON trace request -> (binary protobuf request, {what was repaired: how often}).

    Ids that are not hex are emptied (the decoder refuses their spans alone); strings holding
    lone surrogates (`"\\ud800"`: JSON can write them, UTF-8 cannot) get U+FFFD in their place,
    as invalid UTF-8 does in protobuf requests.

    Raises RequestDecodeError when the body is not an OTLP/JSON ExportTraceServiceRequest.
    """
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestDecodeError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestDecodeError(f"request body nests JSON arrays and objects deeper than this collector reads "
                                 f"(attribute values may nest {MAX_VALUE_DEPTH} levels)") from None
    if not isinstance(doc, dict):
        raise RequestDecodeError("request body must be a JSON object (an OTLP ExportTraceServiceRequest)")
    bad_ids = 0
    for resource_spans in _items(doc, "resourceSpans", "resource_spans"):
        _cut_deep_values(resource_spans.get("resource"))
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            _cut_deep_values(scope_spans.get("scope"))
            for span in _items(scope_spans, "spans", "spans"):
                bad_ids += _hex_ids_to_base64(span)
                _cut_deep_values(span)
                for event in _items(span, "events", "events"):
                    _cut_deep_values(event)
                for link in _items(span, "links", "links"):
                    bad_ids += _hex_ids_to_base64(link)
                    _cut_deep_values(link)
    notes: dict[str, int] = {}
    if bad_ids:
        notes["trace or span ids were not hex strings (OTLP/JSON writes ids as hex)"] = bad_ids
    try:
        try:
            request = _parse_request(doc)
        except json_format.ParseError:
            repaired = _repair_surrogates(doc)  # rare: only then are all strings looked at
            if not repaired:
                raise
            notes["string values held lone UTF-16 surrogates and were stored with U+FFFD replacements"] = repaired
            request = _parse_request(doc)
    except json_format.ParseError as exc:
        raise RequestDecodeError(f"request is not a valid OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    except RecursionError:
        raise RequestDecodeError(f"request nests attribute values far deeper than the {MAX_VALUE_DEPTH} levels "
                                 "this collector stores") from None
    # Values nested deeper than MAX_VALUE_DEPTH but within what the parser takes are refused
    # span by span by the decoder, which reads these bytes.
    return request.SerializeToString(), notes


def _parse_request(doc: dict[str, Any]) -> ExportTraceServiceRequest:
    return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True,
                                 max_recursion_depth=_MAX_MESSAGE_DEPTH)


def _repaired(text: str) -> str | None:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _repair_surrogates(doc: Any) -> int:
    """Replace lone surrogates in every string of `doc` (keys too) in place; returns the strings repaired.

    Walks with its own stack: the document may nest as deep as the JSON parser went.
    """
    repaired = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                fixed_key = _repaired(key)
                if fixed_key is not None:
                    node[fixed_key] = node.pop(key)
                    repaired += 1
            entries: Any = list(node.items())
        elif isinstance(node, list):
            entries = enumerate(node)
        else:
            continue
        for key, value in entries:
            if isinstance(value, str):
                fixed = _repaired(value)
                if fixed is not None:
                    node[key] = fixed
                    repaired += 1
            else:
                stack.append(value)
    return repaired


def _cut_deep_values(holder: Any) -> None:
    """Empty every attribute value of `holder` found below MAX_VALUE_DEPTH levels of nesting.

    The emptied value still sits one level too deep, so the decoder refuses its span (alone)
    with the reason; the JSON parser, which recurses per level, never sees more than that.
    """
    for kv in _items(holder, "attributes", "attributes"):
        value = kv.get("value")
        if isinstance(value, dict):
            _cut_below(value, 1)


def _cut_below(value: dict[str, Any], depth: int) -> None:
    for key in _NESTING_KEYS:
        inner = value.get(key)
        if not isinstance(inner, dict) or not isinstance(inner.get("values"), list):
            continue
        for item in inner["values"]:
            child = item.get("value") if key in _KVLIST_KEYS and isinstance(item, dict) else item
            if not isinstance(child, dict):
                continue
            if depth >= MAX_VALUE_DEPTH:
                child.clear()
            else:
                _cut_below(child, depth + 1)


def _items(parent: Any, camel: str, snake: str) -> list[Any]:
    """The list under `camel` (or its snake_case name) when `parent` is an object; [] otherwise."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(camel, parent.get(snake))
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _hex_ids_to_base64(obj: dict[str, Any]) -> int:
    """Rewrite OTLP/JSON's hex ids as the base64 the protobuf JSON parser reads; count ids that are not hex.

    An id that is not hex becomes empty, so the decoder refuses that span (or link's span) alone.
    """
    bad = 0
    for camel, snake in _ID_FIELDS:
        key = camel if camel in obj else snake
        value = obj.get(key)
        if value is None or value == "":
            continue
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else None
        except ValueError:
            raw = None
        if raw is None:
            bad += 1
            raw = b""
        obj[key] = base64.b64encode(raw).decode("ascii")
    return bad


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: HttpReceiver) -> None:
        self.receiver = receiver
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        context = self.receiver.ssl_context
        if context is not None:
            # The TLS handshake happens on the first read, in the connection's own thread.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    timeout = IDLE_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("OTLP/HTTP: " + format, *args)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            log.debug("OTLP/HTTP connection from %s ended: %s", self.client_address[0], exc)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        receiver = self.server.receiver
        path = self.path.split("?", 1)[0]
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        as_json = content_type == JSON
        try:
            if path != TRACES_PATH:
                self._drain_body()
                raise _BadRequest(HTTPStatus.NOT_FOUND, f"unknown path {path!r}: OTLP traces go to POST {TRACES_PATH}")
            if content_type not in (PROTOBUF, JSON):
                self._drain_body()
                raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                  f"Content-Type must be {PROTOBUF} or {JSON}, got {content_type or 'none'!r}")
            tenant = receiver.authenticate(self.headers.get("Authorization"), self.client_address[0])
            body = self._body(receiver.max_request_bytes)
            self._reply(HTTPStatus.OK, receiver.export(body, as_json, tenant), as_json)
        except _BadRequest as exc:
            self._reply_status(exc.status, exc.code, str(exc), as_json)
        except _Unavailable as exc:
            self._reply_status(HTTPStatus.SERVICE_UNAVAILABLE, _UNAVAILABLE, str(exc), as_json,
                               {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))})
        except Exception as exc:  # a bug: the client still gets an answer, and nothing was accepted
            log.exception("OTLP/HTTP export from %s failed", self.client_address[0])
            self.close_connection = True  # the body may not have been read to its end
            self._reply_status(HTTPStatus.INTERNAL_SERVER_ERROR, _INTERNAL,
                               f"the collector failed on this request ({type(exc).__name__}: {str(exc)[:200]}); "
                               "its log has the details", as_json)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._method_not_allowed()

    do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _method_not_allowed(self) -> None:
        self._drain_body()
        self._reply_status(HTTPStatus.METHOD_NOT_ALLOWED, _INVALID_ARGUMENT,
                           f"OTLP/HTTP takes POST {TRACES_PATH} only", False, {"Allow": "POST"})

    def _drain_body(self) -> None:
        """Read and discard a small body so the connection can be reused; close it after a large one."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= 1 << 20 and "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _body(self, limit: int) -> bytes:
        """The request body, decompressed, at most `limit` bytes before and after decompression."""
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self._drain_body()
            raise _BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                              f"Content-Encoding must be gzip or absent, got {encoding!r}")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = self._read_chunked(limit)
        else:
            try:
                length = int(self.headers["Content-Length"])
            except (KeyError, TypeError, ValueError):
                self.close_connection = True
                raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "send Content-Length or a chunked body") from None
            if length > limit:
                self._discard(length, 4 * limit)
                raise self._too_large(limit)
            raw = self.rfile.read(length)
            if len(raw) < length:
                self.close_connection = True
                raise _BadRequest(HTTPStatus.BAD_REQUEST, f"body ended after {len(raw)} of {length} bytes")
        if encoding == "identity":
            return raw
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"body is not valid gzip data: {exc}") from None
        if len(body) > limit:
            raise self._too_large(limit, "after gzip decompression")
        if not inflater.eof:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "gzip body is truncated")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self._discard(size, 4 * limit)
                self.close_connection = True
                raise self._too_large(limit)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _discard(self, length: int, at_most: int) -> None:
        """Read a refused body so the client, still sending it, gets the answer; close after a huge one."""
        if length > at_most:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    @staticmethod
    def _too_large(limit: int, when: str = "") -> _BadRequest:
        mib = limit / (1 << 20)
        return _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"request body is larger than receiver.http.max_request_mib ({mib:g} MiB)"
                           f"{' ' + when if when else ''}; send smaller batches", _RESOURCE_EXHAUSTED)

    def _reply(self, status: HTTPStatus, message: Any, as_json: bool, headers: dict[str, str] | None = None) -> None:
        if as_json:
            body = json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
        else:
            body = message.SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", JSON if as_json else PROTOBUF)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _reply_status(self, status: HTTPStatus, code: int, message: str, as_json: bool,
                      headers: dict[str, str] | None = None) -> None:
        if status == HTTPStatus.UNAUTHORIZED:
            headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
        self._reply(status, Status(code=code, message=message), as_json, headers)


class _Unavailable(Exception):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HttpReceiver:
    """OTLP/HTTP on one address; requests are decoded and handed to `pipeline.consume` as gRPC calls are."""

    def __init__(self, pipeline: Consumer, endpoint: str, max_request_mib: int = 64,
                 default_tenant: str = "default", keys: KeyRing | None = None,
                 ssl_context: ssl.SSLContext | None = None, decoder: Decoder | None = None) -> None:
        self.pipeline = pipeline
        self.decoder = decoder or Decoder()
        self.requests_invalid_total = 0
        self.spans = SpanCounts()
        self.endpoint = endpoint
        self.max_request_bytes = max_request_mib * 1024 * 1024
        self.default_tenant = default_tenant
        self.keys = keys if keys else None
        self.ssl_context = ssl_context
        self.refusals = RefusalLog(log, "OTLP/HTTP export")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @classmethod
    def from_config(cls, pipeline: Consumer, cfg: Config) -> HttpReceiver:
        h = cfg.receiver.http
        return cls(pipeline, h.endpoint, h.max_request_mib, cfg.receiver.default_tenant,
                   KeyRing.from_config(cfg.auth), server_ssl_context(h.tls_cert_file, h.tls_key_file,
                                                                     h.tls_client_ca_file), Decoder.from_config(cfg))

    def start(self) -> int:
        host, _, port = self.endpoint.rpartition(":")
        host = host.strip("[]")
        try:
            self._server = _Server((host, int(port)), self)
        except OSError as exc:
            raise ListenError(f"cannot listen for OTLP/HTTP on {self.endpoint}: {exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="spanhouse-otlp-http", daemon=True)
        self._thread.start()
        log.info("OTLP/HTTP receiver listening on http%s://%s:%d%s (%s)", "s" if self.ssl_context else "", host,
                 self.port, TRACES_PATH, f"{len(self.keys)} API keys" if self.keys else "no authentication")
        if self.keys and self.ssl_context is None and not is_loopback(host):
            log.warning("API keys are sent in plaintext to %s: configure receiver.http.tls_cert_file and "
                        "tls_key_file, or terminate TLS in front of the collector", self.endpoint)
        return self.port

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting requests; requests being handled finish on their own threads (each bounded by the
        idle timeout), so there is nothing to wait `grace_s` for."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def counters(self) -> dict[str, int]:
        return {"http_unauthenticated_total": self.refusals.total,
                "http_requests_invalid_total": self.requests_invalid_total,
                "http_spans_accepted_total": self.spans.accepted_total,
                "http_spans_refused_total": self.spans.refused_total,
                **{f"http_{k}": v for k, v in self.decoder.counters().items()}}

    def authenticate(self, authorization: str | None, peer: str) -> str:
        if self.keys is None:
            return self.default_tenant
        try:
            return self.keys.authenticate(authorization).tenant
        except AuthError as exc:
            self.refusals.refused(peer, str(exc))
            raise _BadRequest(HTTPStatus.UNAUTHORIZED, str(exc), _UNAUTHENTICATED) from None

    def export(self, body: bytes, as_json: bool, tenant: str) -> ExportTraceServiceResponse:
        notes: dict[str, int] = {}
        try:
            if as_json:
                body, notes = json_to_protobuf(body)
            result: DecodeResult = self.decoder.decode_bytes(body, tenant)
        except RequestDecodeError as exc:
            self.requests_invalid_total += 1
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
        spans = result.batch.size
        try:
            self.pipeline.consume(result)
        except WriterFull as exc:
            self.spans.refused(spans + result.rejected_spans)
            raise _Unavailable(f"collector is busy, retry later: {exc}", exc.retry_after_s) from None
        except Exception:
            self.spans.refused(spans + result.rejected_spans)
            raise
        self.spans.accepted(spans, result.rejected_spans)
        for problem, count in notes.items():
            result.note(problem, count)
        return result.export_response()
