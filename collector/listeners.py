"""What every network listener shares (OTLP/gRPC, OTLP/HTTP, the query endpoint): TLS from PEM files,
checked at start-up with errors naming the option, and a log of refused calls that a client retrying fast
cannot flood (one line per reason per interval; the counter keeps the full number)."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from pathlib import Path
from typing import Protocol

from spanhouse.collector.settings import ConfigError


class TlsOptions(Protocol):
    """A listener's TLS options (receiver.grpc, receiver.http, query)."""

    tls_cert_file: str
    tls_key_file: str
    tls_client_ca_file: str


def check_tls(section: str, listener: TlsOptions) -> None:
    if bool(listener.tls_cert_file) != bool(listener.tls_key_file):
        missing = "tls_key_file" if listener.tls_cert_file else "tls_cert_file"
        raise ConfigError(f"{section}.{missing}: TLS needs both tls_cert_file and tls_key_file")
    if listener.tls_client_ca_file and not listener.tls_cert_file:
        raise ConfigError(f"{section}.tls_client_ca_file: client certificates need TLS: "
                          "also set tls_cert_file and tls_key_file")
    if listener.tls_cert_file:
        _check_tls_files(section, listener)


def _check_tls_files(section: str, listener: TlsOptions) -> None:
    """Load the PEM files as TLS would, so a bad file stops start-up naming the key."""
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


def server_ssl_context(cert_file: str, key_file: str, client_ca_file: str = "") -> ssl.SSLContext | None:
    """A server TLS context from PEM files (None without them); a client CA turns on mutual TLS."""
    if not cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        context.load_verify_locations(client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


REFUSAL_LOG_INTERVAL_S = 10.0


class RefusalLog:
    def __init__(self, log: logging.Logger, what: str, interval_s: float = REFUSAL_LOG_INTERVAL_S) -> None:
        self.log = log
        self.what = what
        self.interval_s = interval_s
        self.total = 0
        self._lock = threading.Lock()
        self._logged_at: dict[str, float] = {}  # reason -> last time it was logged

    def refused(self, peer: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            last = self._logged_at.get(reason)
            if last is not None and now - last < self.interval_s:
                return
            self._logged_at[reason] = now
            total = self.total
        self.log.warning("refused %s from %s: %s (%d refused calls so far; this reason is logged at most "
                         "every %.0f s)", self.what, peer, reason, total, self.interval_s)
