"""Limits on every read through the query endpoint and the read commands, enforced by the engine.

The endpoint runs inside the collector, beside ingestion, on the same engine. Each query gets:

- the engine's own limits (`max_execution_time`, `max_memory_usage`, `max_result_rows`,
  `max_result_bytes`, overflow mode `throw`) from `query.*`;
- on the embedded engine, a connection of its own opened for that query, so a long query holds
  no lock that ingestion or another caller's query waits on; the limits are `SET` on it and then
  `readonly=1`, after which the engine refuses any change of a setting (a `SETTINGS` clause
  included) and refuses the table functions that reach the host (`file`, `url`, `remote`,
  `executable`, ...) as a second layer behind guard.py;
- a slot: at most `query.max_concurrent_per_caller` queries at once per caller and
  `query.max_concurrent` in all; past that the caller is told to retry (HTTP 429).

A query stopped by a limit raises LimitExceeded naming the `query.*` option to change.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from spanhouse.collector.query.engine_errors import engine_message

if TYPE_CHECKING:
    from spanhouse.collector.config import QueryConfig
    from spanhouse.collector.store import Store
    from spanhouse.collector.store.backends import ReadResult

MIB = 1 << 20
_ERROR_CODE = re.compile(r"\((TIMEOUT_EXCEEDED|MEMORY_LIMIT_EXCEEDED|TOO_MANY_ROWS_OR_BYTES|READONLY)\)")


class LimitExceeded(RuntimeError):
    """The engine stopped a query at one of the endpoint's limits; the message names the option."""


class TooBusy(RuntimeError):
    """The caller already runs as many queries as it may; the message says which option bounds it."""


def engine_settings(cfg: QueryConfig) -> dict[str, Any]:
    """The engine settings that bound one query; order matters only in that readonly comes after them."""
    return {
        "max_execution_time": cfg.max_execution_s,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": cfg.max_memory_mib * MIB,
        "max_result_rows": cfg.max_result_rows,
        "max_result_bytes": cfg.max_result_mib * MIB,
        "result_overflow_mode": "throw",
    }


def explain_limit(exc: Exception, cfg: QueryConfig) -> Exception:
    """A LimitExceeded naming the `query.*` option for engine errors raised by a limit; else `exc` itself."""
    match = _ERROR_CODE.search(str(exc))
    if match is None:
        return exc
    code = match.group(1)
    if code == "TIMEOUT_EXCEEDED":
        text = (f"the query ran longer than query.max_execution_s = {cfg.max_execution_s:g} s and was stopped; "
                "narrow it (a time range, fewer joins) or raise query.max_execution_s")
    elif code == "MEMORY_LIMIT_EXCEEDED":
        text = (f"the query needed more memory than query.max_memory_mib = {cfg.max_memory_mib} MiB and was "
                "stopped; aggregate over fewer keys or a shorter time range, or raise query.max_memory_mib")
    elif code == "TOO_MANY_ROWS_OR_BYTES":
        text = (f"the result is larger than query.max_result_rows = {cfg.max_result_rows} rows or "
                f"query.max_result_mib = {cfg.max_result_mib} MiB; add a LIMIT or aggregate, or raise those options")
    else:
        text = ("the query endpoint runs statements read-only with its settings fixed by query.*: "
                "drop the SETTINGS clause and any function that reads outside the store")
    return LimitExceeded(f"{text} (engine: {_first_line(str(exc))})")


def run_read(store: Store, sql: str, fmt: str, settings: dict[str, Any], engine_readonly: bool) -> bytes:
    """`sql`'s result in `fmt`, under `settings` (the store's backend decides on which connection).

    A `FORMAT` clause in `sql` itself wins over `fmt` (the engine's rule); callers that must know the
    format of the bytes read it from the statement first (see server.statement_format).
    """
    return store.backend.read(store, sql, fmt, settings, engine_readonly)


def run_read_result(store: Store, sql: str, fmt: str, settings: dict[str, Any], engine_readonly: bool,
                    params: dict[str, str] | None = None) -> ReadResult:
    """Like run_read, with the engine's counters and `{name:Type}` parameter values (escaped text form)."""
    return store.backend.read_result(store, sql, fmt, settings, engine_readonly, params)


class CallerSlots:
    """Counts queries under way per caller and in all; refuses one past either bound."""

    def __init__(self, per_caller: int, total: int) -> None:
        self.per_caller = per_caller
        self.total = total
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()

    @contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        with self._lock:
            if self._running[caller] >= self.per_caller:
                raise TooBusy(f"this caller already runs {self.per_caller} queries "
                              f"(query.max_concurrent_per_caller); wait for one to finish and retry")
            if sum(self._running.values()) >= self.total:
                raise TooBusy(f"the collector already runs {self.total} queries (query.max_concurrent); "
                              "retry shortly")
            self._running[caller] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[caller] -= 1
                if not self._running[caller]:
                    del self._running[caller]

    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())


def _first_line(text: str) -> str:
    return engine_message(text)[:300]
