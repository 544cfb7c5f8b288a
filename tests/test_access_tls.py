"""TLS on OTLP/gRPC with certificates made at run time, mutual TLS, bad TLS configuration, input limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError

from access_harness import Certificates, Key, auth_overrides, export, make_certificates, span_request
from collector_harness import RunningCollector, start_collector

ACME = Key.new("acme")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def tls_options(certs: Certificates, **extra: str) -> dict[str, Any]:
    return {"tls_cert_file": str(certs.cert), "tls_key_file": str(certs.key), **extra}


@pytest.fixture
def tls_collector(tmp_path: Path, certs: Certificates) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path / "store", **auth_overrides(ACME),
                              receiver={"grpc": {"endpoint": "127.0.0.1:0", **tls_options(certs)}})
    try:
        yield running
    finally:
        running.collector.stop()


def localhost(running: RunningCollector) -> str:
    return f"localhost:{running.grpc_endpoint.rpartition(':')[2]}"


def stored(running: RunningCollector, service: str) -> dict[str, int]:
    return dict(running.query("SELECT TenantId, count() FROM spans WHERE ServiceName = {s:String} GROUP BY TenantId",
                              {"s": service}))


def test_real_sdk_exporter_over_tls_with_the_ca_and_a_key(tls_collector: RunningCollector,
                                                          certs: Certificates) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-app"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(4):
        with provider.get_tracer("tls-test").start_as_current_span(f"call-{i}"):
            pass
    exporter = OTLPSpanExporter(endpoint=localhost(tls_collector), insecure=False, timeout=10,
                                credentials=grpc.ssl_channel_credentials(certs.ca.read_bytes()),
                                headers={"authorization": f"Bearer {ACME.key}"})
    try:
        assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
        provider.shutdown()
    assert stored(tls_collector, "tls-app") == {"acme": 4}


def test_plaintext_client_is_refused_by_a_tls_port(tls_collector: RunningCollector) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(tls_collector.grpc_endpoint, span_request("plaintext-app", 1), metadata=ACME.metadata)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stored(tls_collector, "plaintext-app") == {}


def test_client_trusting_another_ca_does_not_connect(tls_collector: RunningCollector, certs: Certificates) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(localhost(tls_collector), span_request("wrong-ca-app", 1), metadata=ACME.metadata,
               credentials=grpc.ssl_channel_credentials(certs.other_ca.read_bytes()))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stored(tls_collector, "wrong-ca-app") == {}


def test_tls_still_needs_the_api_key(tls_collector: RunningCollector, certs: Certificates) -> None:
    with pytest.raises(grpc.RpcError) as info:
        export(localhost(tls_collector), span_request("keyless-app", 1),
               credentials=grpc.ssl_channel_credentials(certs.ca.read_bytes()))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_mutual_tls_needs_a_client_certificate_from_the_ca(tmp_path: Path, certs: Certificates) -> None:
    running = start_collector(tmp_path / "store", **auth_overrides(ACME), receiver={"grpc": {
        "endpoint": "127.0.0.1:0", **tls_options(certs, tls_client_ca_file=str(certs.ca))}})
    try:
        with pytest.raises(grpc.RpcError) as info:
            export(localhost(running), span_request("no-client-cert", 1), metadata=ACME.metadata,
                   credentials=grpc.ssl_channel_credentials(certs.ca.read_bytes()))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with_cert = grpc.ssl_channel_credentials(certs.ca.read_bytes(), certs.client_key.read_bytes(),
                                                 certs.client_cert.read_bytes())
        export(localhost(running), span_request("client-cert", 2), metadata=ACME.metadata, credentials=with_cert)
        assert stored(running, "client-cert") == {"acme": 2}
        assert stored(running, "no-client-cert") == {}
    finally:
        running.collector.stop()


def _bad_tls_cases(certs: Certificates, folder: Path) -> list[tuple[dict[str, str], str]]:
    not_pem = folder / "not.pem"
    not_pem.write_text("hello\n")
    other = make_certificates(folder / "other")
    return [
        ({"tls_cert_file": str(certs.cert)}, "receiver.grpc.tls_key_file: TLS needs both tls_cert_file and"),
        ({"tls_key_file": str(certs.key)}, "receiver.grpc.tls_cert_file: TLS needs both"),
        ({"tls_client_ca_file": str(certs.ca)}, "receiver.grpc.tls_client_ca_file: client certificates need TLS"),
        (tls_options(certs, tls_cert_file=str(folder / "missing.pem")), "receiver.grpc.tls_cert_file: no such file"),
        (tls_options(certs, tls_cert_file=str(not_pem)), "cannot load the certificate and key"),
        (tls_options(certs, tls_key_file=str(other.key)), "expected PEM files where the key belongs to the certificate"),
        (tls_options(certs, tls_client_ca_file=str(not_pem)), "receiver.grpc.tls_client_ca_file: cannot load CA"),
    ]


def test_bad_tls_configuration_stops_start_up_naming_the_option(tmp_path: Path, certs: Certificates) -> None:
    for grpc_options, message in _bad_tls_cases(certs, tmp_path):
        with pytest.raises(ConfigError) as info:
            config_mod.load(None, environ={}, overrides={"receiver": {"grpc": grpc_options}})
        assert message in str(info.value), grpc_options


# --- input limits ----------------------------------------------------------------------------------------


def test_spans_over_the_limits_are_refused_in_part_and_the_rest_stored(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", receiver={"max_spans_per_request": 6, "max_attributes_per_span": 4})
    try:
        # 8 spans: span 1 has 5 attributes (over 4); spans 7 and 8 (indexes 6, 7) are past the 6-span limit.
        request = span_request("limited-app", 8, attributes_per_span=[0, 5, 4, 0, 0, 0, 0, 0])
        response = export(running.grpc_endpoint, request)
        assert response.partial_success.rejected_spans == 3
        message = response.partial_success.error_message
        assert ("span rejected: more than receiver.max_attributes_per_span (4) attributes "
                "(1x, first at resource_spans[0].scope_spans[0].spans[1])") in message
        assert ("span rejected: request holds more than receiver.max_spans_per_request (6) spans "
                "(2x, first at resource_spans[0].scope_spans[0].spans[6])") in message
        names = [name for (name,) in running.query(
            "SELECT SpanName FROM spans WHERE ServiceName = 'limited-app' ORDER BY SpanName")]
        assert names == [f"limited-app-span-{i}" for i in (0, 2, 3, 4, 5)]
        # Under the limits, nothing is refused.
        assert not export(running.grpc_endpoint, span_request("limited-app", 6)).HasField("partial_success")
    finally:
        running.collector.stop()


@pytest.mark.parametrize("key", ["max_spans_per_request", "max_attributes_per_span"])
def test_limits_must_be_positive(key: str) -> None:
    with pytest.raises(ConfigError, match=f"receiver.{key}: must be greater than 0, got 0"):
        config_mod.load(None, environ={}, overrides={"receiver": {key: 0}})
