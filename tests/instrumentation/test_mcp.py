"""MCP: a real MCP server from the SDK over stdio (apps/mcp_server.py), called through the SDK's client."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from spanhouse.instrumentation import _config, tool
from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation._patching import make_telemetry as make_patch_telemetry
from spanhouse.instrumentation.mcp import MCPInstrumentor
from spanhouse.instrumentation.mcp import patch as mcp_patch

from instr_harness import Telemetry, make_telemetry, set_env

SERVER = Path(__file__).parent / "apps" / "mcp_server.py"
agent_module = importlib.import_module("spanhouse.instrumentation.agent")


class Boom(Exception):
    pass


@pytest.fixture
def tel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    telemetry = make_telemetry()
    monkeypatch.setattr(agent_module, "_tracer", telemetry.tracer_provider.get_tracer("test"))
    MCPInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    yield telemetry
    MCPInstrumentor().uninstrument()


def _with_server(body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Client(StdioServerParameters(command=sys.executable, args=[str(SERVER)])) as client:
            return await body(client)

    return asyncio.run(main())


def test_a_tool_call_is_an_execute_tool_span_and_the_server_continues_its_trace(tel: Telemetry) -> None:
    async def body(client: Client) -> Any:
        weather = await client.call_tool("get_weather", {"city": "Paris"})
        where = await client.call_tool("where_am_i", {})
        return weather, where

    weather, where = _with_server(body)
    assert weather.content[0].text == "sunny in Paris"
    spans = {s.name: s for s in tel.spans()}
    span = spans["execute_tool get_weather"]
    assert span.attributes[sc.OPERATION_NAME] == "execute_tool" and span.attributes[sc.TOOL_NAME] == "get_weather"
    assert span.attributes[sc.MCP_METHOD_NAME] == "tools/call"
    assert sc.TOOL_CALL_ARGUMENTS not in span.attributes and sc.TOOL_CALL_RESULT not in span.attributes
    assert span.status.status_code == StatusCode.UNSET

    # The server's own span for the request is in our trace, under our span (the client SDK's span in
    # between records nothing here: this process has no global tracer provider).
    seen = json.loads(where.content[0].text)
    ours = spans["execute_tool where_am_i"].context
    assert seen["trace_id"] == format(ours.trace_id, "032x")
    assert seen["parent_span_id"] == format(ours.span_id, "016x")
    assert seen["server_span"] == "tools/call where_am_i"


def test_a_failed_tool_result_is_an_error(tel: Telemetry) -> None:
    result = _with_server(lambda client: client.call_tool("broken_weather", {"city": "Paris"}))
    assert result.is_error
    (span,) = tel.spans()
    assert span.attributes[sc.ERROR_TYPE] == "tool_error" and span.status.status_code == StatusCode.ERROR


def test_an_exception_is_recorded_and_raised_unchanged(tel: Telemetry) -> None:
    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise Boom("transport gone")

    wrapper = mcp_patch.call_tool(make_patch_telemetry("mcp", "test", {"tracer_provider": tel.tracer_provider}))
    with pytest.raises(Boom, match="transport gone"):
        asyncio.run(wrapper(failing, None, ("get_weather", {}), {}))
    (span,) = tel.spans()
    assert span.attributes[sc.ERROR_TYPE] == "Boom" and span.status.status_code == StatusCode.ERROR


def test_content_is_recorded_only_when_asked_and_capped(tel: Telemetry) -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true", _config.ENV_CAPTURE_MAX_BYTES: "64"})

    async def body(client: Client) -> Any:
        await client.list_tools()
        return await client.call_tool("get_weather", {"city": "Paris" * 40})

    _with_server(body)
    spans = {s.name: s for s in tel.spans()}
    call = spans["execute_tool get_weather"]
    assert len(call.attributes[sc.TOOL_CALL_ARGUMENTS].encode()) <= 64
    assert call.attributes[sc.TOOL_CALL_ARGUMENTS].endswith("...[truncated]")
    assert call.attributes[sc.TOOL_CALL_RESULT].startswith('{"result":"sunny in Paris')
    listing = spans["tools/list"]
    assert sc.OPERATION_NAME not in listing.attributes  # a listing is not a tool call
    assert listing.attributes[sc.TOOL_DEFINITIONS].startswith('[{"type":"function","name":')


def test_inside_a_framework_tool_span_for_the_same_tool_no_second_span(tel: Telemetry) -> None:
    async def body(client: Client) -> Any:
        with tool("get_weather", call_id="call_7"):
            return await client.call_tool("get_weather", {"city": "Paris"})

    _with_server(body)
    (span,) = [s for s in tel.spans() if s.name != "tools/list"]
    assert span.attributes[sc.TOOL_CALL_ID] == "call_7" and span.attributes[sc.MCP_METHOD_NAME] == "tools/call"


def test_older_sdks_get_the_trace_context_in_meta(tel: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_patch, "_SDK_PROPAGATES", False)

    async def call_tool(name: str, arguments: Any = None, *, meta: dict[str, Any] | None = None) -> Any:
        return meta

    with tel.tracer_provider.get_tracer("test").start_as_current_span("outer") as outer:
        kwargs = mcp_patch._with_trace_context(call_tool, {"meta": {"keep": 1}})
    traceparent = kwargs["meta"]["traceparent"]
    assert kwargs["meta"]["keep"] == 1
    assert traceparent.split("-")[1:3] == [format(outer.get_span_context().trace_id, "032x"),
                                          format(outer.get_span_context().span_id, "016x")]

    async def no_meta(name: str, arguments: Any = None) -> Any:
        return None

    assert mcp_patch._with_trace_context(no_meta, {}) == {}


def test_kill_switch_patches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(**{_config.ENV_ENABLED: "false"})
    MCPInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider)
    try:
        assert not isinstance(vars(ClientSession)["call_tool"], wrapt.FunctionWrapper)
    finally:
        MCPInstrumentor().uninstrument()
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_an_agents_sdk_mcp_tool_is_one_execute_tool_span(tel: Telemetry) -> None:
    """The Agents SDK's function span of an MCP tool and the MCP call inside it are one tool execution."""
    import openai
    from agents import Agent, OpenAIResponsesModel, Runner, set_trace_processors
    from agents.mcp import MCPServerStdio

    from fake_providers import AGENT_ANSWER, AGENT_TOOL_CALL_ID, FakeProviderServer
    from spanhouse.instrumentation.openai_agents import OpenAIAgentsInstrumentor

    set_trace_processors([])  # not the SDK's export to OpenAI
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tel.tracer_provider)

    async def main(server: FakeProviderServer) -> Any:
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0)
        async with MCPServerStdio(params={"command": sys.executable, "args": [str(SERVER)]}) as mcp_server:
            agent = Agent(name="weather_agent", instructions="w", mcp_servers=[mcp_server],
                          model=OpenAIResponsesModel("agent-tools", client))
            return await Runner.run(agent, "Weather in Paris?")

    try:
        with FakeProviderServer() as server:
            assert asyncio.run(main(server)).final_output == AGENT_ANSWER
    finally:
        OpenAIAgentsInstrumentor().uninstrument()
    (span,) = [s for s in tel.spans() if s.attributes.get(sc.OPERATION_NAME) == "execute_tool"]
    assert span.name == "execute_tool get_weather"
    assert span.attributes[sc.TOOL_CALL_ID] == AGENT_TOOL_CALL_ID and span.attributes[sc.MCP_METHOD_NAME] == "tools/call"
