"""Wrapper factories for the Anthropic client methods we trace, one per method.

`messages.create` goes through the shared `traced` wrappers. The
`messages.stream()` helper sends its request only when its manager is
entered, so that wrapper returns a proxy of the manager: the span starts at
`__enter__`, and the raw event stream inside the SDK's `MessageStream` is
swapped for our proxy, which sees every event however the user consumes the
helper (iteration, `text_stream`, `get_final_message()`, `until_done()`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt

from .. import _semconv as sc
from .._stream import AsyncStreamProxy, SyncStreamProxy
from .._telemetry import Call, Operation, Telemetry, log_once
from .._traced import async_traced, await_in_span, call_in_span, traced
from . import extract
from .accumulate import MessagesStreamAccumulator

MESSAGES = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.messages_request_attributes,
    response_attributes=extract.messages_response_attributes,
    request_content=extract.messages_request_content,
    output_messages=extract.messages_output_messages,
    stream_accumulator=MessagesStreamAccumulator,
)

MESSAGES_STREAM_HELPER = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.stream_helper_request_attributes,
    response_attributes=extract.messages_response_attributes,
    request_content=extract.messages_request_content,
    output_messages=extract.messages_output_messages,
    stream_accumulator=MessagesStreamAccumulator,
)

Wrapper = Callable[..., Any]


def messages_create(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, MESSAGES)


def async_messages_create(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, MESSAGES)


def _swap_raw_stream(call: Call, message_stream: Any, proxy_cls: type, kwargs: dict[str, Any]) -> None:
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is None:
        # An SDK layout we do not know: keep the request span rather than guess at the stream.
        log_once("anthropic.messages.stream.layout", AttributeError("MessageStream has no _raw_stream"))
        call.end()
        return
    message_stream._raw_stream = proxy_cls(raw, call, MESSAGES_STREAM_HELPER.stream_accumulator(kwargs))


class _StreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, telemetry: Telemetry, instance: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry
        self._self_instance = instance
        self._self_kwargs = kwargs

    def __enter__(self) -> Any:
        call = self._self_telemetry.begin(MESSAGES_STREAM_HELPER, self._self_instance, self._self_kwargs)
        if call is None:
            return self.__wrapped__.__enter__()
        message_stream = call_in_span(call, self.__wrapped__.__enter__, (), {})
        try:
            _swap_raw_stream(call, message_stream, SyncStreamProxy, self._self_kwargs)
        except Exception as exc:  # noqa: BLE001
            log_once("anthropic.messages.stream.enter", exc)
            call.end()
        return message_stream

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        return self.__wrapped__.__exit__(exc_type, exc, tb)


class _AsyncStreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, wrapped: Any, telemetry: Telemetry, instance: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_telemetry = telemetry
        self._self_instance = instance
        self._self_kwargs = kwargs

    async def __aenter__(self) -> Any:
        call = self._self_telemetry.begin(MESSAGES_STREAM_HELPER, self._self_instance, self._self_kwargs)
        if call is None:
            return await self.__wrapped__.__aenter__()
        message_stream = await await_in_span(call, self.__wrapped__.__aenter__, (), {})
        try:
            _swap_raw_stream(call, message_stream, AsyncStreamProxy, self._self_kwargs)
        except Exception as exc:  # noqa: BLE001
            log_once("anthropic.messages.stream.aenter", exc)
            call.end()
        return message_stream

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        return await self.__wrapped__.__aexit__(exc_type, exc, tb)


def messages_stream(telemetry: Telemetry) -> Wrapper:
    def wrapper(wrapped: Wrapper, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        return _StreamManagerProxy(manager, telemetry, instance, kwargs)

    return wrapper


def async_messages_stream(telemetry: Telemetry) -> Wrapper:
    # AsyncMessages.stream is a plain (non-async) method returning an async context manager.
    def wrapper(wrapped: Wrapper, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        return _AsyncStreamManagerProxy(manager, telemetry, instance, kwargs)

    return wrapper
