# ruff: noqa: C419, PLR1730  (kept as first written: it is the reference)
"""The tail sampler as it was written first, span by span: the reference tests/test_sampling_differential.py
compares the columnar SampleProcessor with (same decisions, rows, routing and counters on any traffic)."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from spanhouse.collector.batch import TRACE_FLAGS, WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.processors.sampling.config import SamplingConfig
from spanhouse.collector.processors.sampling.policies import (
    AGENT_OPERATIONS,
    POLICIES,
    AttributeRule,
    HeldTrace,
    RateLimiter,
    RestPolicy,
)
from spanhouse.collector.processors.sampling.probability import Rates, head_threshold, probability

SAMPLE_RATE = "SampleRate"
_DROP = 0.0


class ErrorPolicy:
    """Keeps a trace with a span in error (status Error, or a GenAI span naming its error.type)."""

    name = "error"

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        if not held.error:
            status = columns["StatusCode"]
            error_type = columns.get("ErrorType")
            held.error = "Error" in [status[i] for i in indices] or (
                error_type is not None and any([error_type[i] for i in indices]))

    def keeps(self, held: HeldTrace) -> bool:
        return held.error


class DurationPolicy:
    """Keeps a trace with a span longer than `over_ns`."""

    name = "duration"

    def __init__(self, over_ns: int) -> None:
        self.over_ns = over_ns

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        duration = columns["Duration"]
        longest = max([duration[i] for i in indices])
        if longest > held.max_duration:
            held.max_duration = longest

    def keeps(self, held: HeldTrace) -> bool:
        return held.max_duration > self.over_ns


class CostPolicy:
    """Keeps a trace whose LLM calls cost more than `over_usd` together (agent spans' repeats left out)."""

    name = "cost"

    def __init__(self, over_usd: float) -> None:
        self.over_usd = over_usd

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        cost = columns.get("CostTotal")
        if cost is None:
            return
        operation = columns.get("Operation")
        for i in indices:
            if cost[i] and (operation is None or operation[i] not in AGENT_OPERATIONS):
                held.cost += cost[i]

    def keeps(self, held: HeldTrace) -> bool:
        return held.cost > self.over_usd


class AttributePolicy:
    """Keeps a trace with a span (or its resource) matching one of the `keep_attributes` rules."""

    name = "attribute"

    def __init__(self, rules: list[AttributeRule]) -> None:
        self.rules = rules

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        if not held.matched:
            attributes = columns["SpanAttributes"]
            resources = columns["ResourceAttributes"]
            held.matched = any(rule.matches(attributes[i], resources[i]) for i in indices for rule in self.rules)

    def keeps(self, held: HeldTrace) -> bool:
        return held.matched


def build_policies(config: SamplingConfig) -> list[Any]:
    """The policies the configuration turns on, in the order they are asked."""
    policies: list[Any] = []
    if config.keep_errors:
        policies.append(ErrorPolicy())
    over_ns = int(config.keep_duration_over_ms * 1_000_000)
    if over_ns:
        policies.append(DurationPolicy(over_ns))
    if config.keep_cost_over_usd is not None:
        policies.append(CostPolicy(config.keep_cost_over_usd))
    if config.keep_attributes:
        policies.append(AttributePolicy([AttributeRule(rule) for rule in config.keep_attributes]))
    return policies


class TraceObserver:
    """Folds a batch's spans of one trace into its HeldTrace: what every decision needs, then each policy's part."""

    def __init__(self, policies: list[Any]) -> None:
        self.policies = policies

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        if not held.spans and not held.service:
            first = indices[0]
            held.service = columns["ServiceName"][first]
            held.tracestate = columns["TraceState"][first]
            held.flags = columns["_TraceFlags"][first] if "_TraceFlags" in columns else 0
        parents = columns["ParentSpanId"]
        if "" in [parents[i] for i in indices]:
            for i in indices:
                if not parents[i]:
                    # The root names the trace's service and carries the trace's sampling state.
                    held.root_seen = True
                    held.service = columns["ServiceName"][i]
                    held.tracestate = columns["TraceState"][i]
                    held.flags = columns["_TraceFlags"][i] if "_TraceFlags" in columns else 0
        for policy in self.policies:
            policy.observe(held, columns, indices)


class ReferenceSampler:
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
            parts = self._outbox
            self._outbox = []
            kept = self._materialize(released)
            if kept is not None:
                parts.append(kept)
        return SpanBatch.concat(parts) if parts else None

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
        now = self._clock()
        self._expire_decisions(now)
        n = batch.size
        tenants, traces = batch["TenantId"], batch["TraceId"]
        write = [False] * n
        rates = [1.0] * n
        decisions = self._decisions
        groups: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(zip(tenants, traces)):
            decided = decisions.get(key)
            if decided is not None:  # a late span: follows its trace's decision
                self.late_spans_total += 1
                if decided[0] != _DROP:
                    write[i] = True
                    rates[i] = decided[0]
                    self.spans_kept_total += 1
                else:
                    self.spans_sampled_out_total += 1
                continue
            group = groups.get(key)
            if group is None:
                groups[key] = [i]
            else:
                group.append(i)
        columns = batch.columns
        released: list[tuple[HeldTrace, float]] = []
        to_hold: list[tuple[HeldTrace, int]] = []
        hold_indices: list[int] = []
        for key, indices in groups.items():
            held = self._held.get(key)
            if held is None:
                held = HeldTrace(key[0], key[1], now)
                self._observer.observe(held, columns, indices)
                if not held.root_seen:
                    self._held[key] = held
            else:
                self._observer.observe(held, columns, indices)
            if held.root_seen:
                rate = self._decide(key, held, now, len(indices))
                if held.spans:
                    released.append((held, rate))
                    del self._held[key]
                    self._spans_held -= held.spans
                if rate != _DROP:
                    for i in indices:
                        write[i] = True
                        rates[i] = rate
            else:
                to_hold.append((held, len(indices)))
                hold_indices.extend(indices)
        if hold_indices:
            # One copy of the held rows (column references only), sliced per trace.
            held_rows = batch.take(hold_indices)
            start = 0
            for held, count in to_hold:
                held.chunks.append((held_rows, list(range(start, start + count))))
                held.spans += count
                start += count
            self._spans_held += len(hold_indices)
        cfg = self.config
        while self._held and (len(self._held) > cfg.max_traces_held or self._spans_held > cfg.max_spans_held):
            key = next(iter(self._held))
            self.early_decisions_total += 1
            released.append((self._held[key], self._decide_held(key, now)))
        batch.set_column(WRITE_SPAN, write)
        batch.set_column(SAMPLE_RATE, rates)
        if not all(write):  # held or dropped spans: their rows here carry only their calls
            batch.drop_span_only(write)
        kept = self._materialize(released)
        return batch if kept is None else SpanBatch.concat([batch, kept])

    def _decide_held(self, key: tuple[str, str], now: float) -> float:
        held = self._held.pop(key)
        self._spans_held -= held.spans
        return self._decide(key, held, now, 0)

    def _decide(self, key: tuple[str, str], held: HeldTrace, now: float, arriving: int) -> float:
        """The trace's keep probability (0: dropped), counted and remembered for late spans."""
        policy = next((p.name for p in self.policies if p.keeps(held)), "")
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

    def _materialize(self, released: list[tuple[HeldTrace, float]]) -> SpanBatch | None:
        """Kept traces' held spans as one batch that writes span rows only.

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
                for i in indices:
                    row_rates[i] = rate
        parts: list[SpanBatch] = []
        for rows, row_rates in sources.values():
            if None in row_rates:
                kept = [i for i, rate in enumerate(row_rates) if rate is not None]
                part = rows.take(kept)
                rates = [row_rates[i] for i in kept]
            else:  # every row of the source released: it is no longer shared with a held trace
                part = SpanBatch(dict(rows.columns), rows.size)
                rates = row_rates
            part.set_column(WRITE_CALL, [False] * part.size)
            part.set_column(WRITE_SPAN, [True] * part.size)
            part.set_column(SAMPLE_RATE, rates)
            parts.append(part)
        return SpanBatch.concat(parts) if parts else None

    def _unhold(self, key: tuple[str, str], span_ids: set[str]) -> None:
        held = self._held[key]
        chunks: list[tuple[Any, list[int]]] = []
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
