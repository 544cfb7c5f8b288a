"""The answers to GET /metrics and GET /ready, on the query endpoint and on a scrape listener of their own.

Access: /metrics shows every tenant's counts, so with API keys configured it needs an admin key (as
/stats does); /health and /ready say only whether the collector can take spans, so probes need none.
`metrics.endpoint` starts a listener serving just these three paths, for a Prometheus that should not
reach the query endpoint.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from spanhouse.collector.auth import AuthError, KeyRing, Principal
from spanhouse.collector.component import ListenError
from spanhouse.collector.metrics.exposition import CollectorMetrics
from spanhouse.collector.metrics.readiness import readiness

log = logging.getLogger("spanhouse.metrics")

PATHS = ("/metrics", "/ready")
TEXT = "text/plain; charset=utf-8"
Reply = tuple[HTTPStatus, bytes, str]


class MetricsEndpoint:
    """Answers /metrics and /ready for one running collector (service.Collector)."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector
        # A registry of its own: nothing else in the process (a library's default metrics) leaks into a scrape.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CollectorMetrics(collector))

    def answer(self, path: str, caller: Callable[[], Principal | None]) -> Reply | None:
        """The reply for `path` (one of PATHS); None when `caller()` already answered (401)."""
        if path == "/ready":
            ready, reason = readiness(self.collector)
            return (HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE), f"{reason}\n".encode(), TEXT
        principal = caller()
        if principal is None:
            return None
        if not principal.admin:
            return HTTPStatus.FORBIDDEN, b"the collector's metrics need an admin key\n", TEXT
        return HTTPStatus.OK, generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # This listener may face other machines: a client that stops sending mid-request must not hold its
    # thread for ever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("metrics endpoint: " + format, *args)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str = TEXT,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _caller(self) -> Principal | None:
        keys = self.server.keys
        if keys is None:
            return Principal("", admin=True)
        try:
            return keys.authenticate(self.headers.get("Authorization"))
        except AuthError as exc:
            log.warning("refused a metrics scrape: %s", exc)
            self._reply(HTTPStatus.UNAUTHORIZED, f"{exc} (scrape with an admin API key as a bearer token)\n".encode(),
                        headers={"WWW-Authenticate": "Bearer"})
            return None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = urlsplit(self.path).path
        if path == "/health":
            self._reply(HTTPStatus.OK, b"ok\n")
        elif path in PATHS:
            reply = self.server.endpoint.answer(path, self._caller)
            if reply is not None:
                self._reply(*reply)
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"unknown path; use GET /metrics, /health or /ready\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: MetricsEndpoint
    keys: KeyRing | None


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """The listener at `metrics.endpoint`: GET /metrics, /health and /ready only."""

    def __init__(self, endpoint: MetricsEndpoint, address: str) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            self._server = (_Server6 if ":" in host else _Server)((host, int(port)), _Handler)
        except OSError as exc:
            raise ListenError(f"cannot listen for metrics on {address}: {exc.strerror}. Choose another port with "
                              "`metrics.endpoint`") from None
        self._server.endpoint = endpoint
        keys = KeyRing.from_config(endpoint.collector.config.auth)
        self._server.keys = keys if keys else None
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="spanhouse-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()
        host = f"[{self.host}]" if ":" in self.host else self.host
        log.info("metrics endpoint listening on http://%s:%d/metrics", host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
