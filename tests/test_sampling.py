"""The sampler on its own: head rate, tail policies, held traces, bounds and the routing of calls and spans."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from sampling_traffic import FakeClock, Span, batch, stored_calls, stored_spans, trace
from spanhouse.collector import config as config_mod
from spanhouse.collector.batch import WRITE_SPAN
from spanhouse.collector.config import ConfigError, SamplingConfig
from spanhouse.collector.processors.sampling import SampleProcessor
from spanhouse.collector.processors.sampling.probability import parse_ot, threshold


def sampler(clock: FakeClock | None = None, **options: Any) -> SampleProcessor:
    cfg = config_mod.load(None, environ={}, overrides={"sampling": options}).sampling
    return SampleProcessor(cfg, clock or FakeClock())


def kept_traces(out: list[Any]) -> set[str]:
    return {r["TraceId"] for r in stored_spans(out)}


def traces(n: int, seed: int = 1, **kwargs: Any) -> list[list[Span]]:
    rng = random.Random(seed)
    return [trace(rng, **kwargs) for _ in range(n)]


# --- defaults --------------------------------------------------------------------------


def test_defaults_pass_batches_through_untouched() -> None:
    s = SampleProcessor(SamplingConfig())
    b = batch(traces(1)[0])
    columns = dict(b.columns)
    assert s.process(b) is b
    assert b.columns == columns
    assert s.poll(everything=True) is None
    assert s.poll_interval_s == 0.0


# --- head sampling ---------------------------------------------------------------------


def test_head_rate_keeps_whole_traces_at_about_the_rate() -> None:
    all_traces = traces(4000)
    s = sampler(rate=0.25)
    out = [s.process(batch(t)) for t in all_traces]
    spans = [r for o in out for r in _all_rows(o)]
    decisions: dict[str, set[bool]] = {}
    for r in spans:
        decisions.setdefault(r["TraceId"], set()).add(r.get(WRITE_SPAN, True))
    assert all(len(d) == 1 for d in decisions.values()), "a trace was split"
    kept = sum(1 for d in decisions.values() if d == {True})
    assert 0.22 < kept / 4000 < 0.28
    assert {r["SampleRate"] for r in stored_spans(out)} == {0.25}


def _all_rows(b: Any) -> list[dict[str, Any]]:
    return [{k: v[i] for k, v in b.columns.items()} for i in range(b.size)]


def test_head_decisions_match_across_instances_restarts_and_batches() -> None:
    all_traces = traces(500)
    one = sampler(rate=0.3)
    first = kept_traces([one.process(batch(t)) for t in all_traces])
    # Another collector, fed the same traces in one batch and in reverse order.
    other = kept_traces([sampler(rate=0.3).process(batch([s for t in reversed(all_traces) for s in t]))])
    assert first == other and 0 < len(first) < 500
    # Consistent across rates too: a trace kept at 10% is kept at 30%.
    low = sampler(rate=0.1)
    lower = kept_traces([low.process(batch(t)) for t in all_traces])
    assert lower < first


def test_head_decision_is_the_trace_ids_last_56_bits_against_the_threshold() -> None:
    low = Span(bytes(9) + bytes.fromhex("3fffffffffffff"), b"\x01" * 8, b"", "low")
    high = Span(bytes(9) + bytes.fromhex("40000000000000"), b"\x02" * 8, b"", "high")
    out = sampler(rate=0.75).process(batch([low, high]))  # threshold 0x40000000000000
    assert [r["SpanName"] for r in stored_spans([out])] == ["high"]


def test_client_threshold_in_tracestate_combines_with_ours() -> None:
    assert parse_ot("vendor=x,ot=th:c;rv:0123456789abcd") == (threshold(0.25), 0x0123456789ABCD)
    assert parse_ot("xot=th:8") == (None, None)
    assert parse_ot("ot=th:zz") == (None, None)
    tid = bytes(9) + bytes.fromhex("d0000000000000")  # randomness 0xd0..: kept at 25%, dropped at 10%
    at_25 = Span(tid, b"\x01" * 8, b"", "client sampled 25%", tracestate="ot=th:c")
    rows = stored_spans([sampler(rate=0.5).process(batch([at_25]))])
    assert [r["SampleRate"] for r in rows] == [0.25]  # the smaller probability wins
    explicit_rv = Span(tid, b"\x01" * 8, b"", "rv decides", tracestate="ot=th:c;rv:00000000000001")
    assert stored_spans([sampler(rate=0.5).process(batch([explicit_rv]))]) == []
    ignored = stored_spans([sampler(rate=0.5, honor_client_decision=False).process(batch([explicit_rv]))])
    assert [r["SampleRate"] for r in ignored] == [0.5]


@pytest.mark.parametrize(("flags", "honor", "stored"), [
    (0x100, True, True),    # SDKs that leave the trace flags byte 0: no decision to honour
    (0x101, True, True),    # sampled
    (0x102, True, False),   # trace flags present, sampled bit off
    (0x102, False, True),
])
def test_w3c_sampled_flag(flags: int, honor: bool, stored: bool) -> None:
    tid = bytes(9) + b"\xff" * 7  # kept by any rate above 0
    span = Span(tid, b"\x01" * 8, b"", "s", flags=flags)
    out = sampler(rate=0.99, honor_client_decision=honor).process(batch([span]))
    assert bool(stored_spans([out])) is stored
    assert len(stored_calls([out])) == 0  # not a GenAI span


def test_tenant_rate_overrides_the_global_rate() -> None:
    s = sampler(rate=0.0, tenant_rates={"gold": 1.0})
    t = traces(1)[0]
    assert stored_spans([s.process(batch(t, tenant="other"))]) == []
    assert len(stored_spans([s.process(batch(t, tenant="gold"))])) == 3


def test_service_rate_uses_the_root_spans_service_for_the_whole_trace() -> None:
    s = sampler(rate=0.0, service_rates={"frontend": 1.0})
    rng = random.Random(3)
    t = trace(rng, n_children=2, service="backend")
    t[0].service = "frontend"  # the root; its children come from another service
    children, root = t[1:], t[:1]
    first = s.process(batch(children))
    assert stored_spans([first]) == []  # held until the root says which service the trace belongs to
    out = [first, s.process(batch(root))]
    assert len(stored_spans(out)) == 3


# --- every call reaches genai_calls once ------------------------------------------------


def test_every_call_is_routed_to_genai_calls_exactly_once_whatever_is_sampled() -> None:
    clock = FakeClock()
    s = sampler(clock, rate=0.05, keep_errors=True, max_traces_held=20)
    rng = random.Random(7)
    all_traces = [trace(rng, n_children=3, error=rng.random() < 0.1) for _ in range(300)]
    expected = sorted(sp.span_id.hex() for t in all_traces for sp in t[1:])
    out = []
    for t in all_traces:  # roots last, children in separate requests: everything is held at first
        out.append(s.process(batch(t[1:2])))
        out.append(s.process(batch(t[2:])))
    for t in all_traces[::2]:
        out.append(s.process(batch(t[:1])))
    clock.now += 11
    out.append(s.poll())
    out.append(s.poll(everything=True))
    assert sorted(r["SpanId"] for r in stored_calls(out)) == expected
    spans = stored_spans(out)
    assert len({r["SpanId"] for r in spans}) == len(spans), "a span row was written twice"


# --- tail policies ------------------------------------------------------------------------


def decide_one(spans: list[Span], **options: Any) -> tuple[bool, dict[str, int]]:
    s = sampler(rate=0.0, **options)
    out = s.process(batch(spans))
    kept = len(stored_spans([out])) == len(spans)
    assert kept or not stored_spans([out])
    return kept, s.counters()


def test_error_policy_keeps_traces_with_an_error() -> None:
    rng = random.Random(4)
    kept, counters = decide_one(trace(rng, error=True), keep_errors=True)
    assert kept and counters["traces_kept_error_total"] == 1
    kept, counters = decide_one(trace(rng), keep_errors=True)
    assert not kept and counters["traces_dropped_total"] == 1


def test_duration_policy_keeps_traces_with_a_slow_span() -> None:
    rng = random.Random(5)
    kept, counters = decide_one(trace(rng, slow_ns=10_000_000_000), keep_duration_over_ms=8000)
    assert kept and counters["traces_kept_duration_total"] == 1
    fast = trace(rng)
    for sp in fast:
        sp.duration_ns = 1_000_000
    assert not decide_one(fast, keep_duration_over_ms=8000)[0]


def test_cost_policy_sums_calls_but_not_agent_spans() -> None:
    s = sampler(rate=0.0, keep_cost_over_usd=0.10)
    rng = random.Random(6)
    kept_trace, cheap_trace = trace(rng, n_children=2), trace(rng, n_children=2)
    for t, per_call, agent in ((kept_trace, 0.06, 0.0), (cheap_trace, 0.04, 5.0)):
        b = batch(t)
        ops = b["Operation"]
        agent_index = 0  # the root plays the agent span repeating its children's usage
        ops[agent_index] = "invoke_agent"
        b.set_column("CostTotal", [agent if i == agent_index else per_call for i in range(b.size)])
        out = s.process(b)
        assert (len(stored_spans([out])) == 3) is (t is kept_trace)
    assert s.counters()["traces_kept_cost_total"] == 1


def test_attribute_policy_matches_values_patterns_and_resource_attributes() -> None:
    rules = [{"key": "user.tier", "values": ["enterprise"]}, {"key": "http.route", "pattern": "^/admin/"},
             {"key": "service.name", "values": ["billing"]}]
    rng = random.Random(8)
    assert decide_one(trace(rng, **{"user.tier": "enterprise"}), keep_attributes=rules)[0]
    assert decide_one(trace(rng, **{"http.route": "/admin/users"}), keep_attributes=rules)[0]
    assert decide_one(trace(rng, service="billing"), keep_attributes=rules)[0]
    kept, counters = decide_one(trace(rng, **{"user.tier": "free", "http.route": "/x/admin/"}), keep_attributes=rules)
    assert not kept and counters["traces_kept_attribute_total"] == 0


def test_first_matching_policy_decides_and_is_counted() -> None:
    rng = random.Random(9)
    both = trace(rng, error=True, slow_ns=10_000_000_000)
    kept, counters = decide_one(both, keep_errors=True, keep_duration_over_ms=1000)
    assert kept and counters["traces_kept_error_total"] == 1 and counters["traces_kept_duration_total"] == 0


def test_rate_limit_weights_are_the_probability_each_trace_was_kept_with() -> None:
    clock = FakeClock()
    cfg = config_mod.load(None, environ={}, overrides={"sampling": {"rate": 0.0, "rate_limit_traces_per_s": 2}}).sampling
    s = SampleProcessor(cfg, clock, rng=random.Random(3))
    first = [s.process(batch(t)) for t in traces(5, seed=10)]
    # The k-th trace of the first second: min(1, 2 / k).
    assert {r["SampleRate"] for r in stored_spans(first)} <= {0.4, 0.5, 2 / 3, 1.0}
    assert all(r["SampleRate"] == 1.0 for r in stored_spans(first[:2]))
    clock.now += 1.0
    later = [s.process(batch(t)) for t in traces(5, seed=11)]
    # The previous second offered 5: each trace now has 2/5.
    assert {r["SampleRate"] for r in stored_spans(later)} <= {0.4}


def test_rate_limit_keeps_about_n_a_second_at_a_steady_rate() -> None:
    clock = FakeClock()
    cfg = config_mod.load(None, environ={}, overrides={"sampling": {"rate": 0.0, "rate_limit_traces_per_s": 5}}).sampling
    s = SampleProcessor(cfg, clock, rng=random.Random(5))
    for second in range(40):
        for t in traces(50, seed=100 + second):
            s.process(batch(t))
        clock.now += 1.0
    kept = s.counters()["traces_kept_rate_limit_total"]
    # First second: about 5 * (1 + ln 10) = 16.5; then 5 a second on average.
    assert 4.0 < (kept - 16.5) / 39 < 6.0


def _estimate(seed: int) -> tuple[float, int]:
    """Two bursts of 600 traces, each followed by a quiet second of 20, through every policy: (sum of 1/SampleRate over stored spans, spans)."""
    rng = random.Random(seed)
    clock = FakeClock()
    cfg = config_mod.load(None, environ={}, overrides={"sampling": {
        "rate": 0.05, "keep_errors": True, "keep_duration_over_ms": 2000, "rate_limit_traces_per_s": 20,
        "keep_attributes": [{"key": "user.tier", "values": ["enterprise"]}]}}).sampling
    s = SampleProcessor(cfg, clock, rng=random.Random(seed))
    out = []
    received = 0
    for arriving in (600, 20, 600, 20):  # bursts, a quiet second after each
        for _ in range(arriving):
            kind = rng.random()
            spans = trace(rng, n_children=rng.randrange(1, 4), error=kind < 0.03,
                          slow_ns=3_000_000_000 if 0.03 <= kind < 0.05 else 0,
                          **({"user.tier": "enterprise"} if 0.05 <= kind < 0.06 else {}))
            received += len(spans)
            out.append(s.process(batch(spans)))
        clock.now += 1.0
    out.append(s.poll(everything=True))
    return sum(1 / r["SampleRate"] for r in stored_spans(out)), received


def test_sum_of_inverse_sample_rates_estimates_what_was_received() -> None:
    """Over repeated seeds the estimate is unbiased; one run is off by about its standard deviation (~6 %)."""
    ratios = []
    for seed in range(12):
        estimate, received = _estimate(seed)
        ratios.append(estimate / received)
    mean = sum(ratios) / len(ratios)
    assert 0.95 < mean < 1.05, ratios
    assert all(0.75 < r < 1.25 for r in ratios), ratios


def test_probabilistic_rest_uses_the_consistent_head_rule() -> None:
    all_traces = traces(300)
    head_sampler, tail_sampler = sampler(rate=0.2), sampler(rate=0.2, keep_errors=True)
    head = kept_traces([head_sampler.process(batch(t)) for t in all_traces])
    tail = kept_traces([tail_sampler.process(batch(t)) for t in all_traces])
    assert head == tail


# --- holding, waiting, late spans, bounds ------------------------------------------------------


def test_spans_are_held_until_the_root_arrives_then_released_with_span_rows_only() -> None:
    s = sampler(rate=1.0, keep_errors=True)
    t = traces(1)[0]
    first = s.process(batch(t[1:]))
    assert stored_spans([first]) == [] and len(stored_calls([first])) == 2
    assert s.counters()["traces_held"] == 1 and s.counters()["spans_held"] == 2
    second = s.process(batch(t[:1]))
    assert sorted(r["SpanId"] for r in stored_spans([second])) == sorted(sp.span_id.hex() for sp in t)
    assert len(stored_calls([first, second])) == 2
    assert s.counters()["traces_held"] == 0 and s.counters()["spans_held"] == 0


def test_a_held_spans_content_travels_once_with_its_span_row_not_with_its_call_row() -> None:
    s = sampler(rate=1.0, keep_errors=True)
    t = traces(1)[0]
    t[1].attributes["gen_ai.input.messages"] = '[{"role": "user", "content": "long prompt"}]'
    first = s.process(batch(t[1:]))
    calls = stored_calls([first])
    # The call rows written now carry everything genai_calls stores ...
    assert {c["SpanId"] for c in calls} == {sp.span_id.hex() for sp in t[1:]}
    assert all(c["Operation"] == "chat" and c["InputTokens"] and c["RequestModel"] for c in calls)
    # ... and none of the span's content, which waits with the held span.
    assert all(not c["SpanAttributes"] and not c["Events.Attributes"] for c in calls)
    released = stored_spans([s.process(batch(t[:1]))])
    by_id = {r["SpanId"]: r for r in released}
    assert by_id[t[1].span_id.hex()]["SpanAttributes"]["gen_ai.input.messages"].endswith('"long prompt"}]')
    assert all(r["SpanAttributes"]["gen_ai.operation.name"] == "chat" for r in released if r["ParentSpanId"])


def test_a_trace_without_its_root_is_decided_when_the_wait_passes() -> None:
    clock = FakeClock()
    s = sampler(clock, rate=1.0, keep_errors=True, decision_wait_s=10)
    t = traces(1)[0]
    s.process(batch(t[1:]))
    clock.now += 9.9
    assert s.poll() is None
    clock.now += 0.2
    released = s.poll()
    assert len(stored_spans([released])) == 2 and stored_calls([released]) == []
    assert s.counters()["wait_decisions_total"] == 1


def test_late_spans_follow_the_decision_within_the_cache_window() -> None:
    clock = FakeClock()
    s = sampler(clock, rate=0.0, keep_errors=True, decision_cache_s=30)
    rng = random.Random(11)
    kept, dropped = trace(rng, error=True), trace(rng)
    s.process(batch(kept[:2]))
    s.process(batch(dropped[:2]))
    late = s.process(batch(kept[2:] + dropped[2:]))
    assert [r["SpanId"] for r in stored_spans([late])] == [kept[2].span_id.hex()]
    assert s.counters()["late_spans_total"] == 2
    clock.now += 31
    again = s.process(batch(kept[2:]))  # forgotten: a new, held trace
    assert stored_spans([again]) == [] and s.counters()["traces_held"] == 1


@pytest.mark.parametrize("bound", [{"max_traces_held": 3}, {"max_spans_held": 7}])
def test_at_a_bound_the_oldest_traces_are_decided_early_not_dropped(bound: dict[str, int]) -> None:
    s = sampler(rate=1.0, keep_errors=True, **bound)
    all_traces = traces(6)
    out = [s.process(batch(t[1:])) for t in all_traces]  # no roots: all would be held
    counters = s.counters()
    assert counters["traces_held"] <= 3 and counters["spans_held"] <= 7
    assert counters["early_decisions_total"] == 6 - counters["traces_held"]
    out.append(s.poll(everything=True))
    assert len(stored_spans(out)) == 12


def test_refused_batch_puts_released_spans_back_and_lets_go_of_its_held_spans() -> None:
    s = sampler(rate=1.0, keep_errors=True)
    first, second = traces(2)
    s.process(batch(first[1:]))
    out = s.process(batch(first[:1] + second[1:]))  # releases first's children; holds second's
    s.refused(out)
    assert s.counters()["traces_held"] == 0
    again = s.process(batch(first[:1] + second[1:]))  # the client's retry
    later = s.poll(everything=True)
    spans = stored_spans([again, later])
    assert sorted(r["SpanId"] for r in spans) == sorted(sp.span_id.hex() for sp in first + second[1:])


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"rate": 1.5}, "sampling.rate: a probability between 0 and 1"),
    ({"tenant_rates": {"a": -0.1}}, "sampling.tenant_rates.a"),
    ({"decision_wait_s": 0}, "sampling.decision_wait_s: must be greater than 0"),
    ({"max_spans_held": -1}, "sampling.max_spans_held"),
    ({"keep_duration_over_ms": -5}, "sampling.keep_duration_over_ms"),
    ({"keep_attributes": [{"values": ["x"]}]}, "sampling.keep_attributes[0].key"),
    ({"keep_attributes": [{"key": "k"}]}, "sampling.keep_attributes[0]: give `values`"),
    ({"keep_attributes": [{"key": "k", "pattern": "("}]}, "sampling.keep_attributes[0].pattern"),
    ({"keep_atributes": []}, "did you mean sampling.keep_attributes"),
    ({"rate": "often"}, "sampling.rate: expected float"),
])
def test_bad_sampling_configuration_names_the_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_mod.load(None, environ={}, overrides={"sampling": options})


def test_sampling_rate_from_the_environment() -> None:
    cfg = config_mod.load(None, environ={"SPANHOUSE_SAMPLING__RATE": "0.05", "SPANHOUSE_SAMPLING__KEEP_ERRORS": "true"})
    assert (cfg.sampling.rate, cfg.sampling.keep_errors) == (0.05, True)


def test_counters_name_every_policy() -> None:
    counters = sampler(rate=0.5, keep_errors=True).counters()
    policies = ("error", "duration", "cost", "attribute", "rate_limit", "probabilistic")
    assert {f"traces_kept_{p}_total" for p in policies} <= set(counters)
    assert {"traces_held", "spans_held", "spans_sampled_out_total", "early_decisions_total"} <= set(counters)
