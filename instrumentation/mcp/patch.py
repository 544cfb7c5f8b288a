"""Wrappers for the MCP client session: `call_tool` and `list_tools`.

`call_tool` becomes an `execute_tool {name}` span, or, when the current span is
already the `execute_tool` span of the same tool (an agent framework's tool
wrapping an MCP tool), that span gets the MCP attributes instead: one tool
execution, one span. `list_tools` becomes a `tools/list` span without a GenAI
operation (listing is not a call).

Trace context reaches the server in the request's `params._meta`
(`traceparent` / `tracestate`, as the MCP specification's SEP-414 describes).
MCP SDK 2 and later inject it themselves, and their servers continue the
trace from it; for older SDKs we add it to the `meta` argument of `call_tool`.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import _config
from .. import _semconv as sc
from .._content import to_json
from .._fields import field
from .._telemetry import Telemetry, log_once
from ..agent import current_context_attributes

METHOD_CALL_TOOL = "tools/call"
METHOD_LIST_TOOLS = "tools/list"
# Whether the SDK injects trace context into `_meta` itself (mcp >= 2 has `mcp.shared._otel`). Looked up
# on the first call, not on import: loading this module must not import the SDK.
_SDK_PROPAGATES: bool | None = None


def _sdk_propagates() -> bool:
    global _SDK_PROPAGATES
    if _SDK_PROPAGATES is None:
        try:
            _SDK_PROPAGATES = importlib.util.find_spec("mcp.shared._otel") is not None
        except (ImportError, ValueError):
            _SDK_PROPAGATES = False
    return _SDK_PROPAGATES


def _argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _with_trace_context(wrapped: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with the current trace context added to `meta`, for SDKs that do not send it themselves."""
    if _sdk_propagates():
        return kwargs
    try:
        if "meta" not in inspect.signature(wrapped).parameters:
            return kwargs  # too old to carry `_meta` from the client at all
    except (TypeError, ValueError):
        return kwargs
    meta = kwargs.get("meta")
    if meta is not None and not isinstance(meta, dict):
        return kwargs  # a typed meta object of the caller's: leave it as it is
    carrier = dict(meta or {})
    propagate.inject(carrier)
    return {**kwargs, "meta": carrier}


def _result_text(result: Any) -> Any:
    structured = field(result, "structuredContent") or field(result, "structured_content")
    if structured is not None:
        return structured
    texts = [field(part, "text") for part in field(result, "content") or () if field(part, "type") == "text"]
    return texts[0] if len(texts) == 1 else texts


def _is_error(result: Any) -> bool:
    return field(result, "isError") is True or field(result, "is_error") is True


def call_tool(telemetry: Telemetry) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        span = None
        own = False
        token = None
        try:
            name = _argument(args, kwargs, 0, "name")
            name = name if isinstance(name, str) else "tool"
            current = trace.get_current_span()
            attributes = getattr(current, "attributes", None) or {}
            if (current.is_recording() and attributes.get(sc.OPERATION_NAME) == sc.OP_EXECUTE_TOOL
                    and attributes.get(sc.TOOL_NAME) == name):
                span = current
                span.set_attribute(sc.MCP_METHOD_NAME, METHOD_CALL_TOOL)
            else:
                span = telemetry.tracer.start_span(f"{sc.OP_EXECUTE_TOOL} {name}", kind=SpanKind.INTERNAL, attributes={
                    sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: name, sc.MCP_METHOD_NAME: METHOD_CALL_TOOL,
                    **current_context_attributes()})
                own = True
                settings = _config.SETTINGS
                arguments = _argument(args, kwargs, 1, "arguments")
                if settings.capture_content and arguments is not None:
                    span.set_attribute(sc.TOOL_CALL_ARGUMENTS, to_json(arguments, settings.capture_max_bytes))
                token = otel_context.attach(trace.set_span_in_context(span))
            kwargs = _with_trace_context(wrapped, kwargs)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
            log_once("mcp.call_tool.begin", exc)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if own and span is not None:
                span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.end()
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        if own and span is not None:
            try:
                if _is_error(result):
                    # The tool failed on the server; the call itself worked, so nothing was raised here.
                    span.set_attribute(sc.ERROR_TYPE, "tool_error")
                    span.set_status(Status(StatusCode.ERROR))
                settings = _config.SETTINGS
                if settings.capture_content:
                    span.set_attribute(sc.TOOL_CALL_RESULT, to_json(_result_text(result), settings.capture_max_bytes))
            except Exception as exc:  # noqa: BLE001
                log_once("mcp.call_tool.end", exc)
            span.end()
        return result

    return wrapper


def list_tools(telemetry: Telemetry) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        with telemetry.tracer.start_as_current_span(METHOD_LIST_TOOLS, kind=SpanKind.INTERNAL,
                                                    attributes={sc.MCP_METHOD_NAME: METHOD_LIST_TOOLS},
                                                    record_exception=False) as span:
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
                raise
            try:
                settings = _config.SETTINGS
                tools = field(result, "tools") or []
                if settings.capture_content and tools:
                    definitions = [{"type": "function", "name": field(t, "name"),
                                    "description": field(t, "description"),
                                    "parameters": field(t, "inputSchema") or field(t, "input_schema")} for t in tools]
                    span.set_attribute(sc.TOOL_DEFINITIONS, to_json(definitions, settings.capture_max_bytes))
            except Exception as exc:  # noqa: BLE001
                log_once("mcp.list_tools", exc)
            return result

    return wrapper
