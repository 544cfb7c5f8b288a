"""Tail policies: what is known about a held trace, and the rules that keep it.

Each policy is an object with a `name`, an `observe` that folds a batch's spans into what it needs
to know about each of their traces (whole columns at once: a policy finds the traces it cares about
with set and column operations, not a call per span or per trace), and a `keeps` that says whether
it keeps a trace. They run in a
fixed order and the first that keeps the trace decides: errors, slow spans, cost, attribute
rules (`build_policies`), then the rest (`RestPolicy`: a rate limit and the consistent
probabilistic rule of probability.py), which always decides. A trace kept by one of the first
four is kept with probability 1: every trace matching them is stored.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from itertools import compress, repeat
from operator import eq, lt, not_
from typing import Any, Protocol

from spanhouse.collector.batch import TRACE_FLAGS
from spanhouse.collector.processors.sampling.config import AttributeRuleConfig, SamplingConfig
from spanhouse.collector.processors.sampling.probability import Rates, head_threshold, probability

# Agent and workflow spans may repeat their children's usage; a trace's cost is its LLM calls' cost only.
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "invoke_workflow"})

POLICIES = ("error", "duration", "cost", "attribute", "rate_limit", "probabilistic")


class AttributeRule:
    """One `keep_attributes` entry: an attribute equal to one of `values`, or matching `pattern`."""

    __slots__ = ("key", "pattern", "values")

    def __init__(self, config: AttributeRuleConfig) -> None:
        self.key = config.key
        self.values = frozenset(config.values)
        self.pattern = re.compile(config.pattern) if config.pattern else None

    def matches(self, span_attributes: dict[str, str], resource_attributes: dict[str, str]) -> bool:
        value = span_attributes.get(self.key)
        if value is None:
            value = resource_attributes.get(self.key)
            if value is None:
                return False
        if value in self.values:
            return True
        return self.pattern is not None and self.pattern.search(value) is not None


class HeldTrace:
    """A trace waiting for its decision: its spans (slices of batches) and what the policies need."""

    __slots__ = (
        "chunks",
        "cost",
        "error",
        "first_seen",
        "flags",
        "matched",
        "max_duration",
        "root_seen",
        "service",
        "spans",
        "tenant",
        "trace_id",
        "tracestate",
    )

    def __init__(self, tenant: str, trace_id: str, first_seen: float) -> None:
        # (rows, the trace's rows among them): a range as held, a list once refused() took some back
        self.chunks: list[tuple[Any, Sequence[int]]] = []
        self.spans = 0
        self.first_seen = first_seen
        self.tenant = tenant
        self.trace_id = trace_id
        self.service = ""
        self.tracestate = ""
        self.flags = 0
        self.error = False
        self.max_duration = 0  # the longest span over the duration policy's bound; 0 while there is none
        self.cost = 0.0
        self.matched = False
        self.root_seen = False


# A trace's key: (tenant, trace id).
TraceKey = tuple[str, str]


class TracePolicy(Protocol):
    """One tail policy: keeps a trace (with probability 1) when what it observed matches."""

    name: str

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace]) -> None:
        """Fold one batch's spans into the traces they belong to.

        `keys[i]` is row i's trace; rows of a trace not in `traces` (one already decided) are left out.
        Policies look at whole columns at once: a set of matching traces, not a method call per span.
        """
        ...

    def keeps(self, held: HeldTrace) -> bool:
        ...


class ErrorPolicy:
    """Keeps a trace with a span in error (status Error, or a GenAI span naming its error.type)."""

    name = "error"

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace]) -> None:
        status = columns["StatusCode"]
        # Counting in C first: most batches have no error at all.
        failed = set(compress(keys, map(eq, status, repeat("Error")))) if "Error" in status else set()
        error_type = columns.get("ErrorType")
        if error_type is not None and any(error_type):
            failed.update(compress(keys, error_type))
        for key in failed:
            held = traces.get(key)
            if held is not None:
                held.error = True

    def keeps(self, held: HeldTrace) -> bool:
        return held.error


class DurationPolicy:
    """Keeps a trace with a span longer than `over_ns`."""

    name = "duration"

    def __init__(self, over_ns: int) -> None:
        self.over_ns = over_ns

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace]) -> None:
        # Only spans over the bound matter to the decision: the rest are never looked at one by one.
        durations = columns["Duration"]
        if not durations or max(durations) <= self.over_ns:
            return
        over = list(map(lt, repeat(self.over_ns), durations))
        for key, duration in zip(compress(keys, over), compress(durations, over)):
            held = traces.get(key)
            if held is not None and duration > held.max_duration:
                held.max_duration = duration

    def keeps(self, held: HeldTrace) -> bool:
        return held.max_duration > self.over_ns


class CostPolicy:
    """Keeps a trace whose LLM calls cost more than `over_usd` together (agent spans' repeats left out)."""

    name = "cost"

    def __init__(self, over_usd: float) -> None:
        self.over_usd = over_usd

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace]) -> None:
        cost = columns.get("CostTotal")
        if cost is None:
            return
        operation = columns.get("Operation")
        operations = compress(operation, cost) if operation is not None else repeat("")
        get = traces.get
        # Added span by span in row order, as the trace's spans arrive: the same float sum every time.
        for key, value, op in zip(compress(keys, cost), compress(cost, cost), operations):
            if op not in AGENT_OPERATIONS:
                held = get(key)
                if held is not None:
                    held.cost += value

    def keeps(self, held: HeldTrace) -> bool:
        return held.cost > self.over_usd


