"""The one SDK method patched: `ToolContext.from_agent_context`, for the tool call id.

The SDK's function span carries the tool's name, input and output but not the
model's call id; the `ToolContext` it builds inside that span does. Reading it
there puts `gen_ai.tool.call.id` on the `execute_tool` span that is current.
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
