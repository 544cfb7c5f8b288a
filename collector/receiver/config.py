"""The receivers' configuration: one listener shape (address and TLS) for gRPC and HTTP, and the request limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from spanhouse.collector.listeners import check_tls
from spanhouse.collector.settings import ConfigError, check_endpoint, require_positive


@dataclass
class ListenerConfig:
    """An address to listen on, and TLS for it."""

    endpoint: str = ""
    # PEM files; with both set the listener speaks TLS only.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # With this set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca_file: str = ""

    def validate(self, section: str) -> None:
        if self.endpoint:
            check_endpoint(f"{section}.endpoint", self.endpoint)
        check_tls(section, self)


@dataclass
class GrpcConfig(ListenerConfig):
    endpoint: str = "127.0.0.1:4317"
    max_recv_msg_size_mib: int = 64
    max_workers: int = 8


@dataclass
class HttpConfig(ListenerConfig):
    # OTLP/HTTP (POST /v1/traces, protobuf or JSON); "" disables it.
    endpoint: str = "127.0.0.1:4318"
    # Larger request bodies (before or after gzip decompression) get 413.
    max_request_mib: int = 64


# receiver.native_decode: "auto" decodes with the C extension when it is installed, "off" in pure Python only.
NATIVE_DECODE_MODES = ("auto", "off")


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
    # A span starting or ending more than this far ahead of the collector's clock is refused (clock skew).
    max_future_skew_s: float = 86400.0
    # Worker processes that receive on the gRPC port (SO_REUSEPORT), decode, normalize, redact and price;
    # 1: one process does everything. On N >= 4 cores, N - 1 (see docs/scaling.md).
    processes: int = 1
    # OTLP decoding: "auto" uses the native (C) decoder when it was built, "off" the pure-Python one only.
    native_decode: str = "auto"

    def validate(self) -> None:
        check_endpoint("receiver.grpc.endpoint", self.grpc.endpoint)
        positive: dict[str, float] = {
            "receiver.grpc.max_recv_msg_size_mib": self.grpc.max_recv_msg_size_mib,
            "receiver.grpc.max_workers": self.grpc.max_workers,
            "receiver.http.max_request_mib": self.http.max_request_mib,
            "receiver.max_attribute_value_length": self.max_attribute_value_length,
            "receiver.max_spans_per_request": self.max_spans_per_request,
            "receiver.max_attributes_per_span": self.max_attributes_per_span,
            "receiver.max_future_skew_s": self.max_future_skew_s,
        }
        require_positive(positive)
        _check_processes(self.processes)
        if self.native_decode not in NATIVE_DECODE_MODES:
            raise ConfigError(f"receiver.native_decode: must be one of {', '.join(NATIVE_DECODE_MODES)} "
                              f"(auto uses the native decoder when it is installed), got {self.native_decode!r}")
        if not self.default_tenant:
            raise ConfigError("receiver.default_tenant: must not be empty")
        self.grpc.validate("receiver.grpc")
        self.http.validate("receiver.http")

    def listeners(self) -> list[tuple[str, ListenerConfig]]:
        """(name, config) of each listener that is on."""
        return [(name, listener) for name, listener in (("grpc", self.grpc), ("http", self.http)) if listener.endpoint]


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
