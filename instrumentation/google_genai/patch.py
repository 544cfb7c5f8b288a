"""Wrapper factories for the google-genai `Models` / `AsyncModels` methods we trace, one per method.

`generate_content` and `embed_content` go through the shared `traced`
wrappers. `generate_content_stream` has no `stream=True` argument to tell the
shared wrappers it streams: its wrappers hand the iterator it returns (a
generator that sends the request on first iteration) to a stream proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


from .. import _semconv as sc
from .._stream import AsyncStreamProxy, SyncStreamProxy
from .._telemetry import Operation, Telemetry, log_once
from .._traced import async_traced, await_in_span, call_in_span, traced
from . import extract
from .accumulate import GenerateContentStreamAccumulator

GENERATE_CONTENT = Operation(
    name=sc.OP_GENERATE_CONTENT,
    request_attributes=extract.generate_request_attributes,
    response_attributes=extract.generate_response_attributes,
    request_content=extract.generate_request_content,
    output_messages=extract.generate_output_messages,
    client_attributes=extract.client_attributes,
    error_type=extract.error_type,
)

GENERATE_CONTENT_STREAM = Operation(
    name=sc.OP_GENERATE_CONTENT,
    request_attributes=extract.stream_request_attributes,
    response_attributes=extract.generate_response_attributes,
    request_content=extract.generate_request_content,
    output_messages=extract.generate_output_messages,
    stream_accumulator=GenerateContentStreamAccumulator,
    client_attributes=extract.client_attributes,
    error_type=extract.error_type,
)

EMBED_CONTENT = Operation(
    name=sc.OP_EMBEDDINGS,
    request_attributes=extract.embed_request_attributes,
    response_attributes=extract.embed_response_attributes,
    client_attributes=extract.client_attributes,
    error_type=extract.error_type,
)

Wrapper = Callable[..., Any]


def generate_content(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, GENERATE_CONTENT)


def async_generate_content(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, GENERATE_CONTENT)


def embed_content(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, EMBED_CONTENT)


def async_embed_content(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, EMBED_CONTENT)


def _proxy(proxy_cls: type, result: Any, call: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return proxy_cls(result, call, GenerateContentStreamAccumulator(kwargs))
    except Exception as exc:  # noqa: BLE001 - the user's stream goes back untraced rather than broken
        log_once("gcp.gemini.generate_content_stream.proxy", exc)
        call.end()
        return result


def generate_content_stream(telemetry: Telemetry) -> Wrapper:
    def wrapper(wrapped: Wrapper, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = telemetry.begin(GENERATE_CONTENT_STREAM, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        result = call_in_span(call, wrapped, args, kwargs)
        return _proxy(SyncStreamProxy, result, call, kwargs)

    return wrapper


def async_generate_content_stream(telemetry: Telemetry) -> Wrapper:
    # AsyncModels.generate_content_stream is `async def` and returns an async iterator once awaited.
    async def wrapper(wrapped: Wrapper, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = telemetry.begin(GENERATE_CONTENT_STREAM, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await await_in_span(call, wrapped, args, kwargs)
        return _proxy(AsyncStreamProxy, result, call, kwargs)

    return wrapper
