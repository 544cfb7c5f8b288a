"""Collector configuration: one dataclass tree, loaded from YAML, overridden by environment.

Precedence: command-line flags > environment (`SPANHOUSE_<SECTION>__<KEY>`) >
the YAML file > defaults. Every option is documented in docs/configuration.md.
A bad value stops start-up with a ConfigError naming the key.

Each section's dataclass and checks live beside its component (receiver/config.py,
writer/config.py, auth.py, pricing/config.py, processors/*/config.py); this module
assembles the tree, loads it, and checks what spans sections.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanhouse.collector import auth
from spanhouse.collector.alerts.config import AlertsConfig, TraceBudget
from spanhouse.collector.auth import ApiKeyConfig, AuthConfig
from spanhouse.collector.metrics.config import MetricsConfig
from spanhouse.collector.pricing.config import PriceOverride, PricingConfig
from spanhouse.collector.processors.dedup import DedupConfig
from spanhouse.collector.processors.redaction.config import (
    DEFAULT_MASK_KEYS,
    RedactionConfig,
    RedactionRuleConfig,
)
from spanhouse.collector.processors.sampling.config import AttributeRuleConfig, SamplingConfig
from spanhouse.collector.query.config import QueryConfig
from spanhouse.collector.receiver.config import GrpcConfig, HttpConfig, ListenerConfig, ReceiverConfig
from spanhouse.collector.settings import ConfigError, apply
from spanhouse.collector.writer.config import SpoolConfig, WriterConfig

__all__ = [
    "DEFAULT_MASK_KEYS", "AlertsConfig", "ApiKeyConfig", "AttributeRuleConfig", "AuthConfig", "Config", "ConfigError",
    "DedupConfig", "GrpcConfig", "HttpConfig", "ListenerConfig", "MetricsConfig", "PriceOverride", "PricingConfig",
    "QueryConfig", "ReceiverConfig",
    "RedactionConfig", "RedactionRuleConfig", "RetentionConfig", "SamplingConfig", "SpoolConfig", "StoreConfig",
    "TraceBudget", "WriterConfig", "check_query_endpoint", "dead_letter_directory", "load", "spool_directory",
]

ENV_PREFIX = "SPANHOUSE_"


@dataclass
class StoreConfig:
    # chdb:///path (embedded, default) or http(s)://user:pass@host:8123/db
    url: str = "chdb://./spanhouse-data"
    # Name of a ClickHouse cluster (remote_servers) the schema is laid out on: Replicated local tables
    # plus Distributed tables (docs/cluster.md). "" = one server or the embedded store.
    cluster: str = ""


@dataclass
class RetentionConfig:
    # Days to keep rows; 0 keeps them forever.
    spans_days: int = 30
    genai_calls_days: int = 400
    rollups_days: int = 0
    alerts_days: int = 400
    # Content by reference (docs/security.md): after content_days, message content in `spans` is replaced by a
    # reference and kept in genai_content until content_archive_days after the span; 0 content_days = off.
    content_days: int = 7
    content_archive_days: int = 90
    # The log of reads of archived content (genai_content_access).
    content_access_days: int = 400

    def validate(self) -> None:
        for key in ("spans_days", "genai_calls_days", "rollups_days", "alerts_days", "content_days",
                    "content_archive_days", "content_access_days"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                zero = "never replace content" if key == "content_days" else "keep forever"
                raise ConfigError(f"retention.{key}: must be 0 ({zero}) or a number of days, got {value!r}")
        if self.content_days and self.content_archive_days and self.content_archive_days < self.content_days:
            raise ConfigError(
                f"retention.content_archive_days: {self.content_archive_days} is less than retention.content_days "
                f"({self.content_days}): archived content would expire before it is archived. Set it to at least "
                f"{self.content_days} (equal drops content at content_days), or 0 to keep archived content forever")


@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    writer: WriterConfig = field(default_factory=WriterConfig)
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log_level: str = "info"

    def validate(self) -> None:
        """Each section's own checks, then what spans sections (who may listen where)."""
        from spanhouse.collector.store import StoreError, StoreLocation

        try:
            StoreLocation.parse(self.store.url)
        except StoreError as exc:
            raise ConfigError(f"store.url: {exc}") from None
        self._validate_cluster()
        self.receiver.validate()
        self.query.validate()
        self.writer.validate()
        self.spool.validate()
        self.retention.validate()
        self.redaction.validate()
        self.sampling.validate()
        self.dedup.validate()
        self.pricing.validate()
        self.alerts.validate()
        self.metrics.validate()
        self._validate_access()
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level: must be one of debug, info, warning, error, got {self.log_level!r}")

    def _validate_cluster(self) -> None:
        from spanhouse.collector.store import StoreLocation
        from spanhouse.collector.store.cluster import check_cluster_name

        if not self.store.cluster:
            return
        try:
            check_cluster_name(self.store.cluster)
        except ValueError as exc:
            raise ConfigError(f"store.cluster: {exc}") from None
        if StoreLocation.parse(self.store.url).embedded:
            raise ConfigError(f"store.cluster: {self.store.cluster!r} needs a ClickHouse server store "
                              "(store.url: http(s)://user:pass@host:8123/db); the embedded store is one node, "
                              "remove store.cluster or point store.url at a node of the cluster")

    def _validate_access(self) -> None:
        auth.check_tenant("receiver.default_tenant", self.receiver.default_tenant)
        open_to_all = not auth.KeyRing.from_config(self.auth) and not self.auth.allow_unauthenticated
        # Listeners off loopback need keys (or the explicit risk): what each would give away, and what to do.
        listeners = [(f"receiver.{name}.endpoint", listener.endpoint, "listen on",
                      "anyone who can reach that address could write spans",
                      "auth.keys_file, see docs/security.md)", "(--allow-unauthenticated)")
                     for name, listener in self.receiver.listeners()]
        if self.metrics.endpoint:
            listeners.append(("metrics.endpoint", self.metrics.endpoint, "serve metrics on",
                              "the GenAI metrics name tenants, services and models and their spend",
                              "auth.keys_file; Prometheus then scrapes with an admin key, see docs/metrics.md)", ""))
        for option, endpoint, verb, risk, keys_hint, flag in listeners:
            if open_to_all and not auth.is_loopback(endpoint.rpartition(":")[0]):
                raise ConfigError(
                    f"{option}: refusing to {verb} {endpoint} without authentication: {risk}. Configure API "
                    f"keys (auth.keys or {keys_hint}, listen on 127.0.0.1, or accept the risk explicitly with "
                    f"auth.allow_unauthenticated: true{' ' + flag if flag else ''}")


