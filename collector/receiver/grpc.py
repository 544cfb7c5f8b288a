"""OTLP/gRPC receiver: TraceService/Export -> pipeline, with the OTLP status rules.

The handler receives the raw request bytes (no generated deserializer) so that
an undecodable request becomes INVALID_ARGUMENT with a reason, and a request
with one bad string still has its other spans stored. gzip is handled by gRPC.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanhouse.collector.receiver.decode import RequestDecodeError
from spanhouse.collector.writer import WriterFull

if TYPE_CHECKING:
    from spanhouse.collector.pipeline import Pipeline

log = logging.getLogger("spanhouse.receiver.grpc")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class ListenError(RuntimeError):
    """The receiver could not bind its address."""


class GrpcReceiver:
    def __init__(self, pipeline: Pipeline, endpoint: str, max_recv_msg_size_mib: int = 64,
                 max_workers: int = 8, default_tenant: str = "default") -> None:
        self.pipeline = pipeline
        self.endpoint = endpoint
        self.default_tenant = default_tenant
        max_bytes = max_recv_msg_size_mib * 1024 * 1024
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="spanhouse-grpc"),
            options=[("grpc.max_receive_message_length", max_bytes), ("grpc.so_reuseport", 0)],
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=None,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self.port: int | None = None

    def start(self) -> int:
        try:
            port = self._server.add_insecure_port(self.endpoint)
        except RuntimeError as exc:
            raise ListenError(f"cannot listen for OTLP/gRPC on {self.endpoint}: {exc}") from None
        if not port:
            raise ListenError(f"cannot listen for OTLP/gRPC on {self.endpoint}: address in use or not available")
        self._server.start()
        self.port = port
        host = self.endpoint.rpartition(":")[0]
        log.info("OTLP/gRPC receiver listening on %s:%d", host, port)
        return port

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting calls; calls in progress get `grace_s` to finish."""
        self._server.stop(grace_s).wait()

    def _export(self, request: bytes, context: Any) -> ExportTraceServiceResponse:
        try:
            result = self.pipeline.consume(request, self.default_tenant)
        except RequestDecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except WriterFull as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"collector is busy, retry later: {exc}")
        response = ExportTraceServiceResponse()
        if result.rejected_spans or result.problems:
            response.partial_success.rejected_spans = result.rejected_spans
            response.partial_success.error_message = result.message()
        return response
