"""Run SQL against the configured store: through a running collector, or directly.

While a collector owns an embedded store, no other process can open it, so the
query goes to the collector's loopback query endpoint (`query.endpoint`). With
no collector answering there, the store is opened directly. A ClickHouse server
is always read directly.

A read never creates a store: an embedded store directory that does not exist
(or holds no store) is an error naming the path, so a typo in `--store` or a
command run from the wrong directory says so instead of answering 0.

A collector with API keys needs one on its query endpoint: `SPANHOUSE_API_KEY`
is sent as `Authorization: Bearer <key>`. A tenant key sees that tenant's rows
only; an admin key, or opening the store directly, sees every tenant. Either way
the statement is checked and limited as on the endpoint (guard, limits).

Writes (`spanhouse query --write`) only ever go to the store directly, never
through a collector: a running collector is the store's only writer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spanhouse.collector.query.engine_errors import engine_message
from spanhouse.collector.store import Store, StoreBusyError, StoreError, StoreLocation

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.query.server import ReadPolicy


class QueryError(RuntimeError):
    """The statement could not run or was refused; the message is one line for the user."""

    serves = ""  # the store of the collector that refused it, when it said


class _NoCollector(Exception):
    pass


API_KEY_ENV = "SPANHOUSE_API_KEY"


def _collector_post(endpoint: str, path: str, body: bytes, timeout_s: float = 120.0) -> bytes:
    return _collector_call(endpoint, path, body, timeout_s)[0]


def check_loopback(endpoint: str) -> None:
    """Refuse a query endpoint off this machine: the read commands speak plain HTTP and send the API key, so
    they reach only a collector on this machine (remote readers use a ClickHouse client over TLS)."""
    from spanhouse.collector.auth import is_loopback

    host = endpoint.rpartition(":")[0].strip("[]")
    if not is_loopback(host):
        raise QueryError(f"query endpoint {endpoint} is not a loopback address: the read commands reach a "
                         "collector on this machine only, at 127.0.0.1, ::1 or localhost (--query-endpoint, "
                         "query.endpoint); from elsewhere, use a ClickHouse client over TLS (docs/queries.md)")


def _collector_call(endpoint: str, path: str, body: bytes, timeout_s: float = 120.0) -> tuple[bytes, str]:
    """The collector's answer and the store it says it serves ("" when it does not say)."""
    from spanhouse.collector.query.server import STORE_HEADER

    check_loopback(endpoint)
    headers = {}
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"http://{endpoint}{path}", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.read(), resp.headers.get(STORE_HEADER, "")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip() or f"HTTP {exc.code} {exc.reason}"
        if exc.code == 400 and path.startswith("/query"):  # the engine refused the statement itself
            error = QueryError(f"the query failed: {engine_message(text)}")
        else:
            error = QueryError(f"the collector at {endpoint} refused the query: {engine_message(text)}")
        error.serves = exc.headers.get(STORE_HEADER, "") if exc.headers else ""
        raise error from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        raise _NoCollector(f"{endpoint}: {getattr(exc, 'reason', exc)}") from None


