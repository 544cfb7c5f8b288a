# ruff: noqa: C419, PLR1730  (kept as first written: it is the reference)
"""The tail sampler's span-by-span code as first written: the reference tests/test_sampling_differential.py
compares the columnar SampleProcessor with (same decisions, rows, routing and counters on any traffic).

Only what the columnar sampler rewrote is here (the policies' and the observer's per-trace `observe`,
`_tail`, `_materialize`, whose one batch is handed to `poll` as one piece); the rest is inherited from
SampleProcessor unchanged.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from spanhouse.collector.batch import WRITE_CALL, WRITE_SPAN, SpanBatch
from spanhouse.collector.processors.sampling import policies as columnar
from spanhouse.collector.processors.sampling.config import SamplingConfig
from spanhouse.collector.processors.sampling.policies import AGENT_OPERATIONS, HeldTrace
from spanhouse.collector.processors.sampling.processor import Piece, SampleProcessor

SAMPLE_RATE = "SampleRate"
_DROP = 0.0


class ErrorPolicy(columnar.ErrorPolicy):
    def observe(self, held: HeldTrace, columns: dict[str, list[Any]],  # type: ignore[override]
                indices: list[int]) -> None:
        if not held.error:
            status = columns["StatusCode"]
            error_type = columns.get("ErrorType")
            held.error = "Error" in [status[i] for i in indices] or (
                error_type is not None and any([error_type[i] for i in indices]))


class DurationPolicy(columnar.DurationPolicy):
    def observe(self, held: HeldTrace, columns: dict[str, list[Any]],  # type: ignore[override]
                indices: list[int]) -> None:
        duration = columns["Duration"]
        longest = max([duration[i] for i in indices])
        if longest > held.max_duration:
            held.max_duration = longest


class CostPolicy(columnar.CostPolicy):
    def observe(self, held: HeldTrace, columns: dict[str, list[Any]],  # type: ignore[override]
                indices: list[int]) -> None:
        cost = columns.get("CostTotal")
        if cost is None:
            return
        operation = columns.get("Operation")
        for i in indices:
            if cost[i] and (operation is None or operation[i] not in AGENT_OPERATIONS):
                held.cost += cost[i]


class AttributePolicy(columnar.AttributePolicy):
    def observe(self, held: HeldTrace, columns: dict[str, list[Any]],  # type: ignore[override]
                indices: list[int]) -> None:
        if not held.matched:
            attributes = columns["SpanAttributes"]
            resources = columns["ResourceAttributes"]
            held.matched = any(rule.matches(attributes[i], resources[i]) for i in indices for rule in self.rules)


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


def reference_policy(policy: Any) -> Any:
    """The per-trace policy doing what the columnar `policy` does, with its settings."""
    if isinstance(policy, columnar.ErrorPolicy):
        return ErrorPolicy()
    if isinstance(policy, columnar.DurationPolicy):
        return DurationPolicy(policy.over_ns)
    if isinstance(policy, columnar.CostPolicy):
        return CostPolicy(policy.over_usd)
    return AttributePolicy(policy.rules)


class ReferenceSampler(SampleProcessor):
    def __init__(self, config: SamplingConfig, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        super().__init__(config, clock, rng)
        self.policies = [reference_policy(p) for p in self.policies]
        self._observer = TraceObserver(self.policies)

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
        pieces = self._materialize(released)
        return SpanBatch.concat([batch, *(piece for piece, _, _ in pieces)])


    def _materialize(self, released: list[tuple[HeldTrace, float]]) -> list[Piece]:  # type: ignore[override]
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
        return [(SpanBatch.concat(parts), None, None)] if parts else []
