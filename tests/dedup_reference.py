"""The dedup processor as it was written first, span by span: the reference tests/test_dedup_differential.py
compares the columnar DedupProcessor with (same duplicates, same counters, on any traffic)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spanhouse.collector.batch import DUPLICATE_OF, SpanBatch
from spanhouse.collector.processors.dedup import DedupConfig


@dataclass(slots=True)
class _Call:
    parent: str
    provider: str
    operation: str
    response_id: str
    request_model: str
    response_model: str
    input_tokens: int | None
    output_tokens: int | None
    start: int
    end: int
    seen_at: float
    counted: bool = True
    duplicate_of: str = ""


def same_request(outer: _Call, inner: _Call) -> bool:
    """True when `inner` (a child of `outer`) describes the same provider request as `outer`."""
    if outer.provider != inner.provider or outer.operation != inner.operation:
        return False
    if not (outer.start <= inner.start and inner.end <= outer.end):
        return False
    if outer.response_id and outer.response_id == inner.response_id:
        return True
    same_model = ((outer.response_model and outer.response_model == inner.response_model)
                  or (outer.request_model and outer.request_model == inner.request_model))
    has_usage = outer.input_tokens is not None or outer.output_tokens is not None
    return bool(same_model and has_usage and outer.input_tokens == inner.input_tokens
                and outer.output_tokens == inner.output_tokens)


class ReferenceDedup:
    name = "dedup"

    def __init__(self, config: DedupConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        # (tenant, trace id, span id) -> the call; insertion order is arrival order (for expiry).
        self._calls: OrderedDict[tuple[str, str, str], _Call] = OrderedDict()
        # (tenant, trace id, parent span id) -> span ids of remembered calls under that parent.
        self._children: dict[tuple[str, str, str], list[str]] = {}
        # (tenant, provider, operation, response id) -> keys of remembered calls with that response id.
        self._by_response: dict[tuple[str, str, str, str], list[tuple[str, str, str]]] = {}
        self.calls_seen_total = 0
        self.calls_duplicate_total = 0

    def counters(self) -> dict[str, int]:
        with self._lock:
            remembered = len(self._calls)
        return {"calls_seen_total": self.calls_seen_total, "calls_duplicate_total": self.calls_duplicate_total,
                "calls_remembered": remembered}

    def process(self, batch: SpanBatch) -> SpanBatch:
        if not self.config.enabled or not batch.size:
            return batch
        operations = batch.column("Operation")
        rows = [i for i, operation in enumerate(operations) if operation]
        if not rows:
            return batch
        with self._lock:
            duplicates = self._find(batch, rows)
        if duplicates:
            column = list(batch.column(DUPLICATE_OF)) if DUPLICATE_OF in batch.columns else [""] * batch.size
            for row, counted in duplicates.items():
                column[row] = counted
            batch.set_column(DUPLICATE_OF, column)
        return batch

    def _find(self, batch: SpanBatch, rows: list[int]) -> dict[int, str]:
        """Row -> the span id of the call it duplicates, for this batch's GenAI rows."""
        now = self._clock()
        self._expire(now)
        c = batch.columns
        tenants, traces, span_ids, parents = c["TenantId"], c["TraceId"], c["SpanId"], c["ParentSpanId"]
        starts, durations = c["Timestamp"], c["Duration"]
        providers, operations, response_ids = c["Provider"], c["Operation"], batch.column("ResponseId")
        request_models, response_models = batch.column("RequestModel"), batch.column("ResponseModel")
        inputs, outputs = batch.column("InputTokens"), batch.column("OutputTokens")
        fresh: dict[tuple[str, str, str], int] = {}
        duplicates: dict[int, str] = {}
        for i in rows:
            key = (tenants[i], traces[i], span_ids[i])
            known = self._calls.get(key)
            if known is not None:  # a span sent again (a retried export): decided when it first came
                if known.duplicate_of:
                    duplicates[i] = known.duplicate_of
                continue
            self._calls[key] = _Call(parents[i], providers[i], operations[i], response_ids[i], request_models[i],
                                     response_models[i], inputs[i], outputs[i], starts[i], starts[i] + durations[i],
                                     now)
            if parents[i]:
                self._children.setdefault((tenants[i], traces[i], parents[i]), []).append(span_ids[i])
            if response_ids[i]:
                self._by_response.setdefault((tenants[i], providers[i], operations[i], response_ids[i]), []).append(key)
            fresh[key] = i
        self.calls_seen_total += len(fresh)
        decided: set[tuple[str, str, str]] = set()
        calls, children, by_response = self._calls, self._children, self._by_response
        for key in fresh:
            if key in decided:
                continue
            call = calls[key]
            # The common case: no remembered span of the same provider and operation inside or around this
            # one (an agent span over its calls, a call over its tools): it is the call's only span.
            if not call.response_id or len(by_response[_response_key(key, call)]) == 1:
                parent = calls.get((key[0], key[1], call.parent)) if call.parent else None
                kin = (call.provider, call.operation)
                if (parent is None or (parent.provider, parent.operation) != kin) and not any(
                        (calls[c].provider, calls[c].operation) == kin
                        for c in [(key[0], key[1], child) for child in children.get(key, ())]
                        if c in calls):
                    continue
            group = self._same_call(key)
            decided |= group
            # A member counted in an earlier request stays the one counted (its row is written); else the
            # innermost member: the span closest to the provider.
            earlier = [k for k in group if k not in fresh and self._calls[k].counted]
            target = earlier[0] if earlier else min(
                group, key=lambda k: (-self._calls[k].start, self._calls[k].end, k))
            for member in group:
                if member in fresh and member != target:
                    call = self._calls[member]
                    call.counted = False
                    call.duplicate_of = target[2]
                    duplicates[fresh[member]] = target[2]
                    self.calls_duplicate_total += 1
        return duplicates

    def _same_call(self, key: tuple[str, str, str]) -> set[tuple[str, str, str]]:
        """Every remembered span describing the same request as `key` (itself included)."""
        group = {key}
        todo = [key]
        while todo:
            current = todo.pop()
            call = self._calls[current]
            related = [k for k in self._inner(current, call) if same_request(call, self._calls[k])]
            related += [k for k in self._outer(current, call) if same_request(self._calls[k], call)]
            for other in related:
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return group

    def _inner(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Remembered calls inside `call`: its children, and spans with its response id within its time in any
        trace (an instrumentor that does not nest its span under the current one starts a trace of its own)."""
        tenant, trace = key[0], key[1]
        found = [(tenant, trace, child) for child in self._children.get(key, ()) if (tenant, trace, child) in self._calls]
        if call.response_id:
            found += [other for other in self._by_response.get(_response_key(key, call), ())
                      if other != key and other in self._calls and _encloses(call, key, self._calls[other], other)]
        return found

    def _outer(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Remembered calls `call` lies inside: its parent, and spans with its response id around it."""
        tenant, trace = key[0], key[1]
        found = []
        if call.parent and (tenant, trace, call.parent) in self._calls:
            found.append((tenant, trace, call.parent))
        if call.response_id:
            found += [other for other in self._by_response.get(_response_key(key, call), ())
                      if other != key and other in self._calls and _encloses(self._calls[other], other, call, key)]
        return found

    def _expire(self, now: float) -> None:
        calls, limit, oldest = self._calls, self.config.max_calls, now - self.config.window_s
        while calls:
            key, call = next(iter(calls.items()))
            if call.seen_at > oldest and len(calls) <= limit:
                break
            calls.popitem(last=False)
            if call.parent:
                _forget(self._children, (key[0], key[1], call.parent), key[2])
            if call.response_id:
                _forget(self._by_response, _response_key(key, call), key)


def _response_key(key: tuple[str, str, str], call: _Call) -> tuple[str, str, str, str]:
    return (key[0], call.provider, call.operation, call.response_id)


def _encloses(outer: _Call, outer_key: tuple[str, str, str], inner: _Call, inner_key: tuple[str, str, str]) -> bool:
    """True when `inner`'s time lies within `outer`'s (equal times: the larger span id is the outer one)."""
    if not (outer.start <= inner.start and inner.end <= outer.end):
        return False
    return (outer.start, outer.end) != (inner.start, inner.end) or outer_key > inner_key


def _forget(index: dict[Any, list[Any]], where: Any, item: Any) -> None:
    items = index.get(where)
    if items is not None:
        items.remove(item)
        if not items:
            del index[where]