def whoami(endpoint: str) -> tuple[str, bool]:
    """(tenant, admin) of the SPANHOUSE_API_KEY caller as the collector at `endpoint` sees it."""
    check_loopback(endpoint)
    key = os.environ.get(API_KEY_ENV, "").strip()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(f"http://{endpoint}/whoami", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip() or f"HTTP {exc.code} {exc.reason}"
        raise QueryError(f"the collector at {endpoint} did not say whose key this is: {text}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as exc:
        raise QueryError(f"the collector at {endpoint} did not say whose key this is: "
                         f"{getattr(exc, 'reason', exc)}") from None
    return str(doc.get("tenant", "")), bool(doc.get("admin"))


def collector_answers(endpoint: str) -> bool:
    """True when a spanhouse collector answers /health on `endpoint`."""
    if not endpoint:
        return False
    check_loopback(endpoint)
    try:
        with urllib.request.urlopen(f"http://{endpoint}/health", timeout=5) as resp:
            return resp.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False


def check_store_exists(location: StoreLocation) -> None:
    """Raise QueryError unless the embedded store at `location` exists: reads never create one."""
    path = location.path
    if path is None or (path / "metadata").is_dir():
        return
    what = "does not exist" if not path.exists() else "holds no spanhouse store"
    raise QueryError(
        f"no store at {path} (the directory {what}). Name the store with --store chdb:///path/to/store, "
        "give the collector's configuration with --config FILE, or start the collector "
        "(`spanhouse collector`) and query through it")


class Reader:
    """Runs statements for one command on whichever answers first: the collector's endpoint or the store.

    The source is settled at the first statement and kept for the rest, so a report's queries all read
    the same data; `announce` is called once with a short description of it ("the collector at ...").
    """

    def __init__(self, cfg: Config, *, write: bool = False, announce: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.write = write
        self.location = StoreLocation.parse(cfg.store.url)
        self._announce = announce
        self._endpoint: str | None = None  # the collector answering, once known
        self._store: Store | None = None
        self._policy: ReadPolicy | None = None
        self.source = ""

    @property
    def endpoint(self) -> str | None:
        """The collector's query endpoint when it answers this reader's statements (None: the store itself,
        or nothing run yet)."""
        return self._endpoint

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _settle(self, description: str) -> None:
        self.source = description
        if self._announce is not None:
            self._announce(description)

    def run(self, sql: str, fmt: str) -> bytes:
        """The result of `sql` in ClickHouse output format `fmt`."""
        if self._endpoint is not None:
            try:
                return _collector_post(self._endpoint, f"/query?format={fmt}", sql.encode("utf-8"))
            except _NoCollector as exc:
                raise QueryError(f"the collector stopped answering ({exc})") from None
        if self._store is None:
            endpoint = self.cfg.query.endpoint
            reason = ""
            if self.write:
                if collector_answers(endpoint):
                    raise QueryError(
                        f"a collector is running (its query endpoint at {endpoint} answered): it is the store's "
                        "only writer and answers read-only queries. Stop the collector, then run "
                        "`spanhouse query --write` again")
            elif self.location.embedded and endpoint:
                check_loopback(endpoint)
                try:
                    body, serves = _collector_call(endpoint, f"/query?format={fmt}", sql.encode("utf-8"))
                except _NoCollector as no_collector:
                    reason = f"no collector answered on the query endpoint ({no_collector})"
                except QueryError as refused:  # the collector answered, with a refusal or the engine's error
                    if not self._other_store(refused.serves):
                        self._endpoint = endpoint
                        self._settle(self._collector_source(endpoint, refused.serves))
                        raise
                    reason = f"the collector at {endpoint} serves another store ({refused.serves})"
                else:
                    if not self._other_store(serves):
                        self._endpoint = endpoint
                        self._settle(self._collector_source(endpoint, serves))
                        return body
                    reason = f"the collector at {endpoint} serves another store ({serves})"
            elif self.location.embedded:
                reason = "no collector was asked: query.endpoint is disabled"
            self._open(reason)
        return self._run_direct(sql, fmt)

    def resolve_content(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`rows` (dicts naming trace_id and span_id) with archived content references replaced by the content,
        for an admin key, each read recorded in genai_content_access (path "export"); unchanged for tenant keys.
        Run after `run`, on the source it settled."""
        if self._endpoint is not None:
            try:
                body = _collector_post(self._endpoint, "/content", json.dumps({"rows": rows}).encode("utf-8"))
            except _NoCollector as exc:
                raise QueryError(f"the collector stopped answering ({exc})") from None
            return list(json.loads(body)["rows"])
        if self._policy is None:
            return rows
        from spanhouse.collector.auth import Principal
        from spanhouse.collector.query.content import resolve_archived

        return resolve_archived(rows, self._policy, Principal("", admin=True), "export")

    @staticmethod
    def _collector_source(endpoint: str, serves: str) -> str:
        return f"the collector at {endpoint}" + (f" (store {serves})" if serves else "")

    def _other_store(self, serves: str) -> bool:
        """True when the user named a store by an absolute location and the collector answering serves another.

        With no store named (or a relative one such as the default `chdb://./spanhouse-data`, which means a
        different directory from wherever the command runs), whichever collector answers on the endpoint is
        the one meant: that is how a command run from any directory reads the running collector's data."""
        url = self.cfg.store.url
        if not serves or (url.startswith("chdb://") and not url[len("chdb://"):].startswith(("/", "~"))):
            return False
        try:
            return StoreLocation.parse(serves) != self.location
        except StoreError:
            return True

    def _open(self, reason: str) -> None:
        check_store_exists(self.location)
        try:
            self._store = Store.open(self.cfg.store.url, create=False)  # a read never makes a store
        except StoreBusyError as exc:
            why = f"; {reason}" if reason else ""
            raise QueryError(f"{exc}{why}. Point --query-endpoint or --config at the collector that holds it, "
                             "or stop the other process") from None
        except StoreError as exc:  # its first line says what; an engine's stack trace may follow
            raise QueryError(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from None
        from spanhouse.collector.query.server import ReadPolicy

        self._policy = ReadPolicy(self._store, self.cfg.query, path="cli")
        if self.location.embedded:
            self._settle(f"the embedded store {self.location.path}")
        else:
            self._settle(f"the ClickHouse server {self.location.redacted()}")

    def _run_direct(self, sql: str, fmt: str) -> bytes:
        from spanhouse.collector.auth import Principal
        from spanhouse.collector.query.guard import HostAccessRefused
        from spanhouse.collector.query.limits import LimitExceeded
        from spanhouse.collector.query.server import NotReadOnly
        from spanhouse.collector.query.tenant_scope import NotAllowed

        assert self._policy is not None, "_open() first"
        try:
            if self.write:
                return self._policy.run_write(sql, fmt)
            # Opened directly, the store answers under the same guard and limits as the endpoint.
            return self._policy.run(Principal("", admin=True), sql, fmt)
        except NotReadOnly as exc:
            if exc.kind:
                raise QueryError(
                    f"only read-only statements (SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS) run without --write; "
                    f"this statement is {exc.kind}. To change the store, run `spanhouse query --write` "
                    "(with no collector running)") from None
            raise QueryError(str(exc)) from None
        except (HostAccessRefused, NotAllowed, LimitExceeded) as exc:
            raise QueryError(str(exc)) from None
        except Exception as exc:  # the engine refused the statement: its message, without the noise
            raise QueryError(f"the query failed: {engine_message(str(exc))}") from None


def run(cfg: Config, sql: str, fmt: str) -> bytes:
    """The result of one read-only `sql` in ClickHouse output format `fmt`."""
    with Reader(cfg) as reader:
        return reader.run(sql, fmt)


def flush(cfg: Config) -> None:
    """Ask a running collector to write what it has accepted (no-op without one)."""
    if not cfg.query.endpoint:
        return
    try:
        _collector_post(cfg.query.endpoint, "/flush", b"")
    except _NoCollector:
        pass
