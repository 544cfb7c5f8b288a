"""OTLP/gRPC receiver: TraceService/Export -> pipeline, with the OTLP status rules.

The handler receives the raw request bytes (no generated deserializer) so that
an undecodable request becomes INVALID_ARGUMENT with a reason, and a request
with one bad string still has its other spans stored. gzip is handled by gRPC.

With API keys configured, each call must carry `authorization: Bearer <key>`;
the key's tenant is stamped on every span of the call. With TLS files
configured, the port speaks TLS only.
"""

from __future__ import annotations

import logging
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanhouse.collector.auth import AuthError, KeyRing, is_loopback
from spanhouse.collector.component import ListenError
from spanhouse.collector.listeners import RefusalLog
from spanhouse.collector.receiver.decode import Decoder, RequestDecodeError
from spanhouse.collector.receiver.counts import SpanCounts
from spanhouse.collector.writer import WriterFull

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.component import Consumer

log = logging.getLogger("spanhouse.receiver.grpc")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


def _retry_info(delay_s: float) -> bytes:
    info = RetryInfo()
    info.retry_delay.FromNanoseconds(int(delay_s * 1e9))
    return info.SerializeToString()


class GrpcReceiver:
    def __init__(self, pipeline: Consumer, endpoint: str, max_recv_msg_size_mib: int = 64,
                 max_workers: int = 8, default_tenant: str = "default", keys: KeyRing | None = None,
                 credentials: grpc.ServerCredentials | None = None, reuse_port: bool = False,
                 decoder: Decoder | None = None) -> None:
        """`reuse_port`: share the port with the collector's other worker processes (SO_REUSEPORT).

        Off otherwise: grpcio turns SO_REUSEPORT on by default, which would let two unrelated
        collectors bind the same port and silently split its traffic.
        """
        self.pipeline = pipeline
        self.decoder = decoder or Decoder()
        self.requests_invalid_total = 0
        self.spans = SpanCounts()
        self.endpoint = endpoint
        self.default_tenant = default_tenant
        # None: no authentication (only allowed on loopback unless explicitly accepted, see config).
        self.keys = keys if keys else None
        self.credentials = credentials
        self.refusals = RefusalLog(log, "OTLP export")
        max_bytes = max_recv_msg_size_mib * 1024 * 1024
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="spanhouse-grpc"),
            options=[("grpc.max_receive_message_length", max_bytes), ("grpc.so_reuseport", int(reuse_port))],
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self.port: int | None = None

    @classmethod
    def from_config(cls, pipeline: Consumer, cfg: Config, reuse_port: bool = False) -> GrpcReceiver:
        g = cfg.receiver.grpc
        return cls(pipeline, g.endpoint, g.max_recv_msg_size_mib, g.max_workers, cfg.receiver.default_tenant,
                   KeyRing.from_config(cfg.auth), server_credentials(g.tls_cert_file, g.tls_key_file,
                                                                     g.tls_client_ca_file), reuse_port,
                   Decoder.from_config(cfg))

    def start(self) -> int:
        try:
            if self.credentials is not None:
                port = self._server.add_secure_port(self.endpoint, self.credentials)
            else:
                port = self._server.add_insecure_port(self.endpoint)
        except RuntimeError as exc:
            raise ListenError(f"cannot listen for OTLP/gRPC on {self.endpoint}: {exc}") from None
        if not port:
            raise ListenError(f"cannot listen for OTLP/gRPC on {self.endpoint}: address in use or not available")
        self._server.start()
        self.port = port
        host = self.endpoint.rpartition(":")[0]
        log.info("OTLP/gRPC receiver listening on %s:%d (%s, %s)", host, port,
                 "TLS" if self.credentials is not None else "plaintext",
                 f"{len(self.keys)} API keys" if self.keys else "no authentication")
        if self.keys and self.credentials is None and not is_loopback(host):
            log.warning("API keys are sent in plaintext to %s: configure receiver.grpc.tls_cert_file and "
                        "tls_key_file, or terminate TLS in front of the collector", self.endpoint)
        return port

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting calls; calls in progress get `grace_s` to finish."""
        self._server.stop(grace_s).wait()

    def counters(self) -> dict[str, int]:
        return {"unauthenticated_total": self.refusals.total,
                "requests_invalid_total": self.requests_invalid_total,
                "spans_accepted_total": self.spans.accepted_total,
                "spans_refused_total": self.spans.refused_total, **self.decoder.counters()}

    def _export(self, request: bytes, context: Any) -> ExportTraceServiceResponse:
        tenant = self.default_tenant
        if self.keys is not None:
            try:
                principal = self.keys.authenticate_metadata(context.invocation_metadata())
            except AuthError as exc:
                self.refusals.refused(context.peer(), str(exc))
                context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            tenant = principal.tenant
        try:
            result = self.decoder.decode_bytes(request, tenant)
        except RequestDecodeError as exc:
            self.requests_invalid_total += 1
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        spans = result.batch.size
        try:
            self.pipeline.consume(result)
        except WriterFull as exc:
            self.spans.refused(spans + result.rejected_spans)
            # OTLP exporters retry UNAVAILABLE, waiting at least the RetryInfo delay.
            context.set_trailing_metadata(((RETRY_INFO_KEY, _retry_info(exc.retry_after_s)),))
            context.abort(grpc.StatusCode.UNAVAILABLE, f"collector is busy, retry later: {exc}")
        except Exception:
            self.spans.refused(spans + result.rejected_spans)
            raise
        self.spans.accepted(spans, result.rejected_spans)
        return result.export_response()


def server_credentials(cert_file: str, key_file: str, client_ca_file: str = "") -> grpc.ServerCredentials | None:
    """TLS credentials from PEM files (None without them); a client CA turns on mutual TLS."""
    if not cert_file:
        return None
    ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    return grpc.ssl_server_credentials([(Path(key_file).read_bytes(), Path(cert_file).read_bytes())],
                                       root_certificates=ca, require_client_auth=ca is not None)
