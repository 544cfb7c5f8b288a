"""The SDK methods patched besides registering the processor.

- `ToolContext.from_agent_context`: the SDK's function span carries the
  tool's name, input and output but not the model's call id; the
  `ToolContext` it builds inside that span does. Reading it there puts
  `gen_ai.tool.call.id` on the `execute_tool` span that is current.
- `SynchronousMultiTracingProcessor.set_processors` (what
  `agents.set_trace_processors` calls): replacing the SDK's processors, the
  usual way to stop its export to OpenAI, keeps ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from .. import _semconv as sc
from .._telemetry import Telemetry, log_once


def from_agent_context(telemetry: Telemetry) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            span = trace.get_current_span()
            attributes = getattr(span, "attributes", None) or {}
            call_id = getattr(result, "tool_call_id", None)
            if attributes.get(sc.OPERATION_NAME) == sc.OP_EXECUTE_TOOL and isinstance(call_id, str) \
                    and sc.TOOL_CALL_ID not in attributes:
                span.set_attribute(sc.TOOL_CALL_ID, call_id)
        except Exception as exc:  # noqa: BLE001 - the tool runs on untraced
            log_once("openai_agents.from_agent_context", exc)
        return result

    return wrapper


# The processor the instrumentor registered (one per process: the SDK cannot remove a processor).
PROCESSOR: list[Any] = []


def set_processors(telemetry: Telemetry) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        try:
            processors = list(args[0] if args else kwargs.pop("processors"))
            args = ()
            ours = PROCESSOR[0] if PROCESSOR else None
            if ours is not None and ours.active and ours not in processors:
                processors.append(ours)
            kwargs["processors"] = processors
        except Exception as exc:  # noqa: BLE001 - the SDK gets the call as made
            log_once("openai_agents.set_processors", exc)
        return wrapped(*args, **kwargs)

    return wrapper
