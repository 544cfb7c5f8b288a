"""The span and metrics of one GenAI call: start it (`Telemetry.begin`), end it (`Call.end`).

This is the bottom layer of the call path and imports neither the stream
proxies nor the wrappers: `_stream` ends a `Call` when a stream ends, and
`_traced` (the wrapt wrappers) decides between ending a call now and handing
it to a stream proxy. A patched method describes itself with an `Operation`
(pure extractor functions for its request and response). Every step that
belongs to telemetry is caught and logged once, so a bug here never breaks
the user's call.
"""

from __future__ import annotations

import logging
import timeit
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from . import _config
from . import _semconv as sc
from ._content import to_json
from .agent import current_context_attributes

_LOG = logging.getLogger("spanhouse.instrumentation")
_logged: set[str] = set()
_clock = timeit.default_timer  # monotonic, high resolution

Attributes = dict[str, Any]


def log_once(where: str, exc: BaseException) -> None:
    """Log an instrumentation failure the first time it happens at `where`; never raise."""
    if where in _logged:
        return
    _logged.add(where)
    _LOG.warning("spanhouse instrumentation error in %s (logged once, telemetry skipped): %r", where, exc,
                 exc_info=exc)


class Accumulator(Protocol):
    """Builds the response attributes of a stream from the items it yields."""

    def observe(self, item: Any) -> None: ...

    def attributes(self) -> Attributes: ...

    def output_messages(self) -> list[Any] | None: ...


@dataclass(frozen=True)
class Operation:
    """What a patched method means in GenAI terms; every function here is pure."""

    name: str
    request_attributes: Callable[[Mapping[str, Any]], Attributes]
    response_attributes: Callable[[Any], Attributes]
    request_content: Callable[[Mapping[str, Any]], Attributes] | None = None
    output_messages: Callable[[Any], list[Any] | None] | None = None
    stream_accumulator: Callable[[Mapping[str, Any]], Accumulator] | None = None
    # Server (and, where one SDK serves two providers, provider) attributes read off the client instance,
    # for SDKs that do not keep an httpx `_base_url` where `server_attributes` looks.
    client_attributes: Callable[[Any], Attributes] | None = None
    # error.type for a failed call when the exception's class name says less than the SDK's own code does.
    error_type: Callable[[BaseException], str | None] | None = None


class Telemetry:
    """One instrumentor's tracer and histograms, bound to a provider name."""

    def __init__(self, provider: str, tracer: Tracer, meter: Meter) -> None:
        self.provider = provider
        self.tracer = tracer
        self.duration: Histogram = meter.create_histogram(
            sc.METRIC_OPERATION_DURATION, unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=sc.DURATION_BUCKETS_S,
        )
        self.token_usage: Histogram = meter.create_histogram(
            sc.METRIC_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=sc.TOKEN_USAGE_BUCKETS,
        )

    def begin(self, operation: Operation, instance: Any, kwargs: Mapping[str, Any]) -> Call | None:
        """Start the span of one call, or None when telemetry is suppressed or failed to start."""
        if not is_instrumentation_enabled():
            return None
        try:
            attributes = {sc.OPERATION_NAME: operation.name, sc.PROVIDER_NAME: self.provider}
            client = operation.client_attributes
            attributes.update(server_attributes(instance) if client is None else client(instance))
            attributes.update(operation.request_attributes(kwargs))
            attributes.update(current_context_attributes())
            attributes = {k: v for k, v in attributes.items() if v is not None}
            model = attributes.get(sc.REQUEST_MODEL)
            name = f"{operation.name} {model}" if model else operation.name
            span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            settings = _config.SETTINGS
            if settings.capture_content and operation.request_content is not None and span.is_recording():
                for key, value in operation.request_content(kwargs).items():
                    if value:
                        span.set_attribute(key, to_json(value, settings.capture_max_bytes))
            return Call(self, operation, span, attributes)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            log_once(f"{self.provider}.{operation.name}.begin", exc)
            return None


class Call:
    """The span and timings of one in-flight call; `end` is idempotent."""

    __slots__ = ("telemetry", "operation", "span", "request", "started", "first_chunk", "ended")

    def __init__(self, telemetry: Telemetry, operation: Operation, span: Span, request: Attributes) -> None:
        self.telemetry = telemetry
        self.operation = operation
        self.span = span
        self.request = request
        self.started = _clock()
        self.first_chunk: float | None = None
        self.ended = False

    def activate(self) -> object:
        """Make the span current while the SDK sends the request, so HTTP spans nest under it."""
        return otel_context.attach(trace.set_span_in_context(self.span))

    def mark_chunk(self) -> None:
        if self.first_chunk is None:
            self.first_chunk = _clock()

    def end(self, response: Attributes | None = None, outputs: Callable[[], list[Any] | None] | None = None,
            error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self._end(response or {}, outputs, error)
        except Exception as exc:  # noqa: BLE001
            log_once(f"{self.telemetry.provider}.{self.operation.name}.end", exc)
            self.span.end()

    def _end(self, response: Attributes, outputs: Callable[[], list[Any] | None] | None,
             error: BaseException | None) -> None:
        elapsed = _clock() - self.started
        span = self.span
        response = {k: v for k, v in response.items() if v is not None}
        if self.first_chunk is not None:
            response[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk - self.started
        if error is not None:
            named = self.operation.error_type
            named_type = named(error) if named is not None else None
            response[sc.ERROR_TYPE] = named_type or type(error).__qualname__
        if span.is_recording():
            span.set_attributes(response)
            settings = _config.SETTINGS
            if settings.capture_content and outputs is not None:
                messages = outputs()
                if messages:
                    span.set_attribute(sc.OUTPUT_MESSAGES, to_json(messages, settings.capture_max_bytes))
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()
        self._record_metrics(elapsed, response)

    def _record_metrics(self, elapsed: float, response: Attributes) -> None:
        merged = {**self.request, **response}
        point = {k: merged[k] for k in sc.METRIC_ATTRIBUTES if k in merged}
        if sc.ERROR_TYPE in response:
            self.telemetry.duration.record(elapsed, {**point, sc.ERROR_TYPE: response[sc.ERROR_TYPE]})
            return
        self.telemetry.duration.record(elapsed, point)
        for key, token_type in ((sc.USAGE_INPUT_TOKENS, sc.TOKEN_TYPE_INPUT),
                                (sc.USAGE_OUTPUT_TOKENS, sc.TOKEN_TYPE_OUTPUT)):
            count = response.get(key)
            if isinstance(count, int):
                self.telemetry.token_usage.record(count, {**point, sc.TOKEN_TYPE: token_type})


# The last base URL seen and its attributes: most apps use one client, and reading host and port
# off an httpx URL costs more than the identity check. The URL objects are immutable.
_last_server: tuple[Any, Attributes] = (None, {})


def server_attributes(instance: Any) -> Attributes:
    """server.address/port from the client's base URL (a resource holds its client as `_client`).

    The dict returned may be shared between calls: read it, never change it.
    """
    global _last_server
    client = getattr(instance, "_client", instance)
    # `_base_url` is where both SDKs keep what their `base_url` property returns; openai's property runs an
    # import statement on every read, which costs more than the rest of this function.
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    last_url, last = _last_server
    if url is last_url and url is not None:
        return last
    host = getattr(url, "host", None)
    if not host:
        return {}
    port = getattr(url, "port", None)
    if port is None:
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    attributes = {sc.SERVER_ADDRESS: host, sc.SERVER_PORT: port}
    _last_server = (url, attributes)
    return attributes
