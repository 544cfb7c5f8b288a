"""dedup: one GenAI call traced twice (two instrumentors on one client library) is counted once.

With two instrumentors installed for one library (spanhouse's and the official one, OpenLLMetry,
OpenInference, OpenLIT, in any language), every call makes two nested CLIENT spans, both with usage.
A GenAI span is a duplicate when its direct parent or child is a GenAI span of the same provider and
operation that describes the same request: the same `gen_ai.response.id`, or the same model and token
counts, the child inside the parent's time span; or, for an instrumentor that starts a trace of its
own instead of nesting, a span with the same response id inside the other's time, in any trace. The
duplicate keeps its row in `spans`, with `DuplicateOf` naming the span that is counted, and gets no
row in `genai_calls` (so none in the rollups, trace costs or reports).

Which one is counted: of the spans of one call that arrive together, the innermost (closest to the
provider), as an SDK exports them (a child ends first); a span counted in an earlier request stays
counted, and the call's spans that arrive later name it. Either way the call is counted once, with
the same model and tokens. Recent calls are remembered for `dedup.window_s` so pairs split across
export requests are found too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spanhouse.collector.batch import DUPLICATE_OF, SpanBatch
from spanhouse.collector.settings import ConfigError, require_positive


@dataclass
class DedupConfig:
    # Count a GenAI call traced by two instrumentors once (see docs/dedup.md).
    enabled: bool = True
    # How long a call is remembered to match a parent or child that arrives in a later request.
    window_s: float = 300.0
    # At most this many calls remembered; the oldest are forgotten first.
    max_calls: int = 200000

    def validate(self) -> None:
        require_positive({"dedup.window_s": self.window_s, "dedup.max_calls": self.max_calls})
        if self.window_s > 86400:
            raise ConfigError(f"dedup.window_s: at most 86400 (a day), got {self.window_s}")


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


class DedupProcessor:
    name = "dedup"

    def __init__(self, config: DedupConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        # Up to dedup.max_calls calls are remembered, so their bytes count: ~0.3 KB each with the strings
        # the batch shared with them. Hence a plain dict with the arrival order in a deque (an OrderedDict
        # costs ~50 bytes more per entry) and indexes whose entry is the item itself while it is alone
        # (a list per entry would cost ~70 bytes more, and most entries have one item).
        # (tenant, trace id, span id) -> the call.
        self._calls: dict[tuple[str, str, str], _Call] = {}
        # The keys of self._calls in arrival order (for expiry); each remembered key once.
        self._arrivals: deque[tuple[str, str, str]] = deque()
        # (tenant, trace id, parent span id) -> span id(s) of remembered calls under that parent.
        self._children: dict[tuple[str, str, str], str | list[str]] = {}
        # response id -> key(s) of remembered calls with that response id, of any tenant, provider and
        # operation (filtered where read: see _with_response).
        self._by_response: dict[str, tuple[str, str, str] | list[tuple[str, str, str]]] = {}
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
        unmatched = 0
        for i in rows:
            if not response_ids[i] and inputs[i] is None and outputs[i] is None:
                # No response id and no usage (a tool, an agent): same_request is false for it either way
                # round, so it is no call's twin and nothing needs remembering; most of a trace's spans.
                unmatched += 1
                continue
            key = (tenants[i], traces[i], span_ids[i])
            known = self._calls.get(key)
            if known is not None:  # a span sent again (a retried export): decided when it first came
                if known.duplicate_of:
                    duplicates[i] = known.duplicate_of
                continue
            self._arrivals.append(key)
            self._calls[key] = _Call(parents[i], providers[i], operations[i], response_ids[i], request_models[i],
                                     response_models[i], inputs[i], outputs[i], starts[i], starts[i] + durations[i],
                                     now)
            if parents[i]:
                _add(self._children, (tenants[i], traces[i], parents[i]), span_ids[i])
            if response_ids[i]:
                _add(self._by_response, response_ids[i], key)
            fresh[key] = i
        self.calls_seen_total += len(fresh) + unmatched
        decided: set[tuple[str, str, str]] = set()
        calls, children, by_response = self._calls, self._children, self._by_response
        for key in fresh:
            if key in decided:
                continue
            call = calls[key]
            # The common case: no remembered span of the same provider and operation inside or around this
            # one (an agent span over its calls, a call over its tools): it is the call's only span.
            if not call.response_id or not isinstance(by_response[call.response_id], list):
                parent = calls.get((key[0], key[1], call.parent)) if call.parent else None
                kin = (call.provider, call.operation)
                if (parent is None or (parent.provider, parent.operation) != kin) and not any(
                        (calls[c].provider, calls[c].operation) == kin
                        for c in [(key[0], key[1], child) for child in _items(children, key)]
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
        found = [(tenant, trace, child) for child in _items(self._children, key) if (tenant, trace, child) in self._calls]
        found += [other for other in self._with_response(key, call)
                  if _encloses(call, key, self._calls[other], other)]
        return found

    def _outer(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Remembered calls `call` lies inside: its parent, and spans with its response id around it."""
        tenant, trace = key[0], key[1]
        found = []
        if call.parent and (tenant, trace, call.parent) in self._calls:
            found.append((tenant, trace, call.parent))
        found += [other for other in self._with_response(key, call)
                  if _encloses(self._calls[other], other, call, key)]
        return found

    def _with_response(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Other remembered calls of `key`'s tenant with `call`'s provider, operation and response id."""
        if not call.response_id:
            return []
        found = []
        for other in _items(self._by_response, call.response_id):
            if other != key and other[0] == key[0]:
                known = self._calls.get(other)
                if known is not None and (known.provider, known.operation) == (call.provider, call.operation):
                    found.append(other)
        return found

    def _expire(self, now: float) -> None:
        calls, arrivals, limit, oldest = self._calls, self._arrivals, self.config.max_calls, now - self.config.window_s
        while arrivals:
            key = arrivals[0]
            call = calls[key]
            if call.seen_at > oldest and len(calls) <= limit:
                break
            arrivals.popleft()
            del calls[key]
            if call.parent:
                _forget(self._children, (key[0], key[1], call.parent), key[2])
            if call.response_id:
                _forget(self._by_response, call.response_id, key)


def _encloses(outer: _Call, outer_key: tuple[str, str, str], inner: _Call, inner_key: tuple[str, str, str]) -> bool:
    """True when `inner`'s time lies within `outer`'s (equal times: the larger span id is the outer one)."""
    if not (outer.start <= inner.start and inner.end <= outer.end):
        return False
    return (outer.start, outer.end) != (inner.start, inner.end) or outer_key > inner_key


def _add(index: dict[Any, Any], where: Any, item: Any) -> None:
    """Add `item` under `where`: the item itself while it is alone, a list from the second on (items are
    strings or tuples, never lists)."""
    known = index.get(where)
    if known is None:
        index[where] = item
    elif isinstance(known, list):
        known.append(item)
    else:
        index[where] = [known, item]


def _items(index: dict[Any, Any], where: Any) -> list[Any] | tuple[Any, ...]:
    known = index.get(where)
    if known is None:
        return ()
    return known if isinstance(known, list) else (known,)


def _forget(index: dict[Any, Any], where: Any, item: Any) -> None:
    known = index.get(where)
    if isinstance(known, list):
        known.remove(item)
        if len(known) == 1:
            index[where] = known[0]
    elif known is not None and known == item:
        del index[where]
