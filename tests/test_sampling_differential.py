"""The columnar tail sampler against the span-by-span one it replaced (tests/sampling_reference.py).

Random traffic: traces split across requests, roots late or never, spans of several traces interleaved,
errors, slow spans, costs (agent spans' repeats included), two tenants in one batch, spans sent twice,
polls, refused batches, bounds that force early decisions. Both samplers see the same batches and the
same clock; every batch they return, and every counter, must be the same.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sampling_reference import ReferenceSampler
from sampling_traffic import FakeClock, Span, batch, trace
from spanhouse.collector import config as config_mod
from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors.sampling import SampleProcessor

CONFIGS: list[dict[str, Any]] = [
    {"rate": 1.0, "keep_errors": True, "keep_duration_over_ms": 3000.0, "keep_cost_over_usd": 0.5},
    {"rate": 0.3, "keep_errors": True, "keep_cost_over_usd": 0.2, "max_traces_held": 4, "max_spans_held": 9},
    {"rate": 0.5, "keep_duration_over_ms": 2000.0, "rate_limit_traces_per_s": 3.0},
    {"rate": 0.0, "service_rates": {"frontend": 1.0}, "decision_cache_s": 5.0, "decision_wait_s": 2.0},
    {"rate": 0.2, "keep_attributes": [{"key": "customer.tier", "values": ["gold"], "pattern": "^plat"}],
     "max_spans_held": 6},
    {"rate": 0.7, "keep_errors": True, "decision_cache_max_traces": 3, "decision_wait_s": 1.0},
]


def clone(b: SpanBatch) -> SpanBatch:
    return SpanBatch({name: list(values) for name, values in b.columns.items()}, b.size)


def same(ours: SpanBatch | None, theirs: SpanBatch | None) -> None:
    if ours is None or theirs is None:
        assert ours is None and theirs is None
        return
    assert ours.size == theirs.size
    assert ours.columns.keys() == theirs.columns.keys()
    for name, values in ours.columns.items():
        assert values == theirs.columns[name], name


def traffic(rng: random.Random) -> list[SpanBatch]:
    """A few requests' batches of a few dozen traces, shaped by `rng`."""
    n_batches = rng.randint(1, 6)
    requests: list[list[tuple[str, Span]]] = [[] for _ in range(n_batches + 1)]
    for _ in range(rng.randint(1, 25)):
        tenant = rng.choice(("default", "default", "acme"))
        spans = trace(rng, n_children=rng.randint(0, 4), service=rng.choice(("chat-api", "frontend")),
                      error=rng.random() < 0.15, slow_ns=rng.choice((0, 0, 0, 4_000_000_000)),
                      **({"customer.tier": rng.choice(("gold", "platinum", "bronze"))} if rng.random() < 0.3 else {}))
        first = rng.randrange(n_batches)
        root, children = spans[0], spans[1:]
        for child in children:  # a trace's children spread over a request or two
            requests[min(n_batches - 1, first + rng.choice((0, 0, 1)))].append((tenant, child))
        late = rng.random()
        if late < 0.5:
            requests[first].append((tenant, root))
        elif late < 0.9:  # the root one or more requests late, or never (decided on its wait)
            requests[min(n_batches, first + rng.randint(1, 2))].append((tenant, root))
        if rng.random() < 0.1 and children:  # a span sent again
            requests[rng.randrange(n_batches)].append((tenant, children[0]))
    batches = []
    for spans in requests:
        if not spans:
            continue
        if rng.random() < 0.3:
            rng.shuffle(spans)  # traces interleaved in one request
        tenants = list(dict.fromkeys(t for t, _ in spans))
        parts = [batch([s for t, s in spans if t == tenant], tenant) for tenant in tenants]
        b = SpanBatch.concat(parts)  # two tenants in one batch sometimes
        operations = list(b.column("Operation"))
        for i, parent in enumerate(b["ParentSpanId"]):
            if not parent and rng.random() < 0.3:
                operations[i] = "invoke_agent"  # its cost repeats its calls': left out of the trace's cost
        b.set_column("Operation", operations)
        b.set_column("CostTotal", [rng.choice((None, 0.0, 0.01, 0.15, 0.4)) for _ in range(b.size)])
        batches.append(b)
    return batches


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), config=st.sampled_from(range(len(CONFIGS))),
       steps=st.lists(st.sampled_from(("process", "process", "process", "poll", "refuse", "tick")), min_size=3,
                      max_size=30))
