"""The `metrics` section: where Prometheus scrapes the collector, and the cap on labelled GenAI series."""

from __future__ import annotations

from dataclasses import dataclass

from spanhouse.collector.settings import ConfigError, check_endpoint

DEFAULT_MAX_SERIES = 2000
# Past this the collector's memory and every scrape grow with label values a client chose; a
# Prometheus server itself starts to suffer long before.
MAX_SERIES_LIMIT = 1_000_000


@dataclass
class MetricsConfig:
    # A listener of its own for GET /metrics, /health and /ready (HOST:PORT); "" serves them on the
    # query endpoint only.
    endpoint: str = ""
    # Distinct label sets of the spanhouse_genai_* metrics; past it, new label sets count under `other`.
    max_series: int = DEFAULT_MAX_SERIES

    def validate(self) -> None:
        if self.endpoint:
            check_endpoint("metrics.endpoint", self.endpoint)
        if isinstance(self.max_series, bool) or not isinstance(self.max_series, int) \
                or not 1 <= self.max_series <= MAX_SERIES_LIMIT:
            raise ConfigError(f"metrics.max_series: must be a whole number from 1 to {MAX_SERIES_LIMIT}, got "
                              f"{self.max_series!r} (label sets past it are counted under the value `other`)")
