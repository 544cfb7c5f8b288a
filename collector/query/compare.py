"""What `spanhouse compare` does: two groups of LLM calls (a canary version against the stable one, one
environment against another), side by side, with the difference of each metric, its confidence interval
and a verdict (the statistics are in compare_stats.py).

It reads `genai_calls`, which holds every call whatever the sampling rate, through a `run_raw(sql, format)`
callable (the collector's query endpoint or the store itself), in one query (schemas/queries/compare_calls.sql):
each group's calls and errors counted exactly, and per-call values of at most MAX_CALLS_PER_GROUP calls per
group (beyond that a uniform sample: the calls with the smallest hash of their span id).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spanhouse.collector.query import compare_stats as stats
from spanhouse.collector.query.queries import render
from spanhouse.collector.query.render import format_float, format_table
from spanhouse.collector.query.reports import ReportError

RunRaw = Callable[[str, str], bytes]

# --by -> the genai_calls column calls are grouped by.
BY_COLUMNS = {
    "service.version": "ServiceVersion",
    "deployment.environment": "DeploymentEnvironment",
    "tenant": "TenantId",
    "service": "ServiceName",
}
MAX_CALLS_PER_GROUP = 100_000


class NoCalls(RuntimeError):
    """A group has no calls in the range: nothing to compare (exit code 1)."""


@dataclass(frozen=True)
class Request:
    by: str
    a: str
    b: str
    since: dt.datetime
    until: dt.datetime
    model: str = ""
    operation: str = ""
    service: str = ""
    tenant: str = ""
    seed: int = 0

    def check(self) -> None:
        if self.by not in BY_COLUMNS:
            raise ReportError(f"--by: expected one of {', '.join(BY_COLUMNS)}, got {self.by!r}")
        if self.a == self.b:
            raise ReportError(f"A and B are the same {self.by} ({self.a!r}): name two different ones")
        if self.by == "service" and self.service:
            raise ReportError("--service filters on the service, which --by service compares: leave it out")
        if self.by == "tenant" and self.tenant:
            raise ReportError("--tenant filters on the tenant, which --by tenant compares: leave it out")
        if not 0 <= self.seed < 1 << 63:
            raise ReportError(f"--seed: expected a whole number from 0 to 2**63 - 1, got {self.seed}")

    def params(self) -> dict[str, Any]:
        return {"by": BY_COLUMNS[self.by], "a": self.a, "b": self.b, "since": self.since, "until": self.until,
                "model": self.model, "operation": self.operation, "service": self.service, "tenant": self.tenant}


@dataclass(frozen=True)
class Result:
    request: Request
    a: stats.Group
    b: stats.Group
    comparison: stats.Comparison


def _fetch(run_raw: RunRaw, request: Request) -> tuple[list[tuple[int, int]], list[dict[str, np.ndarray]]]:
    """(calls, errors) of A and B, counted over every call, and the per-call values fetched of each."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = ("duration_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd")
    types = {"in_b": pa.uint8(), **{name: pa.float64() for name in names}, "group_calls": pa.uint64(),
             "group_errors": pa.uint64()}
    raw = run_raw(render("compare_calls", **request.params(), max_calls=MAX_CALLS_PER_GROUP), "CSVWithNames")
    if not raw.strip():  # no rows and no header: neither group has calls
        raw = (",".join(types) + "\n").encode()
    table = pacsv.read_csv(io.BytesIO(raw), convert_options=pacsv.ConvertOptions(
        column_types=types, null_values=["\\N"], strings_can_be_null=False))
    in_b = table.column("in_b").to_numpy(zero_copy_only=False)
    columns = {name: table.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in names}
    group_calls = table.column("group_calls").to_numpy(zero_copy_only=False)
    group_errors = table.column("group_errors").to_numpy(zero_copy_only=False)
    counts, values = [], []
    for side in (0, 1):
        rows = in_b == side
        first = int(np.argmax(rows)) if rows.any() else None  # every row of a group carries its totals
        counts.append((0, 0) if first is None else (int(group_calls[first]), int(group_errors[first])))
        values.append({name: column[rows] for name, column in columns.items()})
    return counts, values


def _describe(request: Request, value: str) -> str:
    return f"{request.by} = {json.dumps(value, ensure_ascii=False)}"


def run(run_raw: RunRaw, request: Request) -> Result:
    """Both groups fetched and compared; NoCalls when either has no calls, ReportError for a bad option."""
    request.check()
    counts, fetched = _fetch(run_raw, request)
    missing = [_describe(request, value) for (calls, _), value in zip(counts, (request.a, request.b)) if not calls]
    if missing:
        window = f"from {request.since:%Y-%m-%d %H:%M:%S} to {request.until:%Y-%m-%d %H:%M:%S} UTC"
        raise NoCalls(f"no LLM calls with {' or with '.join(missing)} {window}{_filters(request)}: nothing to "
                      f"compare. `spanhouse usage --by service` shows what was received; versions and environments "
                      f"come from the resource attributes service.version and deployment.environment.name")
    groups = []
    for side in (0, 1):
        calls, errors = counts[side]
        values = fetched[side]
        groups.append(stats.Group(calls, errors, values["duration_ms"], values["ttft_ms"], values["input_tokens"],
                                  values["output_tokens"], values["cost_usd"]))
    return Result(request, groups[0], groups[1], stats.compare(groups[0], groups[1], seed=request.seed))


