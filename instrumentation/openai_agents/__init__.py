"""OpenTelemetry GenAI instrumentor for the OpenAI Agents SDK (`openai-agents`, imported as `agents`)."""

from __future__ import annotations

from typing import Any

from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("openai-agents >= 0.2",)

_PATCHES = (
    Patch("agents.tool_context", "ToolContext", "from_agent_context", patch.from_agent_context),
    Patch("agents.tracing.provider", "SynchronousMultiTracingProcessor", "set_processors", patch.set_processors),
)


class OpenAIAgentsInstrumentor(ProviderInstrumentor):
    """Adds a tracing processor to the Agents SDK: workflows, agents, tools, handoffs and model calls.

    `instrument(tracer_provider=...)`; it defaults to the global one. The SDK's own processors (its export
    to the OpenAI dashboard included) keep running; see docs/instrumentation.md to turn that export off.
    """

    provider = "openai_agents"  # the framework, for logs: model spans say gen_ai.provider.name=openai
    instruments = _INSTRUMENTS
    patches = _PATCHES

    def _start(self, telemetry: Any) -> bool:
        from agents.tracing import add_trace_processor, get_trace_provider

        from .processor import SpanProcessor

        # The SDK can add a processor but not remove one: one processor per process, inert when uninstrumented.
        if not patch.PROCESSOR:
            patch.PROCESSOR.append(SpanProcessor(telemetry.tracer))
        processor = patch.PROCESSOR[0]
        processor.runs.tracer = telemetry.tracer
        processor.active = True
        registered = getattr(getattr(get_trace_provider(), "_multi_processor", None), "_processors", None)
        if registered is None or processor not in registered:
            add_trace_processor(processor)
        return True

    def _stop(self) -> None:
        processor = patch.PROCESSOR[0]
        processor.active = False
        processor.runs.clear()
