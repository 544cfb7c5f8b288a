"""The statistics behind `spanhouse compare` on known data: intervals, verdicts, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from spanhouse.collector.query import compare_stats as cs


def group(n: int, *, latency_scale: float = 1.0, error_rate: float = 0.02, tokens_scale: float = 1.0,
          seed: int = 1) -> cs.Group:
    rng = np.random.default_rng(seed)
    duration = rng.lognormal(6.0, 0.4, n) * latency_scale
    ttft = np.where(np.arange(n) % 2 == 0, duration * 0.3, np.nan)  # every other call streamed
    input_tokens = np.round(rng.uniform(800, 1200, n) * tokens_scale)
    output_tokens = np.round(rng.uniform(100, 300, n) * tokens_scale)
    cost = input_tokens * 2.5e-6 + output_tokens * 1e-5
    return cs.Group(n, round(n * error_rate), duration, ttft, input_tokens, output_tokens, cost)


def by_name(comparison: cs.Comparison) -> dict[str, cs.Metric]:
    return {m.name: m for m in comparison.metrics}


def test_identical_groups_show_no_evidence_and_every_interval_holds_zero() -> None:
    a = group(3000)
    result = cs.compare(a, a)
    assert result.verdict == cs.NO_EVIDENCE
    for metric in result.metrics:
        assert metric.diff == 0 and metric.low <= 0 <= metric.high, metric
        assert metric.verdict == cs.NO_EVIDENCE and metric.note == ""


def test_two_samples_of_one_distribution_show_no_evidence() -> None:
    result = cs.compare(group(3000, seed=1), group(3000, seed=2))
    assert result.verdict == cs.NO_EVIDENCE, [(m.name, m.low, m.high) for m in result.metrics]


def test_latency_fifty_percent_higher_with_enough_calls_is_worse() -> None:
    a, b = group(2000, seed=1), group(2000, latency_scale=1.5, seed=2)
    result = cs.compare(a, b)
    metrics = by_name(result)
    assert result.verdict == cs.WORSE
    for name in ("latency p50", "latency p95", "TTFT p50", "TTFT p95"):
        metric = metrics[name]
        assert metric.verdict == cs.WORSE and metric.low > 0
        assert metric.ratio == pytest.approx(1.5, rel=0.1)
        assert metric.low < metric.diff < metric.high
    # Same error rate, same tokens: nothing else moves.
    assert {metrics[n].verdict for n in ("error rate", "input tokens per call", "cost per call")} == {cs.NO_EVIDENCE}


def test_faster_b_is_better_and_more_errors_make_it_worse() -> None:
    a = group(2000, seed=1)
    faster = cs.compare(a, group(2000, latency_scale=0.7, seed=2))
    assert faster.verdict == cs.BETTER and by_name(faster)["latency p50"].high < 0
    failing = cs.compare(a, group(2000, latency_scale=0.7, error_rate=0.06, seed=2))
    assert by_name(failing)["error rate"].verdict == cs.WORSE
    assert failing.verdict == cs.WORSE  # worse on anything is worse overall, even when faster


def test_small_samples_give_no_verdict_even_for_a_large_shift() -> None:
    result = cs.compare(group(12, seed=1), group(12, latency_scale=1.5, error_rate=0.5, seed=2))
    assert result.verdict == cs.NO_EVIDENCE
    for metric in result.metrics:
        assert metric.verdict == cs.NO_EVIDENCE
    assert "too few calls" in by_name(result)["latency p50"].note
    # A p95 needs 100 calls per group: with 60, p50 is judged and p95 is not.
    result = by_name(cs.compare(group(60, seed=1), group(60, latency_scale=2.0, seed=2)))
    assert result["latency p50"].verdict == cs.WORSE
    assert result["latency p95"].verdict == cs.NO_EVIDENCE and "needs 100" in result["latency p95"].note


def test_tokens_are_higher_or_lower_not_worse() -> None:
    result = cs.compare(group(2000, seed=1), group(2000, tokens_scale=1.3, seed=2))
    metrics = by_name(result)
    assert metrics["input tokens per call"].verdict == cs.HIGHER
    assert metrics["output tokens per call"].verdict == cs.HIGHER
    assert metrics["cost per call"].verdict == cs.WORSE  # the cost they cause is judged
    assert not metrics["input tokens per call"].judged


def test_a_metric_no_call_has_is_shown_without_a_verdict() -> None:
    a, b = group(500, seed=1), group(500, seed=2)
    no_ttft = cs.Group(b.calls, b.errors, b.duration_ms, np.full(b.calls, np.nan), b.input_tokens,
                       b.output_tokens, np.full(b.calls, np.nan))
    metrics = by_name(cs.compare(a, no_ttft))
    for name in ("TTFT p50", "cost per call"):
        assert metrics[name].b is None and metrics[name].low is None and metrics[name].verdict == cs.NO_EVIDENCE


def test_the_seed_makes_a_run_reproducible() -> None:
    a, b = group(800, seed=1), group(800, latency_scale=1.05, seed=2)
    first, again, other = cs.compare(a, b, seed=7), cs.compare(a, b, seed=7), cs.compare(a, b, seed=8)
    assert first == again
    assert [(m.low, m.high) for m in first.metrics[1:]] != [(m.low, m.high) for m in other.metrics[1:]]
    assert [m.diff for m in first.metrics] == [m.diff for m in other.metrics]  # only the intervals resample


def test_wilson_and_newcombe_match_newcombes_published_examples() -> None:
    # Newcombe, Statistics in Medicine 17 (1998): 81/263 (paper 1, Table I) and 56/70 - 48/80 (paper 2, method 10).
    assert cs.wilson(81, 263, 0.95) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert cs.newcombe(48, 80, 56, 70, 0.95) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    low, high = cs.newcombe(0, 30, 0, 30)
    assert low < 0 < high  # no errors in either group: no evidence either way


def test_percentile_matches_the_interpolated_definition() -> None:
    values = np.sort(np.random.default_rng(3).lognormal(size=101))
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        assert cs.percentile(values, q) == pytest.approx(float(np.quantile(values, q)))


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_percentile_draws_follow_the_distribution_of_resampled_percentiles(q: float) -> None:
    """The Beta order-statistic draws against resampling the calls one by one."""
    rng = np.random.default_rng(5)
    values = np.sort(rng.lognormal(size=40))
    draws = cs.bootstrap_percentile(values, q, np.random.default_rng(6), 20000)
    brute = np.quantile(values[rng.integers(0, len(values), size=(20000, len(values)))], q, axis=1)
    for level in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(draws, level) == pytest.approx(np.quantile(brute, level), rel=0.05)
    assert draws.mean() == pytest.approx(brute.mean(), rel=0.02)


def test_mean_draws_resample_calls_and_skip_missing_values() -> None:
    rng = np.random.default_rng(9)
    values = rng.exponential(10.0, size=(2, 400))
    values[1, ::4] = np.nan  # a quarter of the calls did not report the second metric
    draws = cs.bootstrap_means(values, np.random.default_rng(10), 4000)
    assert draws.shape == (2, 4000)
    for row in range(2):
        present = values[row][~np.isnan(values[row])]
        assert draws[row].mean() == pytest.approx(present.mean(), rel=0.01)
        assert draws[row].std() == pytest.approx(present.std() / np.sqrt(len(present)), rel=0.1)


def test_infinite_values_count_as_missing() -> None:
    a, b = group(200, seed=1), group(200, seed=2)
    broken = cs.Group(b.calls, b.errors, b.duration_ms, np.full(b.calls, np.inf), b.input_tokens, b.output_tokens,
                      b.cost_usd)
    metric = by_name(cs.compare(a, broken))["TTFT p50"]
    assert metric.verdict == cs.NO_EVIDENCE and metric.b is None and metric.low is None