def test_the_columnar_sampler_decides_and_routes_like_the_reference(seed: int, config: int,
                                                                   steps: list[str]) -> None:
    rng = random.Random(seed)
    cfg = config_mod.load(None, environ={}, overrides={"sampling": CONFIGS[config]}).sampling
    ours_clock, their_clock = FakeClock(), FakeClock()
    ours = SampleProcessor(cfg, ours_clock, random.Random(seed))
    theirs = ReferenceSampler(cfg, their_clock, random.Random(seed))
    pending = traffic(rng)
    last: tuple[SpanBatch | None, SpanBatch | None] = (None, None)
    for step in [*steps, "poll_all"]:
        if step == "process" and pending:
            b = pending.pop(0)
            last = (ours.process(clone(b)), theirs.process(clone(b)))
            same(*last)
        elif step == "poll":
            last = (ours.poll(), theirs.poll())
            same(*last)
        elif step == "poll_all":
            for b in pending:
                same(ours.process(clone(b)), theirs.process(clone(b)))
            same(ours.poll(everything=True), theirs.poll(everything=True))
        elif step == "refuse" and last[0] is not None and last[1] is not None:
            ours.refused(last[0])
            theirs.refused(last[1])
            last = (None, None)
        elif step == "tick":
            ours_clock.now += 1.5
            their_clock.now += 1.5
        assert ours.counters() == theirs.counters()
        assert ours.spans_held == theirs.spans_held


@given(size=st.integers(0, 12), data=st.data())
def test_take_and_assemble_pick_the_rows_asked_for(size: int, data: st.DataObject) -> None:
    b = SpanBatch({"TraceId": [f"t{i}" for i in range(size)], "CostTotal": [float(i) for i in range(size)]}, size)
    rows = data.draw(st.lists(st.integers(0, size - 1), max_size=15) if size else st.just([]))
    if data.draw(st.booleans()) and size:  # a run of rows, as a range or a list
        start = data.draw(st.integers(0, size - 1))
        stop = data.draw(st.integers(start, size))
        rows = range(start, stop) if data.draw(st.booleans()) else list(range(start, stop))
    taken = b.take(rows)
    assert taken.columns == {name: [values[i] for i in rows] for name, values in b.columns.items()}
    other = SpanBatch({"TraceId": ["x"], "SampleRate": [0.5]}, 1)
    joined = SpanBatch.assemble([(b, rows, {"SampleRate": [0.25] * len(rows)}), (other, None, None)])
    assert joined.columns == {"TraceId": [f"t{i}" for i in rows] + ["x"],
                              "CostTotal": [float(i) for i in rows] + [None],
                              "SampleRate": [0.25] * len(rows) + [0.5]}


@given(write=st.lists(st.booleans(), max_size=12))
def test_drop_span_only_empties_exactly_the_rows_not_written(write: list[bool]) -> None:
    n = len(write)
    attributes = [{"k": str(i)} for i in range(n)]
    events = [[f"e{i}"] for i in range(n)]
    b = SpanBatch({"SpanAttributes": list(attributes), "Events.Name": list(events),
                   "TraceId": [str(i) for i in range(n)]}, n)
    before = b.columns["SpanAttributes"]
    b.drop_span_only(write)
    assert b.columns["SpanAttributes"] == [a if w else {} for a, w in zip(attributes, write)]
    assert b.columns["Events.Name"] == [e if w else () for e, w in zip(events, write)]
    assert b.columns["TraceId"] == [str(i) for i in range(n)]
    assert before == attributes  # replaced, never changed in place: a held copy keeps its values
