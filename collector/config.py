"""Collector configuration: one dataclass tree, loaded from YAML, overridden by environment.

Precedence: command-line flags > environment (`SPANHOUSE_<SECTION>__<KEY>`) >
the YAML file > defaults. Every option is documented in docs/configuration.md.
A bad value stops start-up with a ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "SPANHOUSE_"


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the key and the fix."""


@dataclass
class StoreConfig:
    # chdb:///path (embedded, default) or http(s)://user:pass@host:8123/db
    url: str = "chdb://./spanhouse-data"


@dataclass
class GrpcConfig:
    endpoint: str = "127.0.0.1:4317"
    max_recv_msg_size_mib: int = 64
    max_workers: int = 8
    # PEM files; with both set the receiver speaks TLS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # With this set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca_file: str = ""


@dataclass
class HttpConfig:
    # OTLP/HTTP (POST /v1/traces, protobuf or JSON); "" disables it.
    endpoint: str = "127.0.0.1:4318"
    # Larger request bodies (before or after gzip decompression) get 413.
    max_request_mib: int = 64
    # PEM files; with both set the receiver speaks HTTPS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # With this set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca_file: str = ""


@dataclass
class ReceiverConfig:
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    # Longer attribute values are truncated with a marker (reported in partial_success).
    max_attribute_value_length: int = 1 << 20
    # Tenant stamped on spans when no API key maps the caller to another one.
    default_tenant: str = "default"
    # Spans past this many in one request are refused (counted in partial_success); the rest are stored.
    max_spans_per_request: int = 100000
    # A span with more attributes than this is refused (counted in partial_success).
    max_attributes_per_span: int = 1024
    # Worker processes that receive on the gRPC port (SO_REUSEPORT), decode, normalize, redact and price;
    # 1: one process does everything. On N >= 4 cores, N - 1 (see docs/scaling.md).
    processes: int = 1


@dataclass
class ApiKeyConfig:
    tenant: str = ""
    # SHA-256 hex digest of the key (`spanhouse hash-key`); the key itself is never stored.
    key_sha256: str = ""
    # May query every tenant's rows through the query endpoint.
    admin: bool = False
    # A label for logs (which key was used), never the key.
    name: str = ""


@dataclass
class AuthConfig:
    # With any key configured, every OTLP call and query must present one (`authorization: Bearer <key>`).
    keys: list[ApiKeyConfig] = field(default_factory=list)
    # YAML file with more keys in the same shape, read at start-up.
    keys_file: str = ""
    # Accept unauthenticated writes on a non-loopback address (refused at start-up otherwise).
    allow_unauthenticated: bool = False


@dataclass
class WriterConfig:
    max_batch_rows: int = 20000
    max_wait_s: float = 1.0
    # Spans kept in memory until written; beyond it they wait only in the spool (or, without one,
    # the receiver answers UNAVAILABLE).
    max_pending_rows: int = 200000
    # A receiving call waits up to this long while 1.5 batches are already queued for the writer,
    # so clients send at the store's pace; 0 accepts at once (the queue then grows under overload).
    pace_wait_s: float = 2.0
    shutdown_timeout_s: float = 30.0
    # Backoff between insert attempts: doubles from retry_initial_s up to retry_max_s, with jitter.
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0


@dataclass
class SpoolConfig:
    # Append-only disk log of every acknowledged batch until the store has it (see docs/durability.md).
    enabled: bool = True
    # "" = a `spool` folder inside the embedded store's directory, or ./spanhouse-spool for a server URL.
    directory: str = ""
    # At this size new requests get UNAVAILABLE until the store catches up.
    max_size_mib: int = 1024
    # fsync every record before answering OK: survives power loss too, at a cost per request.
    fsync: bool = False


