"""A small MCP server over stdio for tests/instrumentation/test_mcp.py.

It traces with an SDK tracer provider of its own (nothing exported): its tools report the trace they run
in, so the test can see that the server continued the client's trace from the request's `_meta`.
"""

import json

from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

trace.set_tracer_provider(TracerProvider())
server = MCPServer("weather")


@server.tool()
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@server.tool()
def broken_weather(city: str) -> str:
    """Always fails."""
    raise RuntimeError("weather service down")


@server.tool()
def where_am_i() -> str:
    """The trace and parent span of the server's span for this request, as JSON."""
    span = trace.get_current_span()
    parent = getattr(span, "parent", None)
    return json.dumps({"trace_id": format(span.get_span_context().trace_id, "032x"),
                       "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
                       "server_span": getattr(span, "name", None)})


if __name__ == "__main__":
    server.run("stdio")
