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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import compress, repeat, starmap
from operator import add, itemgetter, lt
from typing import Any, NamedTuple

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


class _Call(NamedTuple):
    """A remembered GenAI span: what tells whether two spans describe one request.

    Remembered as a plain tuple of these fields, so a batch's calls are made in C by zipping its columns
    (a NamedTuple or dataclass would run Python code per call); `DedupProcessor._call` gives this view of
    one when the rare path needs it. Whether it was counted lives in DedupProcessor._duplicate_of, when
    it arrived in DedupProcessor._arrivals.
    """

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


_PROVIDER, _OPERATION = 1, 2  # positions in a remembered call's tuple (_Call's fields)


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
        # (tenant, trace id, span id) -> the call; insertion order is arrival order (for expiry).
        self._calls: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        # [when, keys of the calls remembered then, how many of them are forgotten already], oldest first.
        self._arrivals: deque[list[Any]] = deque()
        # Keys of remembered calls that are duplicates -> the span id of the call counted for them.
        self._duplicate_of: dict[tuple[str, str, str], str] = {}
        # (tenant, trace id, parent span id, provider, operation) -> span ids of remembered calls under that
        # parent with that provider and operation: the only children that can describe the parent's request.
        self._children: dict[tuple[str, str, str, str, str], list[str]] = {}
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
        rows = list(compress(range(batch.size), operations))
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
        response_ids, inputs, outputs = (batch.column(n) for n in ("ResponseId", "InputTokens", "OutputTokens"))
        # A span with neither a response id nor usage (a tool, an agent) is no call's twin either way round
        # (same_request needs one of them), so it is counted and not remembered: most of a trace's spans,
        # and dedup.max_calls bounds memory by the calls that can match.
        matchable = [i for i in rows if response_ids[i] or inputs[i] is not None or outputs[i] is not None]
        self.calls_seen_total += len(rows) - len(matchable)
        rows = matchable
        if not rows:
            return {}
        c = batch.columns
        names = ("TenantId", "TraceId", "SpanId", "ParentSpanId", "Timestamp", "Duration")
        columns = [c[name] for name in names]
        columns += [batch.column(name) for name in ("Provider", "Operation", "ResponseId", "RequestModel",
                                                    "ResponseModel", "InputTokens", "OutputTokens")]
        if len(rows) != batch.size:  # the GenAI rows only, gathered in C
            pick = itemgetter(*rows) if len(rows) > 1 else (lambda values: (values[rows[0]],))
            columns = [pick(values) for values in columns]
        (tenants, traces, span_ids, parents, starts, durations, providers, operations, response_ids,
         request_models, response_models, inputs, outputs) = columns
        keys = list(zip(tenants, traces, span_ids))
        calls = self._calls
        duplicates: dict[int, str] = {}
        if calls.keys().isdisjoint(keys) and len(set(keys)) == len(keys):
            # The usual batch: every call new. Remember them all and find the few that may have a twin
            # with whole-column operations; only those are looked at one by one.
            fresh = dict(zip(keys, rows))
            calls.update(zip(keys, zip(parents, providers, operations, response_ids, request_models,
                                       response_models, inputs, outputs, starts, map(add, starts, durations))))
            self._arrivals.append([now, keys, 0])
            _index_all(self._children, compress(zip(tenants, traces, parents, providers, operations), parents),
                       compress(span_ids, parents))
            response_keys = list(compress(zip(tenants, providers, operations, response_ids), response_ids))
            _index_all(self._by_response, response_keys, compress(keys, response_ids))
            candidates = self._candidates(keys, (tenants, traces, span_ids, parents, providers, operations),
                                          response_ids, response_keys)
        else:  # spans sent again, or twice in one request: one by one, as they come
            fresh = {}
            for i, key, parent, provider, operation, response_id, call in zip(
                    rows, keys, parents, providers, operations, response_ids, zip(
                        parents, providers, operations, response_ids, request_models, response_models, inputs,
                        outputs, starts, map(add, starts, durations))):
                if key in calls:  # a span sent again (a retried export): decided when it first came
                    counted = self._duplicate_of.get(key)
                    if counted:
                        duplicates[i] = counted
                    continue
                calls[key] = call
                if parent:
                    self._children.setdefault((key[0], key[1], parent, provider, operation), []).append(key[2])
                if response_id:
                    self._by_response.setdefault((key[0], provider, operation, response_id), []).append(key)
                fresh[key] = i
            candidates = list(fresh)
            self._arrivals.append([now, candidates, 0])
        self.calls_seen_total += len(fresh)
        self._decide(candidates, fresh, duplicates)
        return duplicates

    def _candidates(self, keys: list[tuple[str, str, str]], columns: tuple[Any, ...], response_ids: Any,
                    response_keys: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
        """The new calls that may describe the same request as another remembered call, in batch order.

        A call can only have a twin among the calls sharing its response id, its parent, or its children
        with the same provider and operation; any other call is its request's only span.
        """
        calls, children, by_response = self._calls, self._children, self._by_response
        tenants, traces, span_ids, parents, providers, operations = columns
        positions = range(len(keys))
        found: set[int] = set()
        if response_keys:  # another call with its response id
            shared = map(lt, repeat(1), map(len, map(by_response.__getitem__, response_keys)))
            found.update(compress(compress(positions, response_ids), shared))
        # a parent of the same provider and operation
        parent_calls = list(map(calls.get, zip(tenants, traces, parents)))
        for j in compress(positions, parent_calls):
            parent = parent_calls[j]
            if parents[j] and parent[_PROVIDER] == providers[j] and parent[_OPERATION] == operations[j]:
                found.add(j)
        # a child of the same provider and operation
        found.update(compress(positions, map(children.__contains__,
                                             zip(tenants, traces, span_ids, providers, operations))))
        return [keys[j] for j in sorted(found)]

    def _decide(self, candidates: list[tuple[str, str, str]], fresh: dict[tuple[str, str, str], int],
                duplicates: dict[int, str]) -> None:
        """Mark the duplicates among the new calls `candidates` (row of each new call in `fresh`)."""
        decided: set[tuple[str, str, str]] = set()
        calls, children, by_response = self._calls, self._children, self._by_response
        for key in candidates:
            if key in decided:
                continue
            call = self._call(key)
            # The common case: no remembered span of the same provider and operation inside or around this
            # one (an agent span over its calls, a call over its tools): it is the call's only span.
            if not call.response_id or len(by_response[_response_key(key, call)]) == 1:
                parent = calls.get((key[0], key[1], call.parent)) if call.parent else None
                if ((parent is None or (parent[_PROVIDER], parent[_OPERATION]) != (call.provider, call.operation))
                        and (*key, call.provider, call.operation) not in children):
                    continue
            group = self._same_call(key)
            decided |= group
            # A member counted in an earlier request stays the one counted (its row is written); else the
            # innermost member: the span closest to the provider.
            earlier = [k for k in group if k not in fresh and k not in self._duplicate_of]
            target = earlier[0] if earlier else min(
                group, key=lambda k: (-self._call(k).start, self._call(k).end, k))
            for member in group:
                if member in fresh and member != target:
                    self._duplicate_of[member] = target[2]
                    duplicates[fresh[member]] = target[2]
                    self.calls_duplicate_total += 1

    def _same_call(self, key: tuple[str, str, str]) -> set[tuple[str, str, str]]:
        """Every remembered span describing the same request as `key` (itself included)."""
        group = {key}
        todo = [key]
        while todo:
            current = todo.pop()
            call = self._call(current)
            related = [k for k in self._inner(current, call) if same_request(call, self._call(k))]
            related += [k for k in self._outer(current, call) if same_request(self._call(k), call)]
            for other in related:
                if other not in group:
                    group.add(other)
                    todo.append(other)
        return group

    def _inner(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Remembered calls inside `call`: its children, and spans with its response id within its time in any
        trace (an instrumentor that does not nest its span under the current one starts a trace of its own)."""
        tenant, trace = key[0], key[1]
        found = [(tenant, trace, child) for child in self._children.get((*key, call.provider, call.operation), ())
                 if (tenant, trace, child) in self._calls]
        if call.response_id:
            found += [other for other in self._by_response.get(_response_key(key, call), ())
                      if other != key and other in self._calls and _encloses(call, key, self._call(other), other)]
        return found

    def _outer(self, key: tuple[str, str, str], call: _Call) -> list[tuple[str, str, str]]:
        """Remembered calls `call` lies inside: its parent, and spans with its response id around it."""
        tenant, trace = key[0], key[1]
        found = []
        if call.parent and (tenant, trace, call.parent) in self._calls:
            found.append((tenant, trace, call.parent))
        if call.response_id:
            found += [other for other in self._by_response.get(_response_key(key, call), ())
                      if other != key and other in self._calls and _encloses(self._call(other), other, call, key)]
        return found

    def _call(self, key: tuple[str, str, str]) -> _Call:
        return _Call._make(self._calls[key])

    def _expire(self, now: float) -> None:
        """Forget the calls older than the window, then the oldest until at most max_calls are left."""
        calls, arrivals, limit, oldest = self._calls, self._arrivals, self.config.max_calls, now - self.config.window_s
        while arrivals:
            arrival = arrivals[0]
            seen_at, keys, start = arrival
            if seen_at <= oldest:
                stop = len(keys)
            elif len(calls) > limit:
                stop = min(len(keys), start + len(calls) - limit)
            else:
                break
            for key in keys[start:stop]:
                self._forget_call(key)
            if stop == len(keys):
                arrivals.popleft()
            else:
                arrival[2] = stop

    def _forget_call(self, key: tuple[str, str, str]) -> None:
        call = _Call._make(self._calls.pop(key))
        self._duplicate_of.pop(key, None)
        if call.parent:
            _forget(self._children, (key[0], key[1], call.parent, call.provider, call.operation), key[2])
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


def _index_all(index: dict[Any, list[Any]], wheres: Iterable[Any], items: Iterable[Any]) -> None:
    """`index.setdefault(where, []).append(item)` for each pair, looped in C rather than in bytecode."""
    deque(map(list.append, map(index.setdefault, wheres, starmap(list, repeat(()))), items), maxlen=0)
