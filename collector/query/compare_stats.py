"""The statistics of `spanhouse compare`: two groups of calls, each metric's difference B - A with a confidence
interval, and a verdict. Pure functions over per-call arrays (no store, no I/O), so they are tested with
known data.

Intervals are two-sided, at 1 - 0.05 / 6 (99.2 %) each: six metrics are judged (error rate, latency p50
and p95, TTFT p50 and p95, cost per call), and with this Bonferroni correction the chance that any of
them is called worse or better when the groups do not differ is at most 5 % (at 95 % each it would be up
to 30 %, too many false alarms for a canary gate).

- Error rate: Newcombe's hybrid score interval for a difference of two proportions (his method 10), built
  from the Wilson score interval of each group's rate. Exact counts, no resampling.
- Latency and time-to-first-token percentiles, tokens and cost per call: the bootstrap percentile interval
  with RESAMPLES resamples per group, each group resampled on its own (calls drawn with replacement), from
  a generator seeded by `seed`, so a run is reproducible.

A percentile of a resample is an order statistic (or two, interpolated) of the resampled calls, and the
k-th smallest of n calls drawn with replacement is the call at rank ceil(n * U) where U is the k-th smallest
of n uniform numbers, which is Beta(k, n + 1 - k) distributed. So each resample's percentile is drawn
exactly as resampling would give it, at the cost of one Beta draw instead of n index draws and a sort.
Means use the Poisson bootstrap (each call weighted by its own Poisson(1) count, see bootstrap_means).

A metric is "worse" when its interval lies entirely on the bad side of 0 (higher latency, error rate or
cost), "better" when entirely on the good side, else "no evidence". Token counts are not judged good or
bad: they are "higher" or "lower". A metric needs MIN_CALLS calls with a value in each group (a p95
needs MIN_TAIL_CALLS calls above it, so 100); with fewer there is no verdict: percentile intervals from
a handful of calls are too narrow to trust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

RESAMPLES = 2000
FAMILY_CONFIDENCE = 0.95
MIN_CALLS = 30
MIN_TAIL_CALLS = 5

WORSE, BETTER, NO_EVIDENCE, HIGHER, LOWER = "worse", "better", "no evidence", "higher", "lower"

ERROR_METHOD = "Newcombe hybrid score interval (Wilson score intervals of each rate)"
BOOTSTRAP_METHOD = f"bootstrap percentile interval, {RESAMPLES} resamples per group"


# The percentiles compared: name, Group attribute, q.
PERCENTILES = (("latency p50", "duration_ms", 0.5), ("latency p95", "duration_ms", 0.95),
               ("TTFT p50", "ttft_ms", 0.5), ("TTFT p95", "ttft_ms", 0.95))
# Means per call: name, unit, Group attribute, judged good/bad.
MEANS = (("input tokens per call", "tokens", "input_tokens", False),
         ("output tokens per call", "tokens", "output_tokens", False),
         ("cost per call", "USD", "cost_usd", True))
JUDGED_METRICS = 1 + len(PERCENTILES) + sum(judged for *_, judged in MEANS)  # the error rate, percentiles, cost
# Each interval's level: the Bonferroni correction that keeps the whole comparison at FAMILY_CONFIDENCE.
CONFIDENCE = 1 - (1 - FAMILY_CONFIDENCE) / JUDGED_METRICS


@dataclass(frozen=True)
class Group:
    """One side of the comparison. `calls` and `errors` count every call of the group; the arrays hold one
    entry per fetched call (all of them, or a uniform sample), NaN where a call has no such value."""

    calls: int
    errors: int
    duration_ms: np.ndarray
    ttft_ms: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cost_usd: np.ndarray

    @property
    def fetched(self) -> int:
        return len(self.duration_ms)


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    a: float | None
    b: float | None
    diff: float | None  # b - a
    ratio: float | None  # b / a
    low: float | None  # the interval of diff
    high: float | None
    n_a: int  # calls with a value
    n_b: int
    verdict: str
    note: str = ""
    judged: bool = True  # counts for the overall verdict


@dataclass(frozen=True)
class Comparison:
    metrics: list[Metric]
    verdict: str
    seed: int
    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE  # of each interval
    family_confidence: float = FAMILY_CONFIDENCE  # of the whole comparison


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(errors: int, calls: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the proportion errors / calls."""
    if calls <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = errors / calls
    denominator = 1 + z * z / calls
    centre = (p + z * z / (2 * calls)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / calls + z * z / (4 * calls * calls))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(errors_a: int, calls_a: int, errors_b: int, calls_b: int,
             confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p_B - p_A (Statistics in Medicine 1998, method 10)."""
    p_a, p_b = errors_a / calls_a, errors_b / calls_b
    low_a, high_a = wilson(errors_a, calls_a, confidence)
    low_b, high_b = wilson(errors_b, calls_b, confidence)
    diff = p_b - p_a
    return (diff - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2),
            diff + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2))


def percentile(ordered: np.ndarray, q: float) -> float:
    """The q-quantile of sorted values, interpolated between the two nearest ranks (as ClickHouse's
    quantileExactInclusive and `spanhouse usage` compute it)."""
    h = (len(ordered) - 1) * q
    j = math.floor(h)
    if j + 1 >= len(ordered):
        return float(ordered[-1])
    return float(ordered[j] + (h - j) * (ordered[j + 1] - ordered[j]))


def bootstrap_percentile(ordered: np.ndarray, q: float, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """`resamples` draws of `percentile(sorted(resample), q)`, each resample n calls drawn with replacement.

    The ranks involved, j + 1 and j + 2 of n, are drawn as order statistics of n uniforms (see the module
    docstring): U_(k) ~ Beta(k, n + 1 - k), and the next one above it is U_(k) + (1 - U_(k)) * Beta(1, n - k).
    """
    n = len(ordered)
    h = (n - 1) * q
    j = math.floor(h)
    g = h - j
    k = j + 1
    u = rng.beta(k, n + 1 - k, size=resamples)
    low = ordered[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]
    if g == 0 or k >= n:
        return low.astype(np.float64)
    u_next = u + (1 - u) * rng.beta(1, n - k, size=resamples)
    high = ordered[np.clip(np.ceil(u_next * n).astype(np.int64) - 1, 0, n - 1)]
    return low + g * (high - low)


def _poisson_weights() -> np.ndarray:
    """Poisson(1) at the middle of each of 65536 equal probability steps: a uniform 16-bit number picks a
    weight with its Poisson probability to within 1/65536 (weights up to 8 occur)."""
    pmf = [math.exp(-1) / math.factorial(k) for k in range(20)]
    cdf = np.cumsum(pmf)
    # uint8: the 64 KiB table stays in cache, which the lookup of every call's weight depends on.
    return np.searchsorted(cdf, (np.arange(1 << 16) + 0.5) / (1 << 16)).astype(np.uint8)


_POISSON_WEIGHTS = _poisson_weights()


def bootstrap_means(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """For a (metrics, calls) array with NaN (or another non-finite value) where a call has no value:
    (metrics, resamples) draws of each metric's mean over the calls that have one.

    Poisson bootstrap: each call counts W times in a resample, W ~ Poisson(1) independently for every call
    and the same for all metrics, the large-sample form of drawing n calls with replacement (where the
    counts are Multinomial(n, 1/n), nearly independent Poisson(1) for many calls). It needs no n random
    indices and no count of them per resample, a third of the work."""
    metrics, n = values.shape
    present = np.isfinite(values)
    # Values and presence side by side: one product per resample gives every weighted sum and weight.
    # Metrics reported by the same calls (often all of them) share one presence row.
    patterns: list[np.ndarray] = []
    which = []
    for row in present:
        found = next((k for k, pattern in enumerate(patterns) if np.array_equal(pattern, row)), None)
        if found is None:
            found = len(patterns)
            patterns.append(row)
        which.append(found)
    stacked = np.vstack([np.where(present, values, 0.0), np.array(patterns, dtype=np.float64)])
    out = np.empty((metrics + len(patterns), resamples))
    for i in range(resamples):
        weights = _POISSON_WEIGHTS[rng.integers(0, 1 << 16, size=n, dtype=np.uint16)]
        # einsum, not `@`: BLAS would start threads for each small product, which costs far more than it
        # saves (and collapses on a busy machine).
        out[:, i] = np.einsum("ij,j->i", stacked, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return out[:metrics] / out[metrics + np.array(which)]


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return math.nan, math.nan
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def _verdict(low: float, high: float, judged: bool) -> str:
    if low > 0:
        return WORSE if judged else HIGHER
    if high < 0:
        return BETTER if judged else LOWER
    return NO_EVIDENCE


def _difference(a: float, b: float) -> float:
    """b - a, without the rounding noise of two means of the same values (1e-19 instead of 0)."""
    diff = b - a
    return 0.0 if abs(diff) <= 1e-12 * max(abs(a), abs(b)) else diff


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or a == 0 else b / a


def _few(n_a: int, n_b: int, needed: int) -> str:
    return f"too few calls with a value ({n_a} and {n_b}; a verdict needs {needed} in each group)"


def error_rate(a: Group, b: Group, confidence: float = CONFIDENCE) -> Metric:
    rate_a = a.errors / a.calls if a.calls else None
    rate_b = b.errors / b.calls if b.calls else None
    diff = None if rate_a is None or rate_b is None else rate_b - rate_a
    if diff is None:
        return Metric("error rate", "ratio", rate_a, rate_b, None, None, None, None, a.calls, b.calls, NO_EVIDENCE,
                      "a group has no calls")
    low, high = newcombe(a.errors, a.calls, b.errors, b.calls, confidence)
    if min(a.calls, b.calls) < MIN_CALLS:
        return Metric("error rate", "ratio", rate_a, rate_b, diff, _ratio(rate_a, rate_b), low, high, a.calls,
                      b.calls, NO_EVIDENCE, _few(a.calls, b.calls, MIN_CALLS))
    return Metric("error rate", "ratio", rate_a, rate_b, diff, _ratio(rate_a, rate_b), low, high, a.calls, b.calls,
                  _verdict(low, high, True))


def _percentile_metric(name: str, values_a: np.ndarray, values_b: np.ndarray, q: float, rng: np.random.Generator,
                       resamples: int, confidence: float) -> Metric:
    ordered_a = np.sort(values_a[np.isfinite(values_a)])  # NaN: no value; an infinite one says nothing either
    ordered_b = np.sort(values_b[np.isfinite(values_b)])
    n_a, n_b = len(ordered_a), len(ordered_b)
    point_a = percentile(ordered_a, q) if n_a else None
    point_b = percentile(ordered_b, q) if n_b else None
    if not n_a or not n_b:
        return Metric(name, "ms", point_a, point_b, None, None, None, None, n_a, n_b, NO_EVIDENCE,
                      "no calls with a value in a group")
    assert point_a is not None and point_b is not None
    draws = bootstrap_percentile(ordered_b, q, rng, resamples) - bootstrap_percentile(ordered_a, q, rng, resamples)
    low, high = _interval(draws, confidence)
    needed = max(MIN_CALLS, math.ceil(MIN_TAIL_CALLS / (1 - q) - 1e-9))
    diff, ratio = _difference(point_a, point_b), _ratio(point_a, point_b)
    if min(n_a, n_b) < needed:
        return Metric(name, "ms", point_a, point_b, diff, ratio, low, high, n_a, n_b, NO_EVIDENCE,
                      _few(n_a, n_b, needed))
    return Metric(name, "ms", point_a, point_b, diff, ratio, low, high, n_a, n_b, _verdict(low, high, True))


def _mean_metrics(a: Group, b: Group, seed: int, resamples: int, confidence: float) -> list[Metric]:
    values_a = np.vstack([getattr(a, attribute) for _, _, attribute, _ in MEANS])
    values_b = np.vstack([getattr(b, attribute) for _, _, attribute, _ in MEANS])
    draws_a = bootstrap_means(values_a, np.random.default_rng([seed, 101]), resamples) if a.fetched else None
    draws_b = bootstrap_means(values_b, np.random.default_rng([seed, 102]), resamples) if b.fetched else None
    out = []
    for i, (name, unit, _, judged) in enumerate(MEANS):
        finite_a, finite_b = values_a[i][np.isfinite(values_a[i])], values_b[i][np.isfinite(values_b[i])]
        n_a, n_b = len(finite_a), len(finite_b)
        point_a = float(finite_a.mean()) if n_a else None
        point_b = float(finite_b.mean()) if n_b else None
        if point_a is None or point_b is None or draws_a is None or draws_b is None:
            out.append(Metric(name, unit, point_a, point_b, None, None, None, None, n_a, n_b, NO_EVIDENCE,
                              "no calls with a value in a group", judged))
            continue
        low, high = _interval(draws_b[i] - draws_a[i], confidence)
        diff, ratio = _difference(point_a, point_b), _ratio(point_a, point_b)
        if min(n_a, n_b) < MIN_CALLS:
            out.append(Metric(name, unit, point_a, point_b, diff, ratio, low, high, n_a, n_b, NO_EVIDENCE,
                              _few(n_a, n_b, MIN_CALLS), judged))
        else:
            out.append(Metric(name, unit, point_a, point_b, diff, ratio, low, high, n_a, n_b,
                              _verdict(low, high, judged), judged=judged))
    return out


def overall(metrics: list[Metric]) -> str:
    """Worse if any judged metric is worse (a canary gate); better if some are better and none worse."""
    verdicts = {m.verdict for m in metrics if m.judged}
    if WORSE in verdicts:
        return WORSE
    return BETTER if BETTER in verdicts else NO_EVIDENCE


def compare(a: Group, b: Group, seed: int = 0, resamples: int = RESAMPLES,
            family_confidence: float = FAMILY_CONFIDENCE) -> Comparison:
    """Every metric of B against A, in the order `spanhouse compare` prints them."""
    if resamples < 100:
        raise ValueError(f"resamples: at least 100 are needed for a percentile interval, got {resamples}")
    confidence = 1 - (1 - family_confidence) / JUDGED_METRICS
    metrics = [error_rate(a, b, confidence)]
    for index, (name, column, q) in enumerate(PERCENTILES):
        rng = np.random.default_rng([seed, index])  # one stream per metric: adding a metric changes no other
        metrics.append(_percentile_metric(name, getattr(a, column), getattr(b, column), q, rng, resamples,
                                          confidence))
    metrics.extend(_mean_metrics(a, b, seed, resamples, confidence))
    return Comparison(metrics, overall(metrics), seed, resamples, confidence, family_confidence)
