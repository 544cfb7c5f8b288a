"""OpenTelemetry GenAI instrumentor for LangChain and LangGraph (`langchain-core`)."""

from __future__ import annotations

from typing import Any

from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("langchain-core >= 0.3",)

_PATCHES = (
    Patch("langchain_core.callbacks.manager", "CallbackManager", "configure", patch.configure),
    Patch("langchain_core.callbacks.manager", "AsyncCallbackManager", "configure", patch.async_configure),
)


class LangChainInstrumentor(ProviderInstrumentor):
    """Traces LangChain runs and LangGraph graphs: agents, tools, chains and model calls.

    `instrument(tracer_provider=...)`; it defaults to the global one. The model calls' own CLIENT spans
    come from the provider's instrumentor (`spanhouse_openai`, ...), nested under these spans.
    """

    provider = "langchain"  # the framework, for logs: each model span names its own gen_ai.provider.name
    instruments = _INSTRUMENTS
    patches = _PATCHES

    def _start(self, telemetry: Any) -> bool:
        self._handler = patch.handler_for(telemetry)
        self._handler.active = True
        return True

    def _stop(self) -> None:
        # Managers configured before uninstrument may still hold the handler: make it inert.
        self._handler.active = False
        self._handler.runs.clear()