def _filters(request: Request) -> str:
    parts = [f"{name} {value!r}" for name, value in (("operation", request.operation), ("model", request.model),
                                                      ("service", request.service), ("tenant", request.tenant))
             if value]
    return f" ({', '.join(parts)})" if parts else ""


def _sample_note(result: Result) -> str:
    sampled = [(label, group) for label, group in (("A", result.a), ("B", result.b)) if group.fetched < group.calls]
    if not sampled:
        return ""
    parts = ", ".join(f"{group.fetched} of {group.calls} calls of {label}" for label, group in sampled)
    return (f"latency, TTFT, tokens and cost from a uniform sample of {parts} (the calls with the smallest "
            f"cityHash64(SpanId), at most {MAX_CALLS_PER_GROUP} per group); calls and error rate count every call")


def to_json(result: Result) -> dict[str, Any]:
    request, comparison = result.request, result.comparison

    def number(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else value

    return {
        "by": request.by, "a": request.a, "b": request.b,
        "since": request.since.isoformat(), "until": request.until.isoformat(),
        "filters": {"operation": request.operation, "model": request.model, "service": request.service,
                    "tenant": request.tenant},
        "groups": {label: {"calls": group.calls, "errors": group.errors, "calls_fetched": group.fetched}
                   for label, group in (("a", result.a), ("b", result.b))},
        "metrics": [{"metric": m.name, "unit": m.unit, "a": number(m.a), "b": number(m.b), "diff": number(m.diff),
                     "ratio": number(m.ratio), "ci_low": number(m.low), "ci_high": number(m.high),
                     "calls_a": m.n_a, "calls_b": m.n_b, "verdict": m.verdict, "note": m.note, "judged": m.judged}
                    for m in comparison.metrics],
        "verdict": comparison.verdict,
        "method": {"confidence": comparison.confidence, "family_confidence": comparison.family_confidence,
                   "judged_metrics": stats.JUDGED_METRICS, "error_rate": stats.ERROR_METHOD,
                   "other_metrics": stats.BOOTSTRAP_METHOD, "resamples": comparison.resamples,
                   "seed": comparison.seed, "min_calls": stats.MIN_CALLS, "sample": _sample_note(result)},
    }


def _value(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "ratio":  # error rates, shown in percent
        text = f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"
        return text.replace("+-", "-")
    text = format_float(value)
    return f"+{text}" if signed and value > 0 else text


def render_table(result: Result) -> str:
    request, comparison = result.request, result.comparison
    level = f"{comparison.confidence:.1%}"
    names = ["metric", f"A ({request.a})", f"B ({request.b})", "B - A", "B / A", f"{level} CI of B - A", "verdict"]
    rows: list[list[Any]] = [["calls", str(result.a.calls), str(result.b.calls), "", "", "", ""]]
    for m in comparison.metrics:
        unit = "" if m.unit in ("ratio", "tokens") else f" ({m.unit})"
        interval = "-" if m.low is None or m.high is None else \
            f"[{_value(m.low, m.unit, True)}, {_value(m.high, m.unit, True)}]"
        ratio = "-" if m.ratio is None else f"{m.ratio:.3f}"
        verdict = m.verdict if not m.note else f"{m.verdict} ({m.note.split(' (')[0]})"
        rows.append([m.name + unit, _value(m.a, m.unit), _value(m.b, m.unit), _value(m.diff, m.unit, True), ratio,
                     interval, verdict])
    heading = (f"{request.by}: A = {json.dumps(request.a, ensure_ascii=False)}, "
               f"B = {json.dumps(request.b, ensure_ascii=False)}, from {request.since:%Y-%m-%d %H:%M:%S} "
               f"to {request.until:%Y-%m-%d %H:%M:%S} UTC{_filters(request)}")
    table = format_table(names, rows).rsplit("\n", 1)[0]  # without the "(N rows)" line: the rows are fixed
    lines = [heading, "", table, ""]
    worse = [m.name for m in comparison.metrics if m.verdict == stats.WORSE]
    better = [m.name for m in comparison.metrics if m.verdict == stats.BETTER]
    if comparison.verdict == stats.WORSE:
        summary = f"B is worse than A: {', '.join(worse)}" + (f" (better: {', '.join(better)})" if better else "")
    elif comparison.verdict == stats.BETTER:
        summary = f"B is better than A: {', '.join(better)}, and worse on nothing"
    else:
        summary = "no evidence that B differs from A on errors, latency, time to first token or cost"
    lines.append(f"overall: {comparison.verdict.upper()} - {summary}")
    lines.append(f"method: {level} two-sided intervals of B - A, {comparison.family_confidence:.0%} for the whole "
                 f"comparison (Bonferroni over the {stats.JUDGED_METRICS} judged metrics).")
    lines.append(f"  error rate: {stats.ERROR_METHOD}; other metrics: {stats.BOOTSTRAP_METHOD}, "
                 f"seed {comparison.seed} (--seed).")
    lines.append("  worse/better: the interval excludes 0 (higher latency, TTFT, error rate or cost is worse; tokens "
                 f"are only higher/lower); a verdict needs {stats.MIN_CALLS} calls with a value per group (p95: 100).")
    lines.append("  tokens and cost are means over the calls that reported them.")
    note = _sample_note(result)
    if note:
        lines.append(f"sample: {note}")
    return "\n".join(lines)
