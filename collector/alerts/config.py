"""The `alerts` section: how often rules run, where notifications go, and each built-in rule's options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from spanhouse.collector.settings import ConfigError, require_positive

WEBHOOK_FORMATS = ("alertmanager", "slack")


@dataclass
class CostSpikeConfig:
    enabled: bool = True
    # The last hour's cost must exceed `factor` x the hourly average of the `baseline_hours` before it...
    factor: float = 2.0
    baseline_hours: int = 24
    # ...and reach this many USD, so a quiet service going from 1 cent to 3 cents does not page anyone.
    min_cost_usd: float = 1.0


@dataclass
class ErrorSpikeConfig:
    enabled: bool = True
    # The error rate of the last `window_s` must exceed `factor` x the rate of the `baseline_hours` before it...
    factor: float = 3.0
    window_s: float = 900.0
    baseline_hours: int = 24
    # ...over at least this many calls, and reach this rate (a baseline of 0 errors makes any error a spike).
    min_calls: int = 20
    min_error_rate: float = 0.05


@dataclass
class SecretDetectedConfig:
    enabled: bool = True
    # The alert stays firing this long after its last hit, then resolves.
    hold_s: float = 3600.0


@dataclass
class TraceBudget:
    # Which traces the budget is for: those with a GenAI span of this service, or of this agent
    # (gen_ai.agent.name); both empty: every trace.
    service: str = ""
    agent: str = ""
    # 0 = no limit of that kind.
    max_duration_s: float = 0.0
    max_cost_usd: float = 0.0


@dataclass
class TraceBudgetConfig:
    enabled: bool = True
    budgets: list[TraceBudget] = field(default_factory=list)
    # Traces whose last GenAI span ended within this many seconds are checked at each evaluation.
    lookback_s: float = 900.0


@dataclass
class PipelineAlertConfig:
    enabled: bool = True
    # The spool's size as a percentage of spool.max_size_mib above which the alert fires.
    spool_high_water_pct: float = 80.0
    # Any dead-lettered span fires the alert; it resolves after this long without a new one.
    dead_letter_hold_s: float = 3600.0
    # Inserts that have failed, with no insert succeeding, for at least this long.
    insert_failing_s: float = 60.0


@dataclass
class AlertsConfig:
    enabled: bool = True
    # Rules over the stored rows and the collector's counters run this often; secret hits are handled at once.
    interval_s: float = 60.0
    # A firing alert is sent again after this long (Alertmanager's repeat_interval).
    repeat_interval_s: float = 14400.0
    # Where notifications are POSTed ("" = record and log only), and in which shape.
    webhook_url: str = ""
    webhook_format: str = "alertmanager"
    webhook_timeout_s: float = 10.0
    # Delivery retries: backoff doubles from retry_initial_s up to retry_max_s (jittered), at most max_attempts tries.
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    max_attempts: int = 8
    # Notifications waiting for delivery; past this the oldest is dropped (counted), never ingestion slowed.
    queue_size: int = 1000
    # The `receiver` field of the Alertmanager payload, and the base of each alert's generatorURL.
    receiver: str = "spanhouse"
    external_url: str = ""
    cost_spike: CostSpikeConfig = field(default_factory=CostSpikeConfig)
    error_spike: ErrorSpikeConfig = field(default_factory=ErrorSpikeConfig)
    secret_detected: SecretDetectedConfig = field(default_factory=SecretDetectedConfig)
    trace_budget: TraceBudgetConfig = field(default_factory=TraceBudgetConfig)
    pipeline: PipelineAlertConfig = field(default_factory=PipelineAlertConfig)

    def validate(self) -> None:
        require_positive({
            "alerts.interval_s": self.interval_s,
            "alerts.repeat_interval_s": self.repeat_interval_s,
            "alerts.webhook_timeout_s": self.webhook_timeout_s,
            "alerts.retry_initial_s": self.retry_initial_s,
            "alerts.retry_max_s": self.retry_max_s,
            "alerts.max_attempts": self.max_attempts,
            "alerts.queue_size": self.queue_size,
            "alerts.cost_spike.factor": self.cost_spike.factor,
            "alerts.cost_spike.baseline_hours": self.cost_spike.baseline_hours,
            "alerts.error_spike.factor": self.error_spike.factor,
            "alerts.error_spike.window_s": self.error_spike.window_s,
            "alerts.error_spike.baseline_hours": self.error_spike.baseline_hours,
            "alerts.error_spike.min_calls": self.error_spike.min_calls,
            "alerts.secret_detected.hold_s": self.secret_detected.hold_s,
            "alerts.trace_budget.lookback_s": self.trace_budget.lookback_s,
            "alerts.pipeline.dead_letter_hold_s": self.pipeline.dead_letter_hold_s,
            "alerts.pipeline.insert_failing_s": self.pipeline.insert_failing_s,
        })
        for key, value in (("alerts.interval_s", self.interval_s), ("alerts.repeat_interval_s", self.repeat_interval_s),
                           ("alerts.cost_spike.min_cost_usd", self.cost_spike.min_cost_usd)):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value}")
        if self.cost_spike.min_cost_usd < 0:
            raise ConfigError(f"alerts.cost_spike.min_cost_usd: must not be negative, got "
                              f"{self.cost_spike.min_cost_usd}")
        if not 0 <= self.error_spike.min_error_rate <= 1:
            raise ConfigError(f"alerts.error_spike.min_error_rate: a fraction of calls between 0 and 1, got "
                              f"{self.error_spike.min_error_rate}")
        if self.error_spike.window_s >= self.error_spike.baseline_hours * 3600:
            raise ConfigError(f"alerts.error_spike.window_s ({self.error_spike.window_s:g}) must be shorter than "
                              f"alerts.error_spike.baseline_hours ({self.error_spike.baseline_hours} h)")
        if not 0 < self.pipeline.spool_high_water_pct <= 100:
            raise ConfigError(f"alerts.pipeline.spool_high_water_pct: a percentage above 0 and at most 100, got "
                              f"{self.pipeline.spool_high_water_pct}")
        if self.retry_max_s < self.retry_initial_s:
            raise ConfigError(f"alerts.retry_max_s ({self.retry_max_s:g}) must not be less than "
                              f"alerts.retry_initial_s ({self.retry_initial_s:g})")
        if self.webhook_format not in WEBHOOK_FORMATS:
            raise ConfigError(f"alerts.webhook_format: expected one of {', '.join(WEBHOOK_FORMATS)}, got "
                              f"{self.webhook_format!r}")
        for key, url in (("alerts.webhook_url", self.webhook_url), ("alerts.external_url", self.external_url)):
            if url:
                check_url(key, url)
        if not self.receiver:
            raise ConfigError("alerts.receiver: must not be empty (it names this sender in Alertmanager payloads)")
        for i, budget in enumerate(self.trace_budget.budgets):
            key = f"alerts.trace_budget.budgets[{i}]"
            if budget.service and budget.agent:
                raise ConfigError(f"{key}: give service or agent, not both (add one budget for each)")
            if budget.max_duration_s < 0 or budget.max_cost_usd < 0:
                raise ConfigError(f"{key}: max_duration_s and max_cost_usd must not be negative")
            if budget.max_duration_s == 0 and budget.max_cost_usd == 0:
                raise ConfigError(f"{key}: set max_duration_s or max_cost_usd (or both); 0 means no limit")
            if not all(math.isfinite(v) for v in (budget.max_duration_s, budget.max_cost_usd)):
                raise ConfigError(f"{key}: limits must be finite numbers")


def check_url(key: str, url: str) -> None:
    """An http(s) URL with a host, or a ConfigError naming `key` and what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{key}: not a valid URL ({exc}): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http:// or https:// URL with a host, for example "
                          f"https://alertmanager.example:9093/api/v2/alerts or a Slack incoming-webhook URL, "
                          f"got {url!r}")
