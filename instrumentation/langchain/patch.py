"""Wrappers for `CallbackManager.configure` and `AsyncCallbackManager.configure`.

Every LangChain run (a chat model call, a tool, a chain, a LangGraph graph and
each of its nodes) gets its callback manager from one of these two class
methods. Adding our handler to the manager they return, as an inheritable
handler, puts it on every run and every child run without the app passing
`callbacks=` anywhere.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from .._telemetry import Telemetry, log_once

# One handler per instrumentation (per Telemetry), shared by the sync and async managers.
_handlers: weakref.WeakKeyDictionary[Telemetry, Any] = weakref.WeakKeyDictionary()


def handler_for(telemetry: Telemetry) -> Any:
    handler = _handlers.get(telemetry)
    if handler is None:
        from .handler import SpanCallbackHandler  # langchain_core is installed: we are patching it

        handler = _handlers[telemetry] = SpanCallbackHandler(telemetry.tracer)
    return handler


def _add_handler(telemetry: Telemetry) -> Callable[..., Any]:
    handler = handler_for(telemetry)

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            if handler.active and handler not in manager.inheritable_handlers:
                manager.add_handler(handler, inherit=True)
        except Exception as exc:  # noqa: BLE001 - the run goes on untraced
            log_once("langchain.configure", exc)
        return manager

    return wrapper


def configure(telemetry: Telemetry) -> Callable[..., Any]:
    return _add_handler(telemetry)


def async_configure(telemetry: Telemetry) -> Callable[..., Any]:
    return _add_handler(telemetry)
