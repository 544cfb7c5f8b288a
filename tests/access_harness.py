"""Helpers for the access tests: API keys in config, raw OTLP calls with metadata, test certificates."""

from __future__ import annotations

import datetime
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanhouse.collector.auth import generate_key, hash_key

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class Key:
    key: str
    tenant: str
    admin: bool = False

    @classmethod
    def new(cls, tenant: str, admin: bool = False) -> Key:
        return cls(generate_key(), tenant, admin)

    def config(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "key_sha256": hash_key(self.key), "admin": self.admin,
                "name": f"{self.tenant}-key"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


def auth_overrides(*keys: Key) -> dict[str, Any]:
    return {"auth": {"keys": [k.config() for k in keys]}}


def span_request(service: str, count: int, attributes: dict[str, str] | None = None,
                 attributes_per_span: list[int] | None = None) -> ExportTraceServiceRequest:
    """`count` valid spans of `service`; span i gets attributes_per_span[i] extra attributes if given."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    scope = resource_spans.scope_spans.add()
    for i in range(count):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), f"{service}-span-{i}"
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 1000
        for key, value in (attributes or {}).items():
            attr = span.attributes.add()
            attr.key, attr.value.string_value = key, value
        for j in range(attributes_per_span[i] if attributes_per_span else 0):
            attr = span.attributes.add()
            attr.key, attr.value.string_value = f"extra.{j}", "v"
    return request


def export(endpoint: str, request: ExportTraceServiceRequest, metadata: Any = None,
           credentials: grpc.ChannelCredentials | None = None,
           options: Any = None) -> ExportTraceServiceResponse:
    """One OTLP Export call with a plain grpc channel; raises grpc.RpcError when refused."""
    channel = (grpc.secure_channel(endpoint, credentials, options=options) if credentials is not None
               else grpc.insecure_channel(endpoint, options=options))
    with channel:
        call = channel.unary_unary(EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                   response_deserializer=ExportTraceServiceResponse.FromString)
        return call(request, metadata=metadata, timeout=30)


def http(endpoint: str, path: str, body: str | None = None, key: str | None = None) -> tuple[int, str]:
    """POST (with a body) or GET to the query endpoint; (status, text)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body.encode() if body is not None else None
    request = urllib.request.Request(f"http://{endpoint}{path}", data=data, headers=headers,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def make_certificates(folder: Path) -> Certificates:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, made now."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def leaf(cn: str, issuer: tuple[Any, Any], usage: Any, san: list[Any]) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer[1].subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return key, builder.sign(issuer[0], hashes.SHA256())

    def write(path: Path, key: Any = None, cert: Any = None) -> Path:
        if key is not None:
            path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        else:
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    folder.mkdir(parents=True, exist_ok=True)
    root = ca("spanhouse test CA")
    server = leaf("localhost", root, ExtendedKeyUsageOID.SERVER_AUTH,
                  [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = leaf("test client", root, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return Certificates(
        ca=write(folder / "ca.pem", cert=root[1]),
        cert=write(folder / "server.pem", cert=server[1]),
        key=write(folder / "server-key.pem", key=server[0]),
        client_cert=write(folder / "client.pem", cert=client[1]),
        client_key=write(folder / "client-key.pem", key=client[0]),
        other_ca=write(folder / "other-ca.pem", cert=ca("someone else")[1]),
    )
