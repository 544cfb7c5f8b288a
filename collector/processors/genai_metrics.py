"""genai_metrics: calls, tokens, cost and latency of every GenAI call, for GET /metrics (spanhouse_genai_*).

It runs after price and dedup and before sample, so it sees every priced call whatever the sampling
decision, and a call traced twice once (the same calls genai_calls counts). Its counts stand only for
spans the writer (or, in a worker process, the owner's spool) took: the pipeline tells it after each
request (`settle`), so a request refused with "retry later" and sent again is counted once.

Series are keyed by (tenant, service, provider, model, operation, status). A client chooses those
values, so their number is capped (`metrics.max_series`): past the cap, a new label set is counted
under the label set whose every value is `other`. Label sets admitted stay admitted, so every series
only grows between scrapes, as Prometheus expects of a counter.
"""

from __future__ import annotations

import bisect
import operator
import threading
from typing import Any

from spanhouse.collector.batch import DUPLICATE_OF, WRITE_CALL, SpanBatch

LABELS = ("tenant", "service", "provider", "model", "operation", "status")
OTHER = ("other",) * len(LABELS)
TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")
# Upper bounds in seconds. LLM calls run from tens of milliseconds (embeddings) to minutes (reasoning).
DURATION_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Spans that repeat their children's usage: counted as calls, never their tokens (as trace_costs does).
NO_TOKEN_OPERATIONS = frozenset({"invoke_agent", "create_agent", "invoke_workflow", "execute_tool"})
_DURATION_BUCKETS_NS = tuple(round(bound * 1e9) for bound in DURATION_BUCKETS_S)
_TOKEN_COLUMNS = ("InputTokens", "CacheReadTokens", "CacheWriteTokens", "OutputTokens", "ReasoningTokens")

# One series' numbers, a flat list (it crosses processes as JSON):
CALLS = 0
TOKENS = 1  # .. TOKENS + len(TOKEN_KINDS) - 1, in TOKEN_KINDS order
COST = TOKENS + len(TOKEN_KINDS)
DURATION_SUM = COST + 1
DURATION_BUCKETS = DURATION_SUM + 1  # one count per bucket, then the count above the last bound
TTFT_SUM = DURATION_BUCKETS + len(DURATION_BUCKETS_S) + 1
TTFT_BUCKETS = TTFT_SUM + 1
WIDTH = TTFT_BUCKETS + len(TTFT_BUCKETS_S) + 1

Series = dict[tuple[str, ...], list[float]]


def merge_into(target: Series, source: Series) -> None:
    for key, values in source.items():
        into = target.get(key)
        if into is None:
            target[key] = list(values)
        else:
            for i, value in enumerate(values):
                into[i] += value


class SeriesTable:
    """Series with a cap on distinct label sets; thread-safe."""

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._series: Series = {}
        self._lock = threading.Lock()
        self.version = 0  # changes whenever a count does: a worker reports only changed tables

    def add(self, tally: Series) -> None:
        with self._lock:
            series = self._series
            for key, values in tally.items():
                into = series.get(key)
                if into is None:
                    if len(series) - (OTHER in series) >= self.max_series:
                        key = OTHER
                        into = series.get(key)
                    if into is None:
                        series[key] = list(values)
                        continue
                for i, value in enumerate(values):
                    into[i] += value
            self.version += 1

    def snapshot(self) -> Series:
        with self._lock:
            return {key: list(values) for key, values in self._series.items()}


def to_wire(series: Series) -> list[list[Any]]:
    """JSON-ready: [[label values...], [numbers...]] per series."""
    return [[list(key), values] for key, values in series.items()]


def from_wire(doc: Any) -> Series:
    """Inverse of `to_wire`; anything malformed is skipped (it comes from our own workers, but never trust it)."""
    out: Series = {}
    if not isinstance(doc, list):
        return out
    for item in doc:
        if (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and len(item[0]) == len(LABELS)
                and isinstance(item[1], list) and len(item[1]) == WIDTH):
            out[tuple(str(v) for v in item[0])] = [float(v) for v in item[1]]
    return out


