"""The query endpoint's configuration: where it listens (and TLS), the limits every read runs under, host access."""

from __future__ import annotations

from dataclasses import dataclass

from spanhouse.collector.listeners import check_tls
from spanhouse.collector.settings import ConfigError, check_endpoint


@dataclass
class QueryConfig:
    # ClickHouse-compatible HTTP endpoint for read-only SQL; "" disables. A non-loopback address needs API keys
    # (auth.keys), as the receivers do; then use TLS (below) or a TLS proxy in front.
    endpoint: str = "127.0.0.1:4319"
    # PEM files; with both set the endpoint speaks HTTPS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # With this set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca_file: str = ""
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
    # The web UI under /ui/ on this endpoint (docs/ui.md); false serves no UI path.
    ui: bool = True

    def validate(self) -> None:
        if not isinstance(self.ui, bool):
            raise ConfigError(f"query.ui: must be true or false, got {self.ui!r}")
        if self.endpoint:
            check_endpoint("query.endpoint", self.endpoint)
        check_tls("query", self)  # the receivers' rule: both PEM files or neither, and they must load
        for name in ("max_execution_s", "max_memory_mib", "max_result_rows", "max_result_mib",
                     "max_concurrent_per_caller", "max_concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"query.{name}: must be a number greater than 0, got {value!r}")
        if self.max_concurrent_per_caller > self.max_concurrent:
            raise ConfigError(f"query.max_concurrent_per_caller ({self.max_concurrent_per_caller}) must not be "
                              f"greater than query.max_concurrent ({self.max_concurrent})")
