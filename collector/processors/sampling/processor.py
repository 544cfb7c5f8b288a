"""sample: keeps or drops whole traces' `spans` rows; every GenAI call still reaches genai_calls.

The sampler never decides about genai_calls: each span's call row goes to the
writer in the batch it arrived in, so usage rollups are exact at any rate.
Only `spans` rows are sampled, through the routing columns (batch.py):

- head only (a rate below 1, no tail policies, no per-service rates): each
  span is decided on arrival by its trace id (probability.py), the same way on
  every collector, so a trace is kept or dropped whole with no state held;
- tail (any tail policy or per-service rate): a trace's spans are held until
  its root span arrives or `decision_wait_s` passes, then one decision is made
  for the whole trace and remembered for `decision_cache_s`, so late spans
  follow it. Held spans leave in the batch they arrived in with only their
  call written; when kept they are released later with only their span row.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import gt, is_not
from typing import Any

from spanhouse.collector.batch import TRACE_FLAGS, WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.processors.sampling.config import SamplingConfig
from spanhouse.collector.processors.sampling.policies import (
    POLICIES,
    HeldTrace,
    RateLimiter,
    RestPolicy,
    TraceKey,
    TraceObserver,
    build_policies,
)
from spanhouse.collector.processors.sampling.probability import Rates, head_threshold, probability

SAMPLE_RATE = "SampleRate"
# Rows of a batch for SpanBatch.assemble: (batch, its rows or None for all, columns to set on them).
Piece = tuple[SpanBatch, Sequence[int] | None, dict[str, list[Any]] | None]
_DROP = 0.0  # a decision is the keep probability of the trace; 0 means dropped


class SampleProcessor:
    name = "sample"

    def __init__(self, config: SamplingConfig, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        """`clock` and `rng` (the rate limit's draws) are there for tests to fix."""
        self.config = config
        self._clock = clock
        self.rates = Rates(config.rate, config.tenant_rates, config.service_rates)
        self.honor_client = config.honor_client_decision
        self.policies = build_policies(config)
        self._observer = TraceObserver(self.policies)
        limiter = RateLimiter(config.rate_limit_traces_per_s, clock(), rng) if config.rate_limit_traces_per_s else None
        self._rest = RestPolicy(self.rates, self.honor_client, limiter)
        # Per-service rates need the root span's service, so they hold traces like the tail policies do.
        self.tail = bool(self.policies or limiter or config.service_rates)
        self.active = self.tail or not self.rates.always_one
        self.holds = self.tail  # a HoldingProcessor only with tail policies
        # How often the pipeline should call poll(): a tenth of the wait, within 50 ms .. 1 s.
        self.poll_interval_s = min(1.0, max(0.05, config.decision_wait_s / 10)) if self.tail else 0.0
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], HeldTrace] = {}  # insertion order = arrival order
        self._spans_held = 0
        self._decisions: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._outbox: list[SpanBatch] = []
        self.kept_by: dict[str, int] = dict.fromkeys(POLICIES, 0)
        self.traces_dropped_total = 0
        self.spans_kept_total = 0
        self.spans_sampled_out_total = 0
        self.early_decisions_total = 0
        self.wait_decisions_total = 0
        self.late_spans_total = 0

    # --- the processor protocol ----------------------------------------------------

    def process(self, batch: SpanBatch) -> SpanBatch:
        if not self.active or not batch.size:
            return batch
        if not self.tail:
            return self._head(batch)
        with self._lock:
            return self._tail(batch)

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = {"traces_held": len(self._held), "spans_held": self._spans_held,
                   "decisions_cached": len(self._decisions)}
        out.update({f"traces_kept_{policy}_total": n for policy, n in self.kept_by.items()})
        out.update({
            "traces_dropped_total": self.traces_dropped_total,
            "spans_kept_total": self.spans_kept_total,
            "spans_sampled_out_total": self.spans_sampled_out_total,
            "early_decisions_total": self.early_decisions_total,
            "wait_decisions_total": self.wait_decisions_total,
            "late_spans_total": self.late_spans_total,
        })
        return out

    # --- called by the pipeline outside process() -----------------------------------

    def poll(self, everything: bool = False) -> SpanBatch | None:
        """Decide the traces whose wait has passed (all held traces when `everything`); their kept spans.

        The result carries only span rows (their calls were written on arrival);
        hand it to the writer, or back through `refused` if the writer is full.
        """
        if not self.tail:
            return None
        with self._lock:
            now = self._clock()
            self._expire_decisions(now)
            released: list[tuple[HeldTrace, float]] = []
            deadline = now - self.config.decision_wait_s
            while self._held:
                key = next(iter(self._held))
                held = self._held[key]
                if not everything and held.first_seen > deadline:
                    break
                if everything:
                    self.early_decisions_total += 1
                else:
                    self.wait_decisions_total += 1
                released.append((held, self._decide_held(key, now)))
            pieces: list[Piece] = [(b, None, None) for b in self._outbox]
            self._outbox = []
            pieces += self._materialize(released)
        return _assemble(pieces)

    def refused(self, batch: SpanBatch) -> None:
        """The writer did not take `batch` (a process() or poll() result): undo what would be lost.

        Released spans go back to the outbox for the next poll(); spans this
        batch's request had put on hold are let go, since the client sends them
        again. Decisions stay: the retry follows them.
        """
        if not self.tail:
            return
        with self._lock:
            write_call = batch.columns.get(WRITE_CALL)
            released = [i for i, wanted in enumerate(write_call) if not wanted] if write_call is not None else []
            if released:
                self._outbox.append(batch.take(released))
            write_span = batch.columns.get(WRITE_SPAN)
            if write_span is None:
                return
            tenants, traces, span_ids = batch["TenantId"], batch["TraceId"], batch["SpanId"]
            unheld: dict[tuple[str, str], set[str]] = {}
            for i, wanted in enumerate(write_span):
                if not wanted and (write_call is None or write_call[i]):
                    key = (tenants[i], traces[i])
                    if key in self._held:
                        unheld.setdefault(key, set()).add(span_ids[i])
            for key, ids in unheld.items():
                self._unhold(key, ids)

    @property
    def spans_held(self) -> int:
        with self._lock:
            return self._spans_held + sum(b.size for b in self._outbox)

    # --- head sampling ---------------------------------------------------------------

    def _head(self, batch: SpanBatch) -> SpanBatch:
        n = batch.size
        tenants, traces, states = batch["TenantId"], batch["TraceId"], batch["TraceState"]
        flags = batch.columns.get(TRACE_FLAGS) or [0] * n
        honor = self.honor_client
        ours_by_tenant: dict[str, tuple[int, float]] = {}
        write = [True] * n
        rates = [1.0] * n
        dropped = 0
        for i in range(n):
            tenant = tenants[i]
            ours = ours_by_tenant.get(tenant)
            if ours is None:
                ours = ours_by_tenant[tenant] = (self.rates.threshold_of(tenant, ""), self.rates.of(tenant, ""))
            th, r = head_threshold(ours[0], traces[i], states[i], flags[i], honor)
            if r < th:
                write[i] = False
                dropped += 1
            else:
                # The configured rate itself when it decided (its threshold only approximates it).
                rates[i] = ours[1] if th == ours[0] else probability(th)
        self.spans_sampled_out_total += dropped
        self.spans_kept_total += n - dropped
        if dropped:
            batch.set_column(WRITE_SPAN, write)
            batch.drop_span_only(write)
        batch.set_column(SAMPLE_RATE, rates)
        return batch

    # --- tail sampling (under self._lock) ----------------------------------------------

    def _tail(self, batch: SpanBatch) -> SpanBatch:
        # Column at a time: one key per row, then work per trace (a batch holds a sixth as many traces as
        # spans in an agent workload) and whole-column operations; no Python code runs per span but the
        # cost policy's sums.
        now = self._clock()
        self._expire_decisions(now)
        n = batch.size
        columns = batch.columns
        tenants, trace_ids = columns["TenantId"], columns["TraceId"]
        tenant = tenants[0]
        # Each row's trace. A request's batch has one tenant: then the trace id column itself serves, and no
        # tuple is made per span (each one would count toward the next garbage collection).
        if tenants.count(tenant) == n:
            row_keys: list[Any] = trace_ids
            counts = Counter(row_keys)  # each trace's spans in this batch, in order of first appearance
            keys: dict[Any, TraceKey] = {trace_id: (tenant, trace_id) for trace_id in counts}
        else:
            row_keys = list(zip(tenants, trace_ids))
            counts = Counter(row_keys)
            keys = dict(zip(counts, counts))
        decisions = self._decisions
        # The keep probability of each trace decided by now whose spans here are written.
        kept: dict[Any, float] = {}
        late: set[Any] = set()
        if decisions:
            for row_key, key in keys.items():
                decided = decisions.get(key)
                if decided is None:
                    continue
                late.add(row_key)  # a late span: follows its trace's decision
                count = counts[row_key]
                self.late_spans_total += count
                if decided[0] != _DROP:
                    kept[row_key] = decided[0]
                    self.spans_kept_total += count
                else:
                    self.spans_sampled_out_total += count
        held_traces = self._held
        traces: dict[Any, HeldTrace] = {}  # the batch's undecided traces, by row key
        new: list[Any] = []
        for row_key, key in keys.items():
            if row_key in late:
                continue
            held = held_traces.get(key)
            if held is None:
                held = HeldTrace(key[0], key[1], now)
                new.append(row_key)
            traces[row_key] = held
        self._observer.observe(columns, row_keys, traces, new)
        released: list[tuple[HeldTrace, float]] = []
        to_hold: list[tuple[Any, HeldTrace, int]] = []
        decide = self._decide
        for row_key, held in traces.items():
            count = counts[row_key]
            key = keys[row_key]
            if held.root_seen:
                rate = decide(key, held, now, count)
                if held.spans:
                    released.append((held, rate))
                    del held_traces[key]
                    self._spans_held -= held.spans
                if rate != _DROP:
                    kept[row_key] = rate
            else:
                if not held.spans:
                    held_traces[key] = held
                to_hold.append((row_key, held, count))
        if to_hold:
            self._hold(batch, row_keys, to_hold, len(to_hold) == len(counts))
        cfg = self.config
        while held_traces and (len(held_traces) > cfg.max_traces_held or self._spans_held > cfg.max_spans_held):
            key = next(iter(held_traces))
            self.early_decisions_total += 1
            released.append((held_traces[key], self._decide_held(key, now)))
        if len(kept) == len(counts):  # every span here is written
            write = [True] * n
            rates = list(map(kept.__getitem__, row_keys)) if any(r != 1.0 for r in kept.values()) else [1.0] * n
        else:
            write = list(map(kept.__contains__, row_keys))
            rates = list(map(kept.get, row_keys, repeat(1.0))) if kept else [1.0] * n
        batch.set_column(WRITE_SPAN, write)
        batch.set_column(SAMPLE_RATE, rates)
        if len(kept) != len(counts):  # held or dropped spans: their rows here carry only their calls
            batch.drop_span_only(write)
        pieces = self._materialize(released)
        return _assemble([(batch, None, None), *pieces]) if pieces else batch

    def _hold(self, batch: SpanBatch, row_keys: list[Any], to_hold: list[tuple[Any, HeldTrace, int]],
              everything: bool) -> None:
        """Keep the rows of the traces in `to_hold` (row key, trace, its count of rows here) until they are
        decided; `everything` when they are all the batch's traces."""
        rank = {row_key: r for r, (row_key, _, _) in enumerate(to_hold)}
        if everything:
            rows = list(range(batch.size))
        else:
            rows = list(compress(range(batch.size), map(rank.__contains__, row_keys)))
        # The held rows grouped trace by trace in order of first appearance (a no-op sort when each trace's
        # rows are together already).
        ranks = list(map(rank.__getitem__, map(row_keys.__getitem__, rows)))
        interleaved = any(map(gt, ranks, ranks[1:]))
        if interleaved:
            rows = [rows[i] for i in sorted(range(len(rows)), key=ranks.__getitem__)]
        positions: Sequence[int]
        if 2 * len(rows) >= batch.size and not interleaved:
            # Most of the batch, each trace's rows together: hold its columns as they are now, no copy (the
            # rows leave in the same order as from a copy). Stages after this one replace a column, never
            # change one in place (batch.py), so these rows keep what they hold now.
            source = SpanBatch(dict(batch.columns), batch.size)
            positions = range(batch.size) if everything else rows
        else:  # a few rows: a copy of them, so the rest of the batch is not kept alive with them
            source = batch.take(rows)
            positions = range(len(rows))
        start = 0
        for _, held, count in to_hold:
            chunk = positions[start:start + count]
            if not isinstance(chunk, range) and chunk[-1] - chunk[0] == count - 1:
                chunk = range(chunk[0], chunk[0] + count)
            held.chunks.append((source, chunk))
            held.spans += count
            start += count
        self._spans_held += len(rows)

    def _decide_held(self, key: tuple[str, str], now: float) -> float:
        held = self._held.pop(key)
        self._spans_held -= held.spans
        return self._decide(key, held, now, 0)

    def _decide(self, key: tuple[str, str], held: HeldTrace, now: float, arriving: int) -> float:
        """The trace's keep probability (0: dropped), counted and remembered for late spans."""
        policy = ""
        for candidate in self.policies:
            if candidate.keeps(held):
                policy = candidate.name
                break
        if policy:
            rate = 1.0
        else:
            policy, rate = self._rest.decide(held, now)
        spans = held.spans + arriving
        if policy:
            self.kept_by[policy] += 1
            self.spans_kept_total += spans
        else:
            rate = _DROP
            self.traces_dropped_total += 1
            self.spans_sampled_out_total += spans
        self._decisions[key] = (rate, now)
        return rate

    def _expire_decisions(self, now: float) -> None:
        decisions = self._decisions
        oldest = now - self.config.decision_cache_s
        limit = self.config.decision_cache_max_traces
        while decisions:
            _, decided_at = next(iter(decisions.values()))
            if decided_at > oldest and len(decisions) <= limit:
                break
            decisions.popitem(last=False)

    def _materialize(self, released: list[tuple[HeldTrace, float]]) -> list[Piece]:
        """Kept traces' held spans as pieces of a batch (SpanBatch.assemble) that write span rows only.

        The traces held from one request share one batch of rows: their kept rows are taken from it
        at once (or it is passed on whole), never trace by trace.
        """
        # id(rows) -> (rows, each row's keep probability, None for rows not released or dropped)
        sources: dict[int, tuple[SpanBatch, list[float | None]]] = {}
        for held, rate in released:
            if rate == _DROP:
                continue
            for rows, indices in held.chunks:
                source = sources.get(id(rows))
                if source is None:
                    source = sources[id(rows)] = (rows, [None] * rows.size)
                row_rates = source[1]
                if isinstance(indices, range):  # as held: one slice of the rows
                    row_rates[indices.start:indices.stop] = [rate] * len(indices)
                else:  # what refused() left of it
                    for i in indices:
                        row_rates[i] = rate
        pieces: list[Piece] = []
        for rows, row_rates in sources.values():
            kept: Sequence[int] | None = None
            rates: list[Any] = row_rates
            if None in row_rates:
                kept = list(compress(range(rows.size), map(is_not, row_rates, repeat(None))))
                if kept[-1] - kept[0] == len(kept) - 1:  # a run of rows (the usual shape)
                    rates = row_rates[kept[0]:kept[-1] + 1]
                else:
                    rates = [row_rates[i] for i in kept]
            size = len(rates)
            pieces.append((rows, kept, {WRITE_CALL: [False] * size, WRITE_SPAN: [True] * size, SAMPLE_RATE: rates}))
        return pieces

    def _unhold(self, key: tuple[str, str], span_ids: set[str]) -> None:
        held = self._held[key]
        chunks: list[tuple[Any, Sequence[int]]] = []
        for rows, indices in held.chunks:
            ids = rows["SpanId"]
            left = [i for i in indices if ids[i] not in span_ids]
            if left:
                chunks.append((rows, left))
            removed = len(indices) - len(left)
            held.spans -= removed
            self._spans_held -= removed
        held.chunks = chunks
        if not chunks:
            del self._held[key]


def _assemble(pieces: list[Piece]) -> SpanBatch | None:
    """One batch of `pieces`; a whole batch alone is passed on as it is."""
    if not pieces:
        return None
    if len(pieces) == 1 and pieces[0][1] is None and pieces[0][2] is None:
        return pieces[0][0]
    return SpanBatch.assemble(pieces)
