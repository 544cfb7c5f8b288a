"""The query endpoint off loopback: only with API keys, over TLS (and mutual TLS) as the receivers."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError
from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError

from access_harness import Certificates, Key, auth_overrides, export, make_certificates, span_request
from collector_harness import RunningCollector, start_collector

ACME = Key.new("acme")
GLOBEX = Key.new("globex")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls(certs: Certificates, **extra: str) -> dict[str, Any]:
    return {"tls_cert_file": str(certs.cert), "tls_key_file": str(certs.key), **extra}


def seeded(running: RunningCollector) -> RunningCollector:
    export(running.grpc_endpoint, span_request("acme-app", 2), metadata=ACME.metadata)
    export(running.grpc_endpoint, span_request("globex-app", 4), metadata=GLOBEX.metadata)
    running.flush()
    return running


@pytest.fixture
def public_tls(tmp_path: Path, certs: Certificates) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path / "store", **auth_overrides(ACME, GLOBEX),
                              query={"endpoint": "0.0.0.0:0", **tls(certs)})
    try:
        yield seeded(running)
    finally:
        running.collector.stop()


def port(running: RunningCollector) -> int:
    return int(running.query_endpoint.rpartition(":")[2])


def test_clickhouse_connect_over_tls_on_all_interfaces(public_tls: RunningCollector, certs: Certificates) -> None:
    c = clickhouse_connect.get_client(host="localhost", port=port(public_tls), username="acme", password=ACME.key,
                                      secure=True, verify=True, ca_cert=str(certs.ca))
    assert c.query("SELECT TenantId, count() FROM spans GROUP BY TenantId").result_rows == [("acme", 2)]


def test_plain_http_to_the_tls_port_gets_no_answer(public_tls: RunningCollector) -> None:
    http = urllib3.PoolManager(retries=False, timeout=10)
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("GET", f"http://127.0.0.1:{port(public_tls)}/?query=SELECT%201",
                     headers={"X-ClickHouse-Key": ACME.key})


def test_a_client_that_does_not_trust_the_certificate_is_refused(public_tls: RunningCollector,
                                                                 certs: Certificates) -> None:
    http = urllib3.PoolManager(retries=False, timeout=10, ca_certs=str(certs.other_ca), cert_reqs="CERT_REQUIRED")
    with pytest.raises(urllib3.exceptions.SSLError):
        http.request("GET", f"https://localhost:{port(public_tls)}/ping")


def test_mutual_tls_needs_a_client_certificate(tmp_path: Path, certs: Certificates) -> None:
    running = start_collector(tmp_path / "store", **auth_overrides(ACME, GLOBEX),
                              query={"endpoint": "0.0.0.0:0", **tls(certs, tls_client_ca_file=str(certs.ca))})
    try:
        seeded(running)
        url = f"https://localhost:{port(running)}/?query=SELECT%20count()%20FROM%20spans"
        anonymous = urllib3.PoolManager(retries=False, timeout=10, ca_certs=str(certs.ca))
        with pytest.raises((urllib3.exceptions.HTTPError, ssl.SSLError)):
            anonymous.request("GET", url, headers={"X-ClickHouse-Key": ACME.key})
        # tls_mode="strict": present the certificate and still send the key (the default "mutual" mode would
        # replace the password with certificate authentication, which maps to no tenant here).
        c = clickhouse_connect.get_client(host="localhost", port=port(running), username="acme", password=ACME.key,
                                          secure=True, ca_cert=str(certs.ca), client_cert=str(certs.client_cert),
                                          client_cert_key=str(certs.client_key), tls_mode="strict")
        assert c.command("SELECT count() FROM spans") == 2
        with pytest.raises(DatabaseError, match="tls_mode='strict'") as certificate_only:
            clickhouse_connect.get_client(host="localhost", port=port(running), username="acme", secure=True,
                                          ca_cert=str(certs.ca), client_cert=str(certs.client_cert),
                                          client_cert_key=str(certs.client_key))
        assert certificate_only.value.code == 516
    finally:
        running.collector.stop()


def test_keys_in_plaintext_off_loopback_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spanhouse.query"):
        running = start_collector(tmp_path / "store", **auth_overrides(ACME), query={"endpoint": "0.0.0.0:0"})
    try:
        assert any("API keys are sent in plaintext to the query endpoint" in r.getMessage() for r in caplog.records)
        c = clickhouse_connect.get_client(host="127.0.0.1", port=port(running), username="acme", password=ACME.key)
        assert c.command("SELECT 1") == 1
    finally:
        running.collector.stop()


def test_off_loopback_without_keys_does_not_start(tmp_path: Path) -> None:
    for flag in (False, True):  # allow_unauthenticated is about writes; it never opens reads to everyone
        with pytest.raises(ConfigError, match=r"query.endpoint: refusing to listen on 0.0.0.0:0 without API keys"):
            start_collector(tmp_path / "store", query={"endpoint": "0.0.0.0:0"},
                            auth={"allow_unauthenticated": flag})
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("options, message", [
    ({"tls_cert_file": "CERT"}, "query.tls_key_file: TLS needs both tls_cert_file and tls_key_file"),
    ({"tls_key_file": "KEY"}, "query.tls_cert_file: TLS needs both"),
    ({"tls_client_ca_file": "CA"}, "query.tls_client_ca_file: client certificates need TLS"),
    ({"tls_cert_file": "/no/such.pem", "tls_key_file": "KEY"}, "query.tls_cert_file: no such file '/no/such.pem'"),
    ({"tls_cert_file": "KEY", "tls_key_file": "CERT"}, "query.tls_cert_file/tls_key_file: cannot load"),
])
def test_bad_tls_options_stop_start_up_naming_the_key(certs: Certificates, options: dict[str, str],
                                                      message: str) -> None:
    names = {"CERT": str(certs.cert), "KEY": str(certs.key), "CA": str(certs.ca)}
    query = {name: names.get(value, value) for name, value in options.items()}
    with pytest.raises(ConfigError) as refused:
        config_mod.load(None, environ={}, overrides={"query": query})
    assert message in str(refused.value)
