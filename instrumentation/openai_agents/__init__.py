"""OpenTelemetry GenAI instrumentor for the OpenAI Agents SDK (`openai-agents`, imported as `agents`)."""

from __future__ import annotations

from typing import Any

from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("openai-agents >= 0.2",)

_PATCHES = (
    Patch("agents.tool_context", "ToolContext", "from_agent_context", patch.from_agent_context),
)


class OpenAIAgentsInstrumentor(ProviderInstrumentor):
    """Adds a tracing processor to the Agents SDK: workflows, agents, tools, handoffs and model calls.

    `instrument(tracer_provider=...)`; it defaults to the global one. The SDK's own processors (its export
    to the OpenAI dashboard included) keep running; see docs/instrumentation.md to turn that export off.
    """

    provider = "openai_agents"  # the framework, for logs: model spans say gen_ai.provider.name=openai
    instruments = _INSTRUMENTS
    patches = _PATCHES
    # The SDK can add a processor but not remove one: one processor per process, inert when uninstrumented.
    _processor: Any = None

    def _start(self, telemetry: Any) -> bool:
        from agents.tracing import add_trace_processor

        from .processor import SpanProcessor

        cls = type(self)
        if cls._processor is None:
            cls._processor = SpanProcessor(telemetry.tracer)
            add_trace_processor(cls._processor)
        else:
            cls._processor.runs.tracer = telemetry.tracer
        cls._processor.active = True
        return True

    def _stop(self) -> None:
        processor = type(self)._processor
        processor.active = False
        processor.runs.clear()
