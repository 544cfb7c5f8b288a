"""The built-in alert rules: pure functions from stored rows, counters or secret hits to active alerts.

Each periodic rule takes `now` (Unix seconds) and a `run_sql(sql, params)` callable over the store
(parameters are always bound, never pasted into SQL), and returns the alerts active at `now`. The
engine (engine.py) turns those into state changes, notifications and history rows. Labels identify
an alert (its fingerprint is computed from them); annotations describe it and may change while it fires.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spanhouse.collector.alerts.config import AlertsConfig, TraceBudget
from spanhouse.collector.store import split_statements, sql_file

RunSql = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

COST_SPIKE, ERROR_SPIKE, SECRET_DETECTED, TRACE_BUDGET, PIPELINE = (
    "cost_spike", "error_spike", "secret_detected", "trace_budget", "pipeline")
RULES = (COST_SPIKE, ERROR_SPIKE, SECRET_DETECTED, TRACE_BUDGET, PIPELINE)
SEVERITY = {COST_SPIKE: "warning", ERROR_SPIKE: "warning", SECRET_DETECTED: "critical", TRACE_BUDGET: "warning",
            PIPELINE: "critical"}
# Label and annotation values are capped: a hostile service or span name must not make a payload huge.
MAX_VALUE_CHARS = 256


@dataclass(frozen=True)
class Active:
    """An alert a rule finds active now."""

    rule: str
    tenant: str  # '' for collector-wide alerts
    labels: dict[str, str]  # without alertname, severity and tenant: those are added by `full_labels`
    summary: str
    annotations: dict[str, str] = field(default_factory=dict)

    def full_labels(self) -> dict[str, str]:
        out = {"alertname": self.rule, "severity": SEVERITY[self.rule]}
        if self.tenant:
            out["tenant"] = self.tenant
        out.update(self.labels)
        return {k: cap(v) for k, v in out.items()}

    def full_annotations(self) -> dict[str, str]:
        return {"summary": cap(self.summary, 1024), **{k: cap(v) for k, v in self.annotations.items()}}


def cap(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits identifying an alert by its labels (the same labels give the same fingerprint)."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _query(name: str) -> str:
    return split_statements(sql_file(f"alerts/{name}.sql"))[0]


def _minute(now: float) -> int:
    return int(now) // 60 * 60


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _usage_windows(run_sql: RunSql, now: float, window_s: float, baseline_hours: int) -> list[tuple[Any, ...]]:
    """Rows (tenant, service, recent cost/calls/errors, baseline cost/calls/errors) from the 1-minute rollup.

    The recent window is the whole minutes ending with the current one; the baseline the
    `baseline_hours` before it. Rows stamped after `now` (clock skew) are left out.
    """
    end = _minute(now) + 60
    recent_start = end - max(60, int(window_s) // 60 * 60)
    baseline_start = recent_start - baseline_hours * 3600
    return run_sql(_query("usage_windows"), {"recent_start_s": recent_start, "baseline_start_s": baseline_start,
                                              "end_s": end})


def _per_tenant(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The per-service rows summed per tenant, with service None."""
    totals: dict[str, list[float]] = {}
    for tenant, _service, *values in rows:
        acc = totals.setdefault(tenant, [0.0] * len(values))
        for i, value in enumerate(values):
            acc[i] += float(value or 0)
    return [(tenant, None, *values) for tenant, values in sorted(totals.items())]


def cost_spike(run_sql: RunSql, config: AlertsConfig, now: float) -> list[Active]:
    """Last hour's cost over `factor` x the hourly average of the baseline, per tenant and per service."""
    opts = config.cost_spike
    rows = _usage_windows(run_sql, now, 3600, opts.baseline_hours)
    out = []
    for tenant, service, recent, _c, _e, baseline, _bc, _be in [*rows, *_per_tenant(rows)]:
        recent, hourly = float(recent or 0), float(baseline or 0) / opts.baseline_hours
        if recent < opts.min_cost_usd or recent <= opts.factor * hourly:
            continue
        scope = {"scope": "tenant"} if service is None else {"scope": "service", "service": service}
        ratio = f"{recent / hourly:.1f}x" if hourly > 0 else "up from nothing"
        where = f"tenant {tenant}" if service is None else f"service {service} (tenant {tenant})"
        out.append(Active(COST_SPIKE, tenant, scope,
                          f"GenAI cost of {where} in the last hour is {_usd(recent)}, {ratio} its hourly average "
                          f"of {_usd(hourly)} over the {opts.baseline_hours} h before",
                          {"cost_last_hour_usd": f"{recent:.6f}", "baseline_hourly_usd": f"{hourly:.6f}",
                           "factor": f"{opts.factor:g}"}))
    return out


