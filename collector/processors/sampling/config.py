"""The sampler's configuration: rates, tail policies and the bounds on what it holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanhouse.collector.settings import ConfigError, require_positive


@dataclass
class AttributeRuleConfig:
    # Span attribute (or, if the span lacks it, resource attribute) to look at.
    key: str = ""
    # Keep the trace when the value equals one of these...
    values: list[str] = field(default_factory=list)
    # ...or when this regular expression matches somewhere in the value.
    pattern: str = ""


@dataclass
class SamplingConfig:
    # Probability of keeping a trace, 0..1; 1.0 keeps every trace (sampling off).
    rate: float = 1.0
    # Per-tenant and per-service rates; a service's rate wins over its tenant's.
    tenant_rates: dict[str, float] = field(default_factory=dict)
    service_rates: dict[str, float] = field(default_factory=dict)
    # Respect a client's W3C sampled flag and `ot=th:` threshold in tracestate.
    honor_client_decision: bool = True
    # Tail sampling: how long a trace is held when its root span does not arrive.
    decision_wait_s: float = 10.0
    # Tail policies, first match wins; all off by default.
    keep_errors: bool = False
    keep_duration_over_ms: float = 0.0
    keep_cost_over_usd: float | None = None
    keep_attributes: list[AttributeRuleConfig] = field(default_factory=list)
    rate_limit_traces_per_s: float = 0.0
    # Bounds on held spans; at a bound the oldest traces are decided early.
    max_traces_held: int = 50000
    max_spans_held: int = 100000
    # Decisions remembered so late spans of a trace follow them.
    decision_cache_s: float = 60.0
    decision_cache_max_traces: int = 200000

    def validate(self) -> None:
        import re

        rates = {"sampling.rate": self.rate}
        rates.update({f"sampling.tenant_rates.{k}": v for k, v in self.tenant_rates.items()})
        rates.update({f"sampling.service_rates.{k}": v for k, v in self.service_rates.items()})
        for key, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key}: a probability between 0 and 1, got {value}")
        positive: dict[str, float] = {
            "sampling.decision_wait_s": self.decision_wait_s,
            "sampling.max_traces_held": self.max_traces_held,
            "sampling.max_spans_held": self.max_spans_held,
            "sampling.decision_cache_s": self.decision_cache_s,
            "sampling.decision_cache_max_traces": self.decision_cache_max_traces,
        }
        require_positive(positive)
        not_negative = {
            "sampling.keep_duration_over_ms": self.keep_duration_over_ms,
            "sampling.rate_limit_traces_per_s": self.rate_limit_traces_per_s,
            "sampling.keep_cost_over_usd": self.keep_cost_over_usd or 0.0,
        }
        for key, value in not_negative.items():
            if value < 0:
                raise ConfigError(f"{key}: must be 0 (off) or more, got {value}")
        for i, rule in enumerate(self.keep_attributes):
            where = f"sampling.keep_attributes[{i}]"
            if not rule.key:
                raise ConfigError(f"{where}.key: name the attribute to match")
            if not rule.values and not rule.pattern:
                raise ConfigError(f"{where}: give `values` (exact matches) or `pattern` (a regular expression)")
            if rule.pattern:
                try:
                    re.compile(rule.pattern)
                except re.error as exc:
                    raise ConfigError(f"{where}.pattern: not a valid regular expression: {exc}") from None
