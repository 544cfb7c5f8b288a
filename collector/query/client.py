"""Run SQL against the configured store: through a running collector, or directly.

While a collector owns an embedded store, no other process can open it, so the
query goes to the collector's loopback query endpoint. With no collector
running, the store is opened directly. A ClickHouse server is always direct.

A collector with API keys needs one on its query endpoint: `SPANHOUSE_API_KEY`
is sent as `Authorization: Bearer <key>`. A tenant key sees that tenant's rows
only; an admin key, or opening the store directly, sees every tenant. Either way
the statement is checked and limited as on the endpoint (query_guard, query_limits).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from spanhouse.collector.config import Config
from spanhouse.collector.store import Store, StoreBusyError, StoreError, StoreLocation


class QueryError(RuntimeError):
    pass


class _NoCollector(Exception):
    pass


API_KEY_ENV = "SPANHOUSE_API_KEY"


def _post(cfg: Config, path: str, body: bytes, timeout_s: float = 120.0) -> bytes:
    if not cfg.query.endpoint:
        raise _NoCollector("query.endpoint is disabled")
    url = f"http://{cfg.query.endpoint}{path}"
    reason_prefix = f"{cfg.query.endpoint}: "
    headers = {}
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise QueryError(exc.read().decode("utf-8", "replace").strip()) from None
    except (urllib.error.URLError, ConnectionError) as exc:
        raise _NoCollector(reason_prefix + str(getattr(exc, "reason", exc))) from None


def run(cfg: Config, sql: str, fmt: str) -> bytes:
    """The result of `sql` in ClickHouse output format `fmt`."""
    location = StoreLocation.parse(cfg.store.url)
    if location.embedded:
        try:
            return _post(cfg, f"/query?format={fmt}", sql.encode("utf-8"))
        except _NoCollector as no_collector:
            reason = str(no_collector)
        try:
            store = Store.open(cfg.store.url)
        except StoreBusyError as exc:
            raise QueryError(
                f"{exc}; and no collector answered on the query endpoint ({reason}). "
                "Point --config/--store at the collector's settings, or stop the other process."
            ) from None
        except StoreError as exc:
            raise QueryError(str(exc)) from None
        try:
            store.migrate()  # a store no collector has opened yet still answers with empty tables
        except StoreError as exc:
            store.close()
            raise QueryError(str(exc)) from None
    else:
        try:
            store = Store.open(cfg.store.url)
        except StoreError as exc:
            raise QueryError(str(exc)) from None
    from spanhouse.collector.auth import Principal
    from spanhouse.collector.query.server import ReadPolicy

    # Opened directly, the store answers under the same host-access guard and limits as the endpoint.
    try:
        return ReadPolicy(store, cfg.query).run(Principal("", admin=True), sql, fmt)
    except Exception as exc:
        raise QueryError(str(exc)) from None
    finally:
        store.close()


def flush(cfg: Config) -> None:
    """Ask a running collector to write what it has accepted (no-op without one)."""
    try:
        _post(cfg, "/flush", b"")
    except _NoCollector:
        pass
