"""The dedup processor's span-by-span code as first written: the reference tests/test_dedup_differential.py
compares the columnar DedupProcessor with (same duplicates, same counters, on any traffic).

Only what the columnar processor rewrote is here (the remembered calls and their indexes, `_find`, the
group search, expiry); `process`, `counters` and the pair rules are inherited or imported unchanged.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors.dedup import (
    DedupConfig,
    DedupProcessor,
    _encloses,
    _forget,
    _response_key,
    same_request,
)


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


class ReferenceDedup(DedupProcessor):
    def __init__(self, config: DedupConfig, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config, clock)
        self._calls: OrderedDict[tuple[str, str, str], _Call] = OrderedDict()  # type: ignore[assignment]
        # (tenant, trace id, parent span id) -> span ids of remembered calls under that parent.
        self._children: dict[tuple[str, str, str], list[str]] = {}  # type: ignore[assignment]


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
            if not response_ids[i] and inputs[i] is None and outputs[i] is None:
                self.calls_seen_total += 1  # no call's twin (same_request needs a response id or usage)
                continue
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
