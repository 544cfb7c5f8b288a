"""OpenTelemetry GenAI instrumentor for MCP clients (the `mcp` Python SDK)."""

from __future__ import annotations

from .._patching import Patch
from .._provider import ProviderInstrumentor
from . import patch

_INSTRUMENTS = ("mcp >= 1.0",)

_PATCHES = (
    Patch("mcp.client.session", "ClientSession", "call_tool", patch.call_tool),
    Patch("mcp.client.session", "ClientSession", "list_tools", patch.list_tools),
)


class MCPInstrumentor(ProviderInstrumentor):
    """Traces MCP tool calls (`execute_tool {name}`) and tool listings made through `ClientSession`.

    `instrument(tracer_provider=...)`; it defaults to the global one.
    """

    provider = "mcp"  # for logs: tool spans have no gen_ai.provider.name
    instruments = _INSTRUMENTS
    patches = _PATCHES
