"""OTLP/HTTP with API keys, TLS, backpressure, and its configuration errors."""

from __future__ import annotations

import http.client
import ssl
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError
from spanhouse.collector.writer.clickhouse import InMemorySink

from access_harness import Key, auth_overrides, make_certificates, span_request
from collector_harness import start_collector, start_memory_collector
from test_http_receiver import post, status_message, stored


def test_partial_success_in_protobuf_for_spans_over_a_limit(tmp_path: Path) -> None:
    limited = start_collector(tmp_path / "store", receiver={"max_spans_per_request": 3})
    try:
        status, _, reply = post(limited.collector.http_url, span_request("http-limited", 5).SerializeToString())
        assert status == 200
        response = ExportTraceServiceResponse.FromString(reply)
        assert response.partial_success.rejected_spans == 2
        assert "max_spans_per_request (3)" in response.partial_success.error_message
        assert stored(limited, "http-limited") == 3
    finally:
        limited.collector.stop()


def test_api_keys_over_http(tmp_path: Path) -> None:
    acme = Key.new("acme")
    keyed = start_collector(tmp_path / "store", **auth_overrides(acme))
    try:
        url, request = keyed.collector.http_url, span_request("http-keyed", 2).SerializeToString()
        status, headers, reply = post(url, request)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert "missing API key" in status_message(reply)
        status, _, reply = post(url, request, headers={"Authorization": "Bearer shk_wrong"})
        assert status == 401 and "not recognised" in status_message(reply)
        assert post(url, request, headers={"Authorization": f"Bearer {acme.key}"})[0] == 200
        assert keyed.query("SELECT TenantId, count() FROM spans WHERE ServiceName = 'http-keyed' GROUP BY TenantId") \
            == [("acme", 2)]
        assert keyed.collector.http_receiver.counters()["http_unauthenticated_total"] == 2
    finally:
        keyed.collector.stop()


def test_https_and_mutual_tls(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    secured = start_collector(tmp_path / "store", receiver={"http": {
        "endpoint": "127.0.0.1:0", "tls_cert_file": str(certs.cert), "tls_key_file": str(certs.key),
        "tls_client_ca_file": str(certs.ca)}})
    try:
        url = secured.collector.http_url
        assert url.startswith("https://")
        request = span_request("https-app", 3).SerializeToString()
        trusting = ssl.create_default_context(cafile=str(certs.ca))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            post(url, request, context=trusting)  # no client certificate
        trusting.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        assert post(url, request, context=trusting)[0] == 200
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            post(url.replace("https://", "http://"), request)  # plaintext to a TLS port
        assert stored(secured, "https-app") == 3
    finally:
        secured.collector.stop()


def test_a_busy_collector_answers_503_with_retry_after_and_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    sink = InMemorySink()
    sink.fail_next = 1_000_000
    collector = start_memory_collector(tmp_path / "unused", sink)
    try:
        accepted, refused = 0, None
        for i in range(10):
            status, headers, reply = post(collector.http_url, span_request(f"busy-{i}", 3).SerializeToString())
            if status == 200:
                accepted += 1
                continue
            refused = (status, headers, reply)
            break
        assert refused is not None, "the writer never filled"
        status, headers, reply = refused
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert "retry later" in status_message(reply)
        sink.fail_next = 0
        assert collector.flush(timeout_s=30)
        assert sum(b.size for b in sink.batches) == 3 * accepted
    finally:
        collector.stop()


@pytest.mark.parametrize("tree, message", [
    ({"receiver": {"http": {"endpoint": "nowhere"}}}, "receiver.http.endpoint: expected HOST:PORT"),
    ({"receiver": {"http": {"endpoint": "0.0.0.0:4318"}}},
     "receiver.http.endpoint: refusing to listen on 0.0.0.0:4318 without authentication"),
    ({"receiver": {"http": {"max_request_mib": 0}}}, "receiver.http.max_request_mib: must be greater than 0"),
    ({"receiver": {"http": {"tls_cert_file": "/etc/cert.pem"}}}, "receiver.http.tls_key_file: TLS needs both"),
    ({"receiver": {"http": {"tls_cert_file": "/nonexistent.pem", "tls_key_file": "/nonexistent.key"}}},
     "receiver.http.tls_cert_file: no such file"),
])
def test_bad_http_configuration_is_refused_naming_the_option(tree: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_mod.load(None, environ={}, overrides=tree)
    assert message in str(info.value)


def test_http_can_be_turned_off_and_its_port_in_use_is_reported(tmp_path: Path) -> None:
    import socket

    off = config_mod.load(None, environ={"SPANHOUSE_RECEIVER__HTTP__ENDPOINT": ""})
    assert off.receiver.http.endpoint == ""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Exception) as info:
            start_collector(tmp_path / "store", receiver={"http": {"endpoint": f"127.0.0.1:{port}"}})
    assert f"cannot listen for OTLP/HTTP on 127.0.0.1:{port}" in str(info.value)