def check_query_endpoint(config: Config) -> None:
    """Refuse a query endpoint that other machines could reach when no API keys are configured.

    Checked when the collector starts, not when a config loads: the read commands take query.endpoint as
    the address they call, and say themselves what they accept. Without keys every caller is an admin, so
    auth.allow_unauthenticated (which is about writes) does not lift this.
    """
    host = config.query.endpoint.rpartition(":")[0]
    if config.query.endpoint and not auth.is_loopback(host) and not auth.KeyRing.from_config(config.auth):
        raise ConfigError(
            f"query.endpoint: refusing to listen on {config.query.endpoint} without API keys: anyone who can reach "
            "that address could read every tenant's spans. Configure API keys (auth.keys or auth.keys_file, "
            "see docs/security.md) or listen on 127.0.0.1")


def spool_directory(config: Config) -> Path:
    """Where the spool lives: spool.directory, else beside the data in the embedded store's directory."""
    from spanhouse.collector.store import StoreLocation

    if config.spool.directory:
        return Path(config.spool.directory).expanduser().resolve()
    location = StoreLocation.parse(config.store.url)
    if location.path is not None:
        return location.path / "spool"
    return Path("spanhouse-spool").resolve()


def dead_letter_directory(config: Config) -> Path:
    """Where rows the store refuses for good are kept: writer.dead_letter_directory, else in the spool directory."""
    if config.writer.dead_letter_directory:
        return Path(config.writer.dead_letter_directory).expanduser().resolve()
    return spool_directory(config) / "dead-letter"


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    """SPANHOUSE_WRITER__MAX_WAIT_S=2 -> {"writer": {"max_wait_s": "2"}}."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name and name[len(ENV_PREFIX):].lower() != "log_level":
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: conflicts with another override")
        node[parts[-1]] = value
    return tree


def load(path: str | Path | None = None, environ: typing.Mapping[str, str] | None = None,
         overrides: dict[str, Any] | None = None) -> Config:
    """Defaults <- YAML file <- environment <- `overrides` (command-line flags), then validate."""
    config = Config()
    if path is not None:
        import yaml

        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file}: expected a mapping at the top level")
        apply(config, data, "")
    apply(config, _env_overrides(os.environ if environ is None else environ), "")
    if overrides:
        apply(config, overrides, "")
    config.validate()
    return config


