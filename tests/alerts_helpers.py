"""Helpers for the alert tests: GenAI call rows at chosen times, a recording webhook on loopback."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spanhouse.collector.alerts.engine import AlertEngine
from spanhouse.collector.alerts.notify import Notification
from spanhouse.collector.store import Store

CALL_COLUMNS = ["TenantId", "Timestamp", "ServiceName", "TraceId", "SpanId", "Operation", "CostTotal", "StatusCode",
                "ErrorType", "Duration", "AgentName"]


def call(at: float, *, tenant: str = "acme", service: str = "chat", cost: float | None = 0.01, error: bool = False,
         trace_id: str | None = None, duration_s: float = 0.5, agent: str = "",
         operation: str = "chat") -> list[Any]:
    """One genai_calls row at Unix time `at`."""
    return [tenant, dt.datetime.fromtimestamp(at, dt.UTC), service, trace_id or os.urandom(16).hex(),
            os.urandom(8).hex(), operation, cost, "Error" if error else "Ok", "timeout" if error else "",
            int(duration_s * 1e9), agent]


def insert_calls(store: Store, rows: list[list[Any]]) -> None:
    store.insert("genai_calls", [list(column) for column in zip(*rows)], CALL_COLUMNS)


@dataclass
class Recorder:
    """What an engine emitted, in order: (event, notification)."""

    events: list[tuple[str, Notification]] = field(default_factory=list)

    def __call__(self, event: str, note: Notification) -> None:
        self.events.append((event, note))

    def of(self, alertname: str) -> list[tuple[str, Notification]]:
        return [(e, n) for e, n in self.events if n.labels["alertname"] == alertname]

    def clear(self) -> None:
        self.events.clear()


def recording(engine: AlertEngine) -> Recorder:
    recorder = Recorder()
    engine.on_notify = recorder
    return recorder


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class Webhook:
    """A real HTTP server on loopback that records POSTs; `behaviour` may fail or hang requests."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.cond = threading.Condition()
        self.fail_next = 0  # answer `fail_status` to this many requests first
        self.fail_status = 503
        self.hang = threading.Event()  # while set, requests are held (a dead receiver), until release
        self.release = threading.Event()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if webhook.hang.is_set():
                    webhook.release.wait(60)
                    return
                with webhook.cond:
                    failing = webhook.fail_next > 0
                    if failing:
                        webhook.fail_next -= 1
                    webhook.received.append(Received(self.path, dict(self.headers), body, time.monotonic()))
                    webhook.cond.notify_all()
                self.send_response(webhook.fail_status if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"webhook did not get what was expected within {timeout_s} s: " \
                                      f"{[r.body[:300] for r in self.received]}"
                self.cond.wait(remaining)
            return list(self.received)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()