@dataclass
class QueryConfig:
    # Loopback HTTP endpoint for read-only SQL while the collector owns the embedded store; "" disables.
    endpoint: str = "127.0.0.1:4319"
    # Engine limits on every query of the endpoint and the read commands (see docs/security.md).
    max_execution_s: float = 30.0
    max_memory_mib: int = 1024
    max_result_rows: int = 1000000
    max_result_mib: int = 256
    # Queries under way at once: per caller (a key, or the keyless local caller) and in all; past that, HTTP 429.
    max_concurrent_per_caller: int = 2
    max_concurrent: int = 4
    # Let admin keys (and the keyless local caller) read host files, URLs and other servers. Off by default.
    allow_host_access: bool = False

    def validate(self) -> None:
        if self.endpoint:
            _check_endpoint("query.endpoint", self.endpoint)
        for name in ("max_execution_s", "max_memory_mib", "max_result_rows", "max_result_mib",
                     "max_concurrent_per_caller", "max_concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"query.{name}: must be a number greater than 0, got {value!r}")
        if self.max_concurrent_per_caller > self.max_concurrent:
            raise ConfigError(f"query.max_concurrent_per_caller ({self.max_concurrent_per_caller}) must not be "
                              f"greater than query.max_concurrent ({self.max_concurrent})")


@dataclass
class RetentionConfig:
    # Days to keep rows; 0 keeps them forever.
    spans_days: int = 30
    genai_calls_days: int = 400
    rollups_days: int = 0


@dataclass
class PriceOverride:
    # One price in USD per million tokens; see docs/pricing.md.
    provider: str = ""
    model: str = ""
    effective: str = ""
    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None
    source: str = ""


@dataclass
class PricingConfig:
    enabled: bool = True
    # Extra price file (same format as schemas/prices/prices.yaml), layered over the built-in table.
    price_file: str = ""
    overrides: list[PriceOverride] = field(default_factory=list)
    # Model name as spans report it (an Azure deployment, a gateway alias) -> the model to price it as.
    model_aliases: dict[str, str] = field(default_factory=dict)
    # Operations that are billed LLM calls; agent, workflow and tool spans are never priced.
    operations: list[str] = field(default_factory=lambda: ["chat", "text_completion", "generate_content",
                                                           "embeddings"])


@dataclass
class RedactionRuleConfig:
    # A user-defined detector: a Python regular expression; a group named `v`, if any, is the part replaced.
    name: str = ""
    pattern: str = ""
    # placeholder, hash or drop; "" uses redaction.action.
    action: str = ""
    # Text put in place of a match; "" means `<NAME>` in upper case.
    placeholder: str = ""
    # Count hits in credential_hits_total as well.
    credential: bool = False
    case_insensitive: bool = False


# Attribute keys whose values are always removed, whatever they hold.
DEFAULT_MASK_KEYS = [
    "*password*", "*passwd*", "*secret*", "*authorization*", "*api_key*", "*api-key*", "*apikey*",
    "*cookie*", "*access_token*", "*refresh_token*", "*id_token*", "*session_token*", "*private_key*",
]


@dataclass
class RedactionConfig:
    enabled: bool = True
    # Action for built-in detectors: placeholder (`<EMAIL>`), hash (keyed HMAC-SHA256) or drop (the attribute).
    action: str = "placeholder"
    # Per built-in detector action, e.g. {email: hash}.
    detector_actions: dict[str, str] = field(default_factory=dict)
    # Built-in detectors switched off, e.g. [ipv4, ipv6].
    disabled_detectors: list[str] = field(default_factory=list)
    rules: list[RedactionRuleConfig] = field(default_factory=list)
    # HMAC key for the hash action (at least 16 characters); required when any rule hashes.
    hash_key: str = ""
    # Non-empty: allow-list mode, span/event/link attributes whose key matches none of these globs are dropped.
    allow_keys: list[str] = field(default_factory=list)
    # Attributes whose key matches one of these globs are dropped.
    drop_keys: list[str] = field(default_factory=list)
    # Attributes whose key matches one of these globs have their value replaced.
    mask_keys: list[str] = field(default_factory=lambda: list(DEFAULT_MASK_KEYS))
    # What replaces the value of a mask_keys attribute: placeholder (`<REDACTED>`), hash or drop.
    mask_keys_action: str = "placeholder"
    # Values longer than this many UTF-8 bytes are cut, with a marker; 0 turns the cap off.
    max_value_bytes: int = 0

    def validate(self) -> None:
        import re

        from spanhouse.collector.processors.redaction.detectors import BUILTIN_NAMES
        from spanhouse.collector.processors.redaction.engine import ACTIONS, HASH

        def check_action(key: str, value: str) -> None:
            if value not in ACTIONS:
                raise ConfigError(f"{key}: must be one of {', '.join(ACTIONS)}, got {value!r}")

        check_action("redaction.action", self.action)
        check_action("redaction.mask_keys_action", self.mask_keys_action)
        hashing = [k for k, v in (("redaction.action", self.action),
                                  ("redaction.mask_keys_action", self.mask_keys_action)) if v == HASH]
        for name in self.disabled_detectors:
            if name not in BUILTIN_NAMES:
                raise ConfigError(f"redaction.disabled_detectors: unknown detector {name!r} "
                                  f"(known: {', '.join(BUILTIN_NAMES)})")
        for name, action in self.detector_actions.items():
            if name not in BUILTIN_NAMES:
                raise ConfigError(f"redaction.detector_actions.{name}: unknown detector "
                                  f"(known: {', '.join(BUILTIN_NAMES)})")
            check_action(f"redaction.detector_actions.{name}", action)
            if action == HASH:
                hashing.append(f"redaction.detector_actions.{name}")
        names = set(BUILTIN_NAMES)
        for i, rule in enumerate(self.rules):
            key = f"redaction.rules[{i}]"
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", rule.name):
                raise ConfigError(f"{key}.name: expected a name of lower-case letters, digits and _ "
                                  f"(for example employee_id), got {rule.name!r}")
            if rule.name in names:
                raise ConfigError(f"{key}.name: {rule.name!r} is already the name of another rule")
            names.add(rule.name)
            if not rule.pattern:
                raise ConfigError(f"{key}.pattern: must not be empty")
            try:
                compiled = re.compile(rule.pattern, re.I if rule.case_insensitive else 0)
            except re.error as exc:
                raise ConfigError(f"{key}.pattern: not a valid regular expression: {exc}") from None
            if compiled.fullmatch(""):
                raise ConfigError(f"{key}.pattern: matches the empty string, so it would match everywhere")
            if rule.action:
                check_action(f"{key}.action", rule.action)
            if (rule.action or self.action) == HASH:
                hashing.append(f"{key}.action")
        for list_key in ("allow_keys", "drop_keys", "mask_keys"):
            for glob in getattr(self, list_key):
                if not glob:
                    raise ConfigError(f"redaction.{list_key}: empty key pattern")
        if hashing and not self.hash_key:
            raise ConfigError(f"redaction.hash_key: required because {hashing[0]} is 'hash'; set it in the "
                              "config file or SPANHOUSE_REDACTION__HASH_KEY (at least 16 characters)")
        if hashing and len(self.hash_key) < 16:
            raise ConfigError("redaction.hash_key: must be at least 16 characters; a short key lets anyone "
                              "who sees a hash guess phone numbers and other short values")
        if self.max_value_bytes < 0:
            raise ConfigError(f"redaction.max_value_bytes: must be 0 (no cap) or a number of bytes, got "
                              f"{self.max_value_bytes}")
        if 0 < self.max_value_bytes < 16:
            raise ConfigError(f"redaction.max_value_bytes: must be at least 16 bytes, got {self.max_value_bytes}")


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
    log_level: str = "info"

    def validate(self) -> None:
        from spanhouse.collector.store import StoreError, StoreLocation

        try:
            StoreLocation.parse(self.store.url)
        except StoreError as exc:
            raise ConfigError(f"store.url: {exc}") from None
        _check_endpoint("receiver.grpc.endpoint", self.receiver.grpc.endpoint)
        if self.receiver.http.endpoint:
            _check_endpoint("receiver.http.endpoint", self.receiver.http.endpoint)
        self.query.validate()
        positive = {
            "receiver.grpc.max_recv_msg_size_mib": self.receiver.grpc.max_recv_msg_size_mib,
            "receiver.grpc.max_workers": self.receiver.grpc.max_workers,
            "receiver.http.max_request_mib": self.receiver.http.max_request_mib,
            "receiver.max_attribute_value_length": self.receiver.max_attribute_value_length,
            "receiver.max_spans_per_request": self.receiver.max_spans_per_request,
            "receiver.max_attributes_per_span": self.receiver.max_attributes_per_span,
            "writer.max_batch_rows": self.writer.max_batch_rows,
            "writer.max_wait_s": self.writer.max_wait_s,
            "writer.max_pending_rows": self.writer.max_pending_rows,
            "writer.shutdown_timeout_s": self.writer.shutdown_timeout_s,
            "writer.retry_initial_s": self.writer.retry_initial_s,
            "writer.retry_max_s": self.writer.retry_max_s,
            "spool.max_size_mib": self.spool.max_size_mib,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{key}: must be greater than 0, got {value}")
        if self.writer.max_pending_rows < self.writer.max_batch_rows:
            raise ConfigError(
                f"writer.max_pending_rows ({self.writer.max_pending_rows}) must be at least "
                f"writer.max_batch_rows ({self.writer.max_batch_rows})"
            )
        if self.writer.retry_max_s < self.writer.retry_initial_s:
            raise ConfigError(f"writer.retry_max_s ({self.writer.retry_max_s}) must be at least "
                              f"writer.retry_initial_s ({self.writer.retry_initial_s})")
        if not 0 <= self.writer.pace_wait_s <= 10:
            raise ConfigError(f"writer.pace_wait_s: must be between 0 (no pacing) and 10 seconds "
                              f"(OTLP exporters give up on a call after 10 s by default), "
                              f"got {self.writer.pace_wait_s}")
        for key in ("spans_days", "genai_calls_days", "rollups_days"):
            if getattr(self.retention, key) < 0:
                raise ConfigError(f"retention.{key}: must be 0 (keep forever) or a number of days, got "
                                  f"{getattr(self.retention, key)}")
        _check_processes(self.receiver.processes)
        self.redaction.validate()
        _check_sampling(self.sampling)
        if not self.receiver.default_tenant:
            raise ConfigError("receiver.default_tenant: must not be empty")
        self._validate_pricing()
        self._validate_access()
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level: must be one of debug, info, warning, error, got {self.log_level!r}")

    def _validate_pricing(self) -> None:
        from spanhouse.collector.pricing import PriceTableError, build_price_table

        if not self.pricing.enabled:
            return
        agents = sorted(set(self.pricing.operations) & {"invoke_agent", "create_agent", "execute_tool"})
        if agents:
            raise ConfigError(f"pricing.operations: {agents[0]!r} spans repeat or carry no LLM usage and are "
                              "never priced (a trace's cost is the sum over its LLM calls)")
        try:
            build_price_table(self.pricing)
        except PriceTableError as exc:
            raise ConfigError(str(exc)) from None

    def _validate_access(self) -> None:
        from spanhouse.collector import auth

        auth.check_tenant("receiver.default_tenant", self.receiver.default_tenant)
        keys = auth.KeyRing.from_config(self.auth)
        listeners = [("grpc", self.receiver.grpc)]
        if self.receiver.http.endpoint:
            listeners.append(("http", self.receiver.http))
        for name, listener in listeners:
            host = listener.endpoint.rpartition(":")[0]
            if not keys and not self.auth.allow_unauthenticated and not auth.is_loopback(host):
                raise ConfigError(
                    f"receiver.{name}.endpoint: refusing to listen on {listener.endpoint} without authentication: "
                    "anyone who can reach that address could write spans. Configure API keys (auth.keys or "
                    "auth.keys_file, see docs/security.md), listen on 127.0.0.1, or accept the risk explicitly "
                    "with auth.allow_unauthenticated: true (--allow-unauthenticated)")
            _check_tls(f"receiver.{name}", listener)


def _check_tls(section: str, listener: GrpcConfig | HttpConfig) -> None:
    if bool(listener.tls_cert_file) != bool(listener.tls_key_file):
        missing = "tls_key_file" if listener.tls_cert_file else "tls_cert_file"
        raise ConfigError(f"{section}.{missing}: TLS needs both tls_cert_file and tls_key_file")
    if listener.tls_client_ca_file and not listener.tls_cert_file:
        raise ConfigError(f"{section}.tls_client_ca_file: client certificates need TLS: "
                          "also set tls_cert_file and tls_key_file")
    if listener.tls_cert_file:
        _check_tls_files(section, listener)


def _check_tls_files(section: str, listener: GrpcConfig | HttpConfig) -> None:
    """Load the PEM files as TLS would, so a bad file stops start-up naming the key."""
    import ssl

    for key in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        path = getattr(listener, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"{section}.{key}: no such file {path!r}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(listener.tls_cert_file, listener.tls_key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{section}.tls_cert_file/tls_key_file: cannot load the certificate and key "
                          f"({listener.tls_cert_file}, {listener.tls_key_file}): expected PEM files where the key "
                          f"belongs to the certificate ({exc})") from None
    if listener.tls_client_ca_file:
        try:
            context.load_verify_locations(cafile=listener.tls_client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{section}.tls_client_ca_file: cannot load CA certificates from "
                              f"{listener.tls_client_ca_file} ({exc})") from None


def spool_directory(config: Config) -> Path:
    """Where the spool lives: spool.directory, else beside the data in the embedded store's directory."""
    from spanhouse.collector.store import StoreLocation

    if config.spool.directory:
        return Path(config.spool.directory).expanduser().resolve()
    location = StoreLocation.parse(config.store.url)
    if location.path is not None:
        return location.path / "spool"
    return Path("spanhouse-spool").resolve()


MAX_PROCESSES = 64


def _check_processes(processes: int) -> None:
    import socket
    import sys

    if not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"receiver.processes: must be between 1 and {MAX_PROCESSES} (one per CPU core is "
                          f"right; this machine has {os.cpu_count()}), got {processes}")
    if processes > 1 and (not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT")):
        raise ConfigError("receiver.processes: more than 1 needs Linux (worker processes share the gRPC port "
                          f"with SO_REUSEPORT); this is {sys.platform}. Run one collector per port instead")


def _check_sampling(s: SamplingConfig) -> None:
    import re

    rates = {"sampling.rate": s.rate}
    rates.update({f"sampling.tenant_rates.{k}": v for k, v in s.tenant_rates.items()})
    rates.update({f"sampling.service_rates.{k}": v for k, v in s.service_rates.items()})
    for key, value in rates.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: a probability between 0 and 1, got {value}")
    positive = {
        "sampling.decision_wait_s": s.decision_wait_s,
        "sampling.max_traces_held": s.max_traces_held,
        "sampling.max_spans_held": s.max_spans_held,
        "sampling.decision_cache_s": s.decision_cache_s,
        "sampling.decision_cache_max_traces": s.decision_cache_max_traces,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value}")
    not_negative = {
        "sampling.keep_duration_over_ms": s.keep_duration_over_ms,
        "sampling.rate_limit_traces_per_s": s.rate_limit_traces_per_s,
        "sampling.keep_cost_over_usd": s.keep_cost_over_usd or 0.0,
    }
    for key, value in not_negative.items():
        if value < 0:
            raise ConfigError(f"{key}: must be 0 (off) or more, got {value}")
    for i, rule in enumerate(s.keep_attributes):
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


def _check_endpoint(key: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: expected HOST:PORT (for example 127.0.0.1:4317), got {value!r}")


def _coerce(key: str, raw: Any, kind: Any) -> Any:
    """Convert a YAML or environment value to the field's type, or say what is wrong.

    Besides str/int/float/bool: `list[X]`, `dict[str, X]` and `X | None`, where X
    is one of those or a config dataclass (built from a mapping, validated the same way).
    """
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if raw is None and len(options) < len(typing.get_args(kind)):
            return None
        return _coerce(key, raw, options[0])
    if origin is list:
        (item,) = typing.get_args(kind)
        if isinstance(raw, str) and not dataclasses.is_dataclass(item):
            raw = [part.strip() for part in raw.split(",") if part.strip()]  # environment: comma-separated
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected a list, got {raw!r}")
        return [_coerce(f"{key}[{i}]", value, item) for i, value in enumerate(raw)]
    if origin is dict:
        _, item = typing.get_args(kind)
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}: expected a mapping, got {raw!r}")
        return {str(k): _coerce(f"{key}.{k}", value, item) for k, value in raw.items()}
    if dataclasses.is_dataclass(kind):
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}: expected a mapping of options, got {raw!r}")
        built = kind()
        _apply(built, raw, f"{key}.")
        return built
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
    elif kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            return str(raw)
        if isinstance(raw, datetime.date):  # YAML reads an unquoted 2025-01-31 as a date
            return raw.isoformat()
    raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {raw!r}")


def _apply(target: Any, data: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(target))
    names = [f.name for f in dataclasses.fields(target)]
    for key, raw in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known keys: {', '.join(names)})"
            raise ConfigError(f"{path}: unknown option{hint}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of options, got {raw!r}")
            _apply(getattr(target, key), raw, f"{path}.")
        else:
            setattr(target, key, _coerce(path, raw, kind))


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
        _apply(config, data, "")
    _apply(config, _env_overrides(os.environ if environ is None else environ), "")
    if overrides:
        _apply(config, overrides, "")
    config.validate()
    return config


def to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)