def error_spike(run_sql: RunSql, config: AlertsConfig, now: float) -> list[Active]:
    """The recent error rate over `factor` x the baseline's rate, per tenant and per service."""
    opts = config.error_spike
    rows = _usage_windows(run_sql, now, opts.window_s, opts.baseline_hours)
    out = []
    for tenant, service, _cost, calls, errors, _b, base_calls, base_errors in [*rows, *_per_tenant(rows)]:
        calls, errors, base_calls, base_errors = (float(v or 0) for v in (calls, errors, base_calls, base_errors))
        if calls < opts.min_calls or calls == 0:
            continue
        rate = errors / calls
        base_rate = base_errors / base_calls if base_calls else 0.0
        if rate < opts.min_error_rate or rate <= opts.factor * base_rate:
            continue
        scope = {"scope": "tenant"} if service is None else {"scope": "service", "service": service}
        where = f"tenant {tenant}" if service is None else f"service {service} (tenant {tenant})"
        minutes = max(1, int(opts.window_s) // 60)
        out.append(Active(ERROR_SPIKE, tenant, scope,
                          f"{rate:.1%} of GenAI calls of {where} failed in the last {minutes} min "
                          f"({int(errors)} of {int(calls)}), against {base_rate:.1%} over the "
                          f"{opts.baseline_hours} h before",
                          {"error_rate": f"{rate:.4f}", "baseline_error_rate": f"{base_rate:.4f}",
                           "calls": str(int(calls)), "errors": str(int(errors)), "factor": f"{opts.factor:g}"}))
    return out


def _budget_labels(budget: TraceBudget) -> dict[str, str]:
    if budget.service:
        return {"service": budget.service}
    if budget.agent:
        return {"agent": budget.agent}
    return {}


def trace_budget(run_sql: RunSql, config: AlertsConfig, now: float) -> list[Active]:
    """Per budget, tenant and kind (duration, cost): the worst trace of the lookback window over the limit."""
    opts = config.trace_budget
    if not opts.budgets:
        return []
    limits_d = [b.max_duration_s for b in opts.budgets if b.max_duration_s > 0]
    limits_c = [b.max_cost_usd for b in opts.budgets if b.max_cost_usd > 0]
    rows = run_sql(_query("recent_traces"), {
        "since_ms": int((now - opts.lookback_s) * 1000), "until_ms": int(now * 1000) + 1,
        "min_duration_s": min(limits_d) if limits_d else float("inf"),
        "min_cost_usd": min(limits_c) if limits_c else float("inf")})
    worst: dict[tuple[int, str, str], tuple[float, str, int]] = {}
    for tenant, trace_id, duration_s, cost_usd, services, agents in rows:
        for i, budget in enumerate(opts.budgets):
            if budget.service and budget.service not in services or budget.agent and budget.agent not in agents:
                continue
            for kind, value, limit in (("duration", float(duration_s), budget.max_duration_s),
                                       ("cost", float(cost_usd or 0), budget.max_cost_usd)):
                if limit > 0 and value > limit:
                    key = (i, tenant, kind)
                    best, _, count = worst.get(key, (-1.0, "", 0))
                    worst[key] = (value, trace_id, count + 1) if value > best else (best, worst[key][1], count + 1)
    out = []
    for (i, tenant, kind), (value, trace_id, count) in sorted(worst.items()):
        budget = opts.budgets[i]
        labels = {**_budget_labels(budget), "budget": kind}
        whose = ", ".join(f"{k} {v}" for k, v in _budget_labels(budget).items()) or "all traces"
        if kind == "duration":
            shown, limit = f"{value:.1f} s", f"{budget.max_duration_s:g} s"
        else:
            shown, limit = _usd(value), _usd(budget.max_cost_usd)
        out.append(Active(TRACE_BUDGET, tenant, labels,
                          f"trace {trace_id} ({whose}, tenant {tenant}) took {shown}, over its {kind} budget of {limit}"
                          + (f"; {count} traces over it in the last {opts.lookback_s:g} s" if count > 1 else ""),
                          {"trace_id": trace_id, "value": f"{value:.6g}", "limit": limit, "traces_over": str(count)}))
    return out


@dataclass(frozen=True)
class SecretHit:
    """A span the redact processor stamped with a credential-class rule: names only, never the value."""

    tenant: str
    service: str
    trace_id: str
    span_id: str
    span_name: str
    rules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "service": self.service, "trace_id": self.trace_id, "span_id": self.span_id,
                "span_name": self.span_name, "rules": list(self.rules)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SecretHit:
        return cls(str(doc["tenant"]), str(doc["service"]), str(doc["trace_id"]), str(doc["span_id"]),
                   str(doc["span_name"]), tuple(str(r) for r in doc["rules"]))


def secret_detected(hit: SecretHit, rule: str) -> Active:
    return Active(SECRET_DETECTED, hit.tenant, {"service": hit.service, "rule": rule},
                  f"a {rule} credential was found and redacted in a span of service {hit.service} "
                  f"(tenant {hit.tenant}), trace {hit.trace_id}",
                  {"trace_id": hit.trace_id, "span_id": hit.span_id, "span_name": hit.span_name})


class PipelineWatch:
    """The pipeline rule over the collector's counters; remembers what it needs between evaluations."""

    def __init__(self, config: AlertsConfig, spool_capacity_bytes: int | None) -> None:
        self.config = config
        self.spool_capacity_bytes = spool_capacity_bytes
        self._dead_lettered: int | None = None
        self._last_dead_letter_at: float | None = None
        self._dead_letter_count = 0
        self._written: int | None = None
        self._errors: int | None = None
        self._failing_since: float | None = None

    def evaluate(self, counters: dict[str, int], now: float) -> list[Active]:
        opts = self.config.pipeline
        out = []
        spool = counters.get("writer_spool_bytes")
        if self.spool_capacity_bytes and spool is not None:
            pct = 100.0 * spool / self.spool_capacity_bytes
            if pct > opts.spool_high_water_pct:
                out.append(Active(PIPELINE, "", {"problem": "spool_high_water"},
                                  f"the spool holds {spool / 1048576:.1f} MiB, {pct:.0f}% of spool.max_size_mib: the "
                                  f"store is not keeping up or not reachable; at 100% new spans are refused",
                                  {"spool_bytes": str(spool), "spool_pct": f"{pct:.1f}"}))
        dead = counters.get("writer_spans_dead_lettered_total", 0)
        if self._dead_lettered is not None and dead > self._dead_lettered:
            self._last_dead_letter_at = now
            self._dead_letter_count += dead - self._dead_lettered
        self._dead_lettered = dead
        if self._last_dead_letter_at is not None and now - self._last_dead_letter_at < opts.dead_letter_hold_s:
            out.append(Active(PIPELINE, "", {"problem": "dead_letters"},
                              f"{self._dead_letter_count} spans were refused for good by the store and dead-lettered; "
                              f"see `spanhouse dead-letters`",
                              {"spans_dead_lettered": str(self._dead_letter_count)}))
        else:
            self._dead_letter_count = 0
        written, errors = counters.get("writer_spans_written_total", 0), counters.get("writer_write_errors_total", 0)
        if self._written is not None and self._errors is not None:
            if written > self._written:
                self._failing_since = None
            elif errors > self._errors and self._failing_since is None:
                self._failing_since = now
        self._written, self._errors = written, errors
        if self._failing_since is not None and now - self._failing_since >= opts.insert_failing_s:
            out.append(Active(PIPELINE, "", {"problem": "inserts_failing"},
                              f"inserts into the store have failed for {now - self._failing_since:.0f} s with none "
                              f"succeeding; accepted spans wait in the spool",
                              {"failing_for_s": f"{now - self._failing_since:.0f}"}))
        return out
