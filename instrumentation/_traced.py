"""The wrapt wrappers every patched method goes through: `traced` and `async_traced`.

The top of the call path: a wrapper starts the call's span (`_telemetry`),
runs the SDK method with that span current, then either ends the span with
the response or, for a stream, hands the call to a proxy (`_stream`) that ends
it when the stream ends. The user's own exceptions are re-raised untouched.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context

from ._stream import AsyncStreamProxy, SyncStreamProxy
from ._telemetry import Call, Operation, Telemetry, log_once

# What `client.<resource>.with_raw_response.<method>(...)` returns: the HTTP response, body already read,
# with a parse() that caches what it builds, so parsing it here costs the user's own parse() nothing.
_RAW_RESPONSE_TYPES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})


def _parsed(result: Any) -> Any:
    """The SDK object behind a raw response (None when only an async parse is offered), else `result`."""
    if type(result).__name__ not in _RAW_RESPONSE_TYPES:
        return result
    parse = getattr(result, "parse", None)
    if parse is None or inspect.iscoroutinefunction(parse):
        return None
    return parse()


async def _async_parsed(call: Call, result: Any, kwargs: Mapping[str, Any]) -> Any:
    """The SDK object behind an async raw response, from its (cached) async parse(); else None."""
    if kwargs.get("stream") or type(result).__name__ not in _RAW_RESPONSE_TYPES:
        return None
    parse = getattr(result, "parse", None)
    if not inspect.iscoroutinefunction(parse):
        return None
    try:
        return await parse()
    except Exception as exc:  # noqa: BLE001 - the user's own parse() will meet the same problem
        log_once(f"{call.telemetry.provider}.{call.operation.name}.parse", exc)
        return None


def finish(call: Call, operation: Operation, result: Any, kwargs: Mapping[str, Any],
           response: Any = None) -> Any:
    """End a non-stream call with its response, or hand a stream to a proxy that ends it later.

    `response` is the parsed SDK object when the caller already has it (an async raw response).
    """
    try:
        if kwargs.get("stream") and operation.stream_accumulator is not None:
            accumulator = operation.stream_accumulator(kwargs)
            if hasattr(result, "__aiter__"):
                return AsyncStreamProxy(result, call, accumulator)
            if hasattr(result, "__iter__"):
                return SyncStreamProxy(result, call, accumulator)
        if response is None and not kwargs.get("stream"):  # a raw streaming response stays unread
            response = _parsed(result)
        outputs = (lambda: operation.output_messages(response)) if operation.output_messages else None
        call.end(operation.response_attributes(response), outputs)
    except Exception as exc:  # noqa: BLE001
        log_once(f"{call.telemetry.provider}.{operation.name}.finish", exc)
        call.end()
    return result


def call_in_span(call: Call, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 /) -> Any:
    """`function(*args, **kwargs)` with `call`'s span current; an exception ends the span with it and goes on."""
    token = call.activate()
    try:
        return function(*args, **kwargs)
    except BaseException as exc:
        call.end(error=exc)
        raise
    finally:
        otel_context.detach(token)


async def await_in_span(call: Call, function: Callable[..., Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any], /) -> Any:
    """`await function(*args, **kwargs)` with `call`'s span current, as call_in_span."""
    token = call.activate()
    try:
        return await function(*args, **kwargs)
    except BaseException as exc:
        call.end(error=exc)
        raise
    finally:
        otel_context.detach(token)


def traced(telemetry: Telemetry, operation: Operation) -> Callable[..., Any]:
    """A wrapt wrapper for a synchronous SDK method."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        call = telemetry.begin(operation, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        result = call_in_span(call, wrapped, args, kwargs)
        return finish(call, operation, result, kwargs)

    return wrapper


def async_traced(telemetry: Telemetry, operation: Operation) -> Callable[..., Any]:
    """A wrapt wrapper for an `async def` SDK method."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        call = telemetry.begin(operation, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await await_in_span(call, wrapped, args, kwargs)
        return finish(call, operation, result, kwargs, await _async_parsed(call, result, kwargs))

    return wrapper