class AttributePolicy:
    """Keeps a trace with a span (or its resource) matching one of the `keep_attributes` rules."""

    name = "attribute"

    def __init__(self, rules: list[AttributeRule]) -> None:
        self.rules = rules

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace]) -> None:
        attributes = columns["SpanAttributes"]
        resources = columns["ResourceAttributes"]
        rules = self.rules
        for key, span_attributes, resource_attributes in zip(keys, attributes, resources):
            held = traces.get(key)
            if held is not None and not held.matched:
                held.matched = any(rule.matches(span_attributes, resource_attributes) for rule in rules)

    def keeps(self, held: HeldTrace) -> bool:
        return held.matched


def build_policies(config: SamplingConfig) -> list[TracePolicy]:
    """The policies the configuration turns on, in the order they are asked."""
    policies: list[TracePolicy] = []
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
    """Folds a batch's spans into their traces' HeldTrace: what every decision needs, then each policy's part."""

    def __init__(self, policies: list[TracePolicy]) -> None:
        self.policies = policies

    def observe(self, columns: dict[str, list[Any]], keys: list[TraceKey], traces: dict[TraceKey, HeldTrace],
                new: list[TraceKey]) -> None:
        """`traces`: the batch's undecided traces; `new`: those first seen in this batch."""
        services, states = columns["ServiceName"], columns["TraceState"]
        flags = columns.get(TRACE_FLAGS)
        if new:
            # A trace's first span names its service and sampling state until its root arrives.
            n = len(keys)
            first_row = dict(zip(reversed(keys), range(n - 1, -1, -1)))  # the last write is the first row
            for key in new:
                i = first_row[key]
                held = traces[key]
                held.service, held.tracestate = services[i], states[i]
                held.flags = flags[i] if flags is not None else 0
        for i in compress(range(len(keys)), map(not_, columns["ParentSpanId"])):
            held = traces.get(keys[i])
            if held is not None:
                # The root names the trace's service and carries the trace's sampling state.
                held.root_seen = True
                held.service, held.tracestate = services[i], states[i]
                held.flags = flags[i] if flags is not None else 0
        for policy in self.policies:
            policy.observe(columns, keys, traces)


class RateLimiter:
    """Keeps about `per_s` of the traces reaching it a second, each with a probability known before its draw.

    The k-th trace of the current second is kept with probability q = min(1, per_s / max(k, n)), where n is
    the number of traces the previous whole second offered. q depends only on traces already seen, so it
    is the trace's exact inclusion probability and 1/q an unbiased weight (a token bucket's "first N pass"
    has no such probability: its kept traces would stand for the dropped ones with no way to say how many).
    At a steady rate this keeps `per_s` a second on average; in the first second of a burst of B traces it
    keeps about per_s * (1 + ln(B / per_s)), after that `per_s` again.
    """

    def __init__(self, per_s: float, now: float, rng: random.Random | None = None) -> None:
        self.per_s = per_s
        self.window_start = now
        self.offered = 0  # in the current second
        self.previous = 0  # in the previous whole second
        self._rng = rng or random.Random()

    def offer(self, now: float) -> tuple[bool, float]:
        """(kept, the probability it was kept with) for a trace reaching the limit at `now`."""
        elapsed = now - self.window_start
        if elapsed >= 1.0:
            self.previous = self.offered if elapsed < 2.0 else 0
            self.window_start, self.offered = now, 0
        self.offered += 1
        q = min(1.0, self.per_s / max(self.offered, self.previous))
        return self._rng.random() < q, q


class RestPolicy:
    """What decides a trace no other policy kept: a rate limit, else the consistent probabilistic rule."""

    def __init__(self, rates: Rates, honor_client: bool, limiter: RateLimiter | None) -> None:
        self.rates = rates
        self.honor_client = honor_client
        self.limiter = limiter
        # (tenant, service) -> (our threshold, our rate): asked once per trace, the same few answers.
        self._ours: dict[tuple[str, str], tuple[int, float]] = {}

    def decide(self, held: HeldTrace, now: float) -> tuple[str, float]:
        """(the deciding policy's name, "" when the trace is dropped; the probability a trace like this is kept)."""
        where = (held.tenant, held.service)
        ours_rate = self._ours.get(where)
        if ours_rate is None:
            if len(self._ours) >= 4096:  # service names come from clients: keep the memo small
                self._ours.clear()
            ours_rate = self._ours[where] = (self.rates.threshold_of(*where), self.rates.of(*where))
        ours, our_rate = ours_rate
        threshold, randomness = head_threshold(ours, held.trace_id, held.tracestate, held.flags, self.honor_client)
        rate = our_rate if threshold == ours else probability(threshold)
        policy = "probabilistic" if randomness >= threshold else ""
        if self.limiter is not None:
            # Kept by the limit (a draw of its own), or else by the trace id: two independent chances.
            kept, q = self.limiter.offer(now)
            rate = q + (1.0 - q) * rate
            if kept:
                policy = "rate_limit"
        return policy, rate