class GenAIMetricsProcessor:
    name = "genai_metrics"

    def __init__(self, max_series: int) -> None:
        self.table = SeriesTable(max_series)
        self._pending = threading.local()  # this receiver thread's tally, until the pipeline settles it

    def counters(self) -> dict[str, int]:
        return {}

    def settle(self, accepted: bool) -> None:
        """The request whose spans this thread just processed was taken (or refused: forget its tally)."""
        tally = getattr(self._pending, "tally", None)
        self._pending.tally = None
        if accepted and tally:
            self.table.add(tally)

    def process(self, batch: SpanBatch) -> SpanBatch:
        operations = batch.columns.get("Operation")
        if operations is None:
            return batch
        duplicate = batch.columns.get(DUPLICATE_OF)
        write_call = batch.columns.get(WRITE_CALL)
        if duplicate is not None and not any(duplicate):
            duplicate = None
        if write_call is not None and all(write_call):
            write_call = None
        rows: list[int] | None = None  # None: every row (a batch of GenAI calls only, the common case)
        if not all(operations) or duplicate is not None or write_call is not None:
            # What genai_calls counts (writer/clickhouse.py): GenAI spans, not duplicates, routed to it.
            rows = [i for i, operation in enumerate(operations) if operation
                    and (duplicate is None or not duplicate[i]) and (write_call is None or write_call[i])]
            if not rows:
                return batch
        tally = getattr(self._pending, "tally", None) or {}
        self._count(batch, rows, tally)
        self._pending.tally = tally
        return batch

    def _count(self, batch: SpanBatch, rows: list[int] | None, tally: Series) -> None:
        # Columns, not rows: pick the GenAI rows' values with itemgetter, group them by label set, and sum and
        # bucket each group with built-ins (a batch's calls mostly share one or a few label sets).
        c = batch.columns
        pick = _picker(rows)
        responses, requests = pick(batch.column("ResponseModel")), pick(batch.column("RequestModel"))
        models = (responses if all(responses) else requests if not any(responses) else
                  [r or q for r, q in zip(responses, requests)])
        codes, errors = pick(c["StatusCode"]), pick(batch.column("ErrorType"))
        statuses: Any = (("ok",) * len(codes) if "Error" not in codes and not any(errors) else
                         ["error" if code == "Error" or error else "ok" for code, error in zip(codes, errors)])
        labels = (pick(c["TenantId"]), pick(c["ServiceName"]), pick(batch.column("Provider")), models,
                  pick(c["Operation"]), statuses)
        columns = {
            "duration": pick(c["Duration"]), "ttft": pick(batch.column("TimeToFirstToken")),
            "cost": pick(batch.column("CostTotal")),
            **{name: pick(batch.column(name)) for name in _TOKEN_COLUMNS},
        }
        if all(len(set(values)) == 1 for values in labels):  # the common case: one label set, no tuple per row
            self._add(tally, tuple(values[0] for values in labels), columns)
            return
        groups: dict[tuple[str, ...], list[int]] = {}
        for position, key in enumerate(zip(*labels)):
            groups.setdefault(key, []).append(position)
        for key, positions in groups.items():
            take = _picker(positions)
            self._add(tally, key, {name: take(values) for name, values in columns.items()})

    @staticmethod
    def _add(tally: Series, key: tuple[str, ...], columns: dict[str, Any]) -> None:
        values = tally.get(key)
        if values is None:
            values = tally[key] = [0.0] * WIDTH
        durations = columns["duration"]
        values[CALLS] += len(durations)
        if key[4] not in NO_TOKEN_OPERATIONS:
            for offset, name in enumerate(_TOKEN_COLUMNS):
                values[TOKENS + offset] += sum(filter(None, columns[name]))
        values[COST] += sum(filter(None, columns["cost"]))
        # In nanoseconds as stored: integer sort and compare, one division for the sum.
        values[DURATION_SUM] += sum(durations) / 1e9
        _bucket(values, DURATION_BUCKETS, _DURATION_BUCKETS_NS, sorted(durations))
        ttft = sorted(t for t in columns["ttft"] if t is not None)
        if ttft:
            values[TTFT_SUM] += sum(ttft)
            _bucket(values, TTFT_BUCKETS, TTFT_BUCKETS_S, ttft)


def _picker(positions: list[int] | None) -> Any:
    """A function taking the values at `positions` of a column, at C speed (itemgetter); None: all of them."""
    if positions is None:
        return _everything
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    return operator.itemgetter(*positions)


def _everything(values: Any) -> Any:
    return values


def _bucket(values: list[float], start: int, bounds: tuple[float, ...], ordered: list[Any]) -> None:
    """Add the count of each bucket (le bound; the last slot above every bound) of the sorted `ordered`."""
    below = 0
    for offset, bound in enumerate(bounds):
        upto = bisect.bisect_right(ordered, bound)
        values[start + offset] += upto - below
        below = upto
    values[start + len(bounds)] += len(ordered) - below
