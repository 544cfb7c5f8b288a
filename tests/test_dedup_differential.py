"""The columnar dedup processor against the span-by-span one it replaced (tests/dedup_reference.py).

Random traffic: calls traced by one, two or three instrumentors (nested, or one in a trace of its own),
with and without response ids, twins that differ in tokens, provider or operation, or lie outside the
other's time; agent spans over their calls, non-GenAI spans; spread over requests in any order, requests
sent again, a span twice in one request, and a window and a bound small enough to forget calls. Both
processors see the same batches and the same clock; every DuplicateOf column and every counter must match.
"""

from __future__ import annotations

import random
from typing import Any

from dedup_reference import ReferenceDedup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanhouse.collector.batch import DUPLICATE_OF, SpanBatch
from spanhouse.collector.processors.dedup import DedupConfig, DedupProcessor

T0 = 1_700_000_000_000_000_000
COLUMNS = ("TenantId", "TraceId", "SpanId", "ParentSpanId", "Timestamp", "Duration", "Provider", "Operation",
           "ResponseId", "RequestModel", "ResponseModel", "InputTokens", "OutputTokens")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spans_of_calls(rng: random.Random) -> list[dict[str, Any]]:
    """Agent turns whose calls are traced by up to three instrumentors."""
    spans: list[dict[str, Any]] = []
    ids = iter(range(1, 10**6))
    for _ in range(rng.randint(1, 8)):
        tenant = rng.choice(("default", "default", "acme"))
        trace = f"{next(ids):032x}"
        agent = f"{next(ids):016x}"
        start = T0 + rng.randrange(10**9)
        spans.append({"TenantId": tenant, "TraceId": trace, "SpanId": agent, "ParentSpanId": "", "Timestamp": start,
                      "Duration": 10**10, "Provider": "openai", "Operation": rng.choice(("invoke_agent", "chat")),
                      "ResponseId": "", "RequestModel": "gpt-4o", "ResponseModel": "", "InputTokens": None,
                      "OutputTokens": None})
        for _ in range(rng.randint(0, 4)):
            parent, trace_of, t = agent, trace, start + rng.randrange(10**9)
            response_id = rng.choice(("", f"resp-{rng.randrange(6)}"))
            provider = rng.choice(("openai", "openai", "anthropic"))
            tokens = (rng.choice((None, 10, 20)), rng.choice((None, 5)))
            duration = rng.randrange(10**6, 10**9)
            for depth in range(rng.choice((1, 2, 2, 3))):  # one span per instrumentor, each inside the last
                span_id = f"{next(ids):016x}"
                if depth and rng.random() < 0.15:  # an instrumentor that starts a trace of its own
                    trace_of, parent = f"{next(ids):032x}", ""
                spans.append({
                    "TenantId": tenant, "TraceId": trace_of, "SpanId": span_id, "ParentSpanId": parent,
                    "Timestamp": t, "Duration": duration,
                    "Provider": provider if rng.random() < 0.9 else "anthropic",
                    "Operation": rng.choice(("chat", "chat", "chat", "embeddings", "")),
                    "ResponseId": response_id if rng.random() < 0.9 else "",
                    "RequestModel": "gpt-4o", "ResponseModel": rng.choice(("", "gpt-4o-2024")),
                    "InputTokens": tokens[0] if rng.random() < 0.9 else 99, "OutputTokens": tokens[1]})
                parent = span_id
                shrink = rng.choice((0, 1, 1000))  # 0: the same times, else inside (or, below, outside)
                t, duration = t + shrink, max(1, duration - 2 * shrink)
                if rng.random() < 0.1:
                    t += 10**9  # outside the other's time
    return spans


def batches_of(rng: random.Random, spans: list[dict[str, Any]]) -> list[SpanBatch]:
    groups: list[list[dict[str, Any]]] = [[] for _ in range(rng.randint(1, 5))]
    for s in spans:
        groups[rng.randrange(len(groups))].append(s)
    out = []
    for group in groups:
        rng.shuffle(group)
        if group and rng.random() < 0.1:
            group.append(rng.choice(group))  # a span twice in one request
        if not group:
            continue
        columns = {name: [s[name] for s in group] for name in COLUMNS}
        out.append(SpanBatch(columns, len(group)))
        if rng.random() < 0.15:
            out.append(SpanBatch({name: list(values) for name, values in columns.items()}, len(group)))  # sent again
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), window_s=st.sampled_from((5.0, 300.0)), max_calls=st.sampled_from((7, 200000)))
def test_the_columnar_dedup_marks_what_the_reference_marks(seed: int, window_s: float, max_calls: int) -> None:
    rng = random.Random(seed)
    config = DedupConfig(window_s=window_s, max_calls=max_calls)
    ours_clock, their_clock = Clock(), Clock()
    ours, theirs = DedupProcessor(config, ours_clock), ReferenceDedup(config, their_clock)
    for b in batches_of(rng, spans_of_calls(rng)):
        mine = ours.process(SpanBatch({k: list(v) for k, v in b.columns.items()}, b.size))
        reference = theirs.process(SpanBatch({k: list(v) for k, v in b.columns.items()}, b.size))
        assert mine.columns.get(DUPLICATE_OF) == reference.columns.get(DUPLICATE_OF)
        assert ours.counters() == theirs.counters()
        step = rng.choice((0.0, 0.0, 1.0, 2.5))
        ours_clock.now += step
        their_clock.now += step
