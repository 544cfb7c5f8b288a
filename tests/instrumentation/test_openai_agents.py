"""OpenAI Agents SDK: the real Runner against the local fake OpenAI server, one handoff and one tool call.

The SDK's own processors are cleared first (its default one exports to OpenAI's dashboard, which a test
must not reach); ours is added by the instrumentor, as under `opentelemetry-instrument`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from agents import (Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool,
                    set_trace_processors)
from agents.tool_context import ToolContext
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _config
from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation.openai import OpenAIInstrumentor
from spanhouse.instrumentation.openai_agents import OpenAIAgentsInstrumentor

from collector_harness import start_collector
from fake_providers import (AGENT_ANSWER, AGENT_TOOL_CALL_ID, OPENAI_USAGE, RESPONSES_USAGE, TOOL_ARGUMENTS,
                            FakeProviderServer)
from instr_harness import Telemetry, make_telemetry, set_env


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@function_tool(name_override="get_weather")  # the name the fake model calls
def broken_weather(city: str) -> str:
    """Always fails."""
    raise RuntimeError("weather service down")


@pytest.fixture(autouse=True, scope="module")
def no_export_to_openai() -> None:
    set_trace_processors([])


@pytest.fixture
def sdk() -> Iterator[Telemetry]:
    tel = make_telemetry()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    yield tel
    OpenAIAgentsInstrumentor().uninstrument()


@pytest.fixture
def sdk_and_openai(sdk: Telemetry) -> Iterator[Telemetry]:
    OpenAIInstrumentor().instrument(tracer_provider=sdk.tracer_provider)
    yield sdk
    OpenAIInstrumentor().uninstrument()


def _agents(server: FakeProviderServer, chat_completions: bool = False, tool: Any = get_weather) -> Agent:
    client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test-key", max_retries=0)

    def model(name: str) -> Any:
        return OpenAIChatCompletionsModel(name, client) if chat_completions else OpenAIResponsesModel(name, client)

    weather = Agent(name="weather_agent", instructions="Answer with the weather.", tools=[tool],
                    model=model("agent-tools"))
    return Agent(name="triage", instructions="Hand weather questions off.", handoffs=[weather],
                 model=model("agent-handoff"))


def _run(server: FakeProviderServer, **kwargs: Any) -> Any:
    return asyncio.run(Runner.run(_agents(server, **kwargs), "Weather in Paris?"))


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _parent(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    (parent,) = [s for s in spans if span.parent is not None and s.context.span_id == span.parent.span_id]
    return parent


def test_a_run_with_a_handoff_and_a_tool(sdk_and_openai: Telemetry, fake_server: FakeProviderServer) -> None:
    assert _run(fake_server).final_output == AGENT_ANSWER
    spans = sdk_and_openai.spans()
    (workflow,) = _named(spans, "invoke_workflow Agent workflow")
    assert workflow.parent is None and workflow.attributes[sc.OPERATION_NAME] == "invoke_workflow"
    assert {s.context.trace_id for s in spans} == {workflow.context.trace_id}
    (triage,) = _named(spans, "invoke_agent triage")
    (weather,) = _named(spans, "invoke_agent weather_agent")
    assert triage.attributes[sc.AGENT_NAME] == "triage" and weather.attributes[sc.OPERATION_NAME] == "invoke_agent"

    (handoff,) = _named(spans, "handoff weather_agent")
    assert handoff.attributes[sc.HANDOFF_FROM_AGENT] == "triage"
    assert handoff.attributes[sc.HANDOFF_TO_AGENT] == "weather_agent"
    assert sc.OPERATION_NAME not in handoff.attributes  # not a GenAI call

    (tool_span,) = _named(spans, "execute_tool get_weather")
    assert tool_span.attributes[sc.TOOL_CALL_ID] == AGENT_TOOL_CALL_ID
    assert sc.TOOL_CALL_ARGUMENTS not in tool_span.attributes
    ancestors, node = [], tool_span
    while node.parent is not None:
        node = _parent(node, spans)
        ancestors.append(node.name)
    assert weather.name in ancestors and workflow.name == ancestors[-1]

    clients = [s for s in spans if s.instrumentation_scope.name.endswith(".openai")]
    assert len(clients) == 3  # hand off, call the tool, answer
    for client in clients:
        ours = _parent(client, spans)
        assert ours.instrumentation_scope.name.endswith(".openai_agents")
        assert ours.attributes[sc.OPERATION_NAME] == "chat" and ours.kind == SpanKind.INTERNAL
        assert ours.attributes[sc.RESPONSE_ID] == client.attributes[sc.RESPONSE_ID]
        assert sc.USAGE_INPUT_TOKENS not in ours.attributes
        assert client.attributes[sc.USAGE_INPUT_TOKENS] == RESPONSES_USAGE["input_tokens"]


def test_alone_the_response_span_is_the_call(sdk: Telemetry, fake_server: FakeProviderServer) -> None:
    _run(fake_server)
    chats = [s for s in sdk.spans() if s.attributes.get(sc.OPERATION_NAME) == "chat"]
    assert len(chats) == 3
    for span in chats:
        assert span.kind == SpanKind.CLIENT and span.name == "chat " + span.attributes[sc.RESPONSE_MODEL]
        assert span.attributes[sc.USAGE_INPUT_TOKENS] == RESPONSES_USAGE["input_tokens"]
        assert span.attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 20


def test_replacing_the_sdks_processors_keeps_ours(sdk: Telemetry, fake_server: FakeProviderServer) -> None:
    set_trace_processors([])  # how an app stops the SDK's export to OpenAI
    _run(fake_server)
    assert _named(sdk.spans(), "invoke_agent weather_agent")


def test_content_is_recorded_only_when_asked(sdk: Telemetry, fake_server: FakeProviderServer) -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true"})
    from agents import RunConfig

    asyncio.run(Runner.run(_agents(fake_server), "Weather?", run_config=RunConfig(trace_include_sensitive_data=True)))
    (tool_span,) = _named(sdk.spans(), "execute_tool get_weather")
    assert json.loads(tool_span.attributes[sc.TOOL_CALL_ARGUMENTS]) == TOOL_ARGUMENTS
    assert tool_span.attributes[sc.TOOL_CALL_RESULT] == "sunny in Paris"


def test_a_failing_tool_marks_its_span(sdk: Telemetry, fake_server: FakeProviderServer) -> None:
    _run(fake_server, tool=broken_weather)  # the SDK hands the error to the model and goes on
    (tool_span,) = _named(sdk.spans(), "execute_tool get_weather")
    assert tool_span.status.status_code == StatusCode.ERROR and tool_span.attributes[sc.ERROR_TYPE]


def test_kill_switch_and_uninstrument(fake_server: FakeProviderServer) -> None:
    original = ToolContext.__dict__["from_agent_context"]
    set_env(**{_config.ENV_ENABLED: "false"})
    tel = make_telemetry()
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    _run(fake_server)
    assert tel.spans() == [] and ToolContext.__dict__["from_agent_context"] is original
    OpenAIAgentsInstrumentor().uninstrument()
    set_env(**{_config.ENV_ENABLED: None})
    OpenAIAgentsInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    OpenAIAgentsInstrumentor().uninstrument()
    assert ToolContext.__dict__["from_agent_context"] is original
    _run(fake_server)
    assert tel.spans() == []  # the processor stays registered (the SDK cannot remove one) but is inert


@pytest.mark.parametrize("chat_completions", [False, True], ids=["responses", "chat-completions"])
def test_a_run_is_counted_once_in_the_collector(chat_completions: bool, fake_server: FakeProviderServer,
                                                tmp_path: Path) -> None:
    """Responses spans are grouped with the client's by response id, generation spans (no id) by model and
    tokens: either way genai_calls holds each of the three model calls once."""
    running = start_collector(tmp_path / "store")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=running.collector.http_url)))
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        _run(fake_server, chat_completions=chat_completions)
        assert provider.force_flush(30_000)
        chat_spans = running.query("SELECT SpanId, DuplicateOf FROM spans WHERE Operation = 'chat'")
        assert len(chat_spans) == 6, chat_spans
        usage = OPENAI_USAGE["prompt_tokens"] if chat_completions else RESPONSES_USAGE["input_tokens"]
        calls = running.query("SELECT Operation, count(), sum(InputTokens) FROM genai_calls "
                              "GROUP BY Operation ORDER BY Operation")
        assert calls == [("chat", 3, 3 * usage), ("execute_tool", 1, None), ("invoke_agent", 2, None),
                         ("invoke_workflow", 1, None)], calls
    finally:
        OpenAIAgentsInstrumentor().uninstrument()
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
        running.collector.stop()
