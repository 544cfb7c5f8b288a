"""Tail policies: what is known about a held trace, and the rules that keep it.

Policies run in a fixed order and the first that matches decides: errors,
slow spans, cost, attribute rules, a rate limit, then the probabilistic rest
(the consistent head rule of probability.py). A trace kept by one of the first
four is kept with probability 1: every trace matching them is stored.
"""

from __future__ import annotations

import re
from typing import Any

from spanhouse.collector.config import AttributeRuleConfig

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
        self.chunks: list[tuple[Any, list[int]]] = []
        self.spans = 0
        self.first_seen = first_seen
        self.tenant = tenant
        self.trace_id = trace_id
        self.service = ""
        self.tracestate = ""
        self.flags = 0
        self.error = False
        self.max_duration = 0
        self.cost = 0.0
        self.matched = False
        self.root_seen = False


class TraceObserver:
    """Folds a batch's spans of one trace into its HeldTrace, column by column."""

    def __init__(self, rules: list[AttributeRule]) -> None:
        self.rules = rules

    def observe(self, held: HeldTrace, columns: dict[str, list[Any]], indices: list[int]) -> None:
        status = columns["StatusCode"]
        error_type = columns.get("ErrorType")
        duration = columns["Duration"]
        parents = columns["ParentSpanId"]
        cost = columns.get("CostTotal")
        operation = columns.get("Operation")
        if not held.spans and not held.service:
            first = indices[0]
            held.service = columns["ServiceName"][first]
            held.tracestate = columns["TraceState"][first]
            held.flags = columns["_TraceFlags"][first] if "_TraceFlags" in columns else 0
        # Column by column over the trace's rows: one pass of C-level work per question.
        if not held.error:
            held.error = "Error" in [status[i] for i in indices] or (
                error_type is not None and any([error_type[i] for i in indices]))
        longest = max([duration[i] for i in indices])
        if longest > held.max_duration:
            held.max_duration = longest
        if cost is not None:
            for i in indices:
                if cost[i] and (operation is None or operation[i] not in AGENT_OPERATIONS):
                    held.cost += cost[i]
        if "" in [parents[i] for i in indices]:
            for i in indices:
                if not parents[i]:
                    # The root names the trace's service and carries the trace's sampling state.
                    held.root_seen = True
                    held.service = columns["ServiceName"][i]
                    held.tracestate = columns["TraceState"][i]
                    held.flags = columns["_TraceFlags"][i] if "_TraceFlags" in columns else 0
        if self.rules and not held.matched:
            attributes = columns["SpanAttributes"]
            resources = columns["ResourceAttributes"]
            held.matched = any(rule.matches(attributes[i], resources[i]) for i in indices for rule in self.rules)


class RateLimiter:
    """Keeps at most `per_s` traces a second (token bucket), and estimates its keep probability.

    The probability a trace reaching this policy is kept by it is estimated from
    the last whole second: kept / offered. Stored spans use it as their weight.
    """

    def __init__(self, per_s: float, now: float) -> None:
        self.per_s = per_s
        self.capacity = max(1.0, per_s)
        self.tokens = self.capacity
        self.updated = now
        self.window_start = now
        self.offered = 0
        self.kept = 0
        self.last_ratio = 1.0

    def inclusion(self) -> float:
        return self.last_ratio

    def take(self, now: float) -> bool:
        if now - self.window_start >= 1.0:
            if self.offered:
                self.last_ratio = self.kept / self.offered
            self.window_start, self.offered, self.kept = now, 0, 0
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_s)
        self.updated = now
        self.offered += 1
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.kept += 1
            return True
        return False
