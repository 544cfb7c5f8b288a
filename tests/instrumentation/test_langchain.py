"""LangChain and LangGraph: real ChatOpenAI against the local fake OpenAI server, a real LangGraph agent.

The callback handler is added by the instrumentor alone (no `callbacks=` anywhere), as under
`opentelemetry-instrument`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt
from langchain_core.callbacks.manager import CallbackManager
from langchain_core.tools import tool as lc_tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _config
from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation.langchain import LangChainInstrumentor
from spanhouse.instrumentation.openai import OpenAIInstrumentor

from collector_harness import start_collector
from fake_providers import AGENT_ANSWER, AGENT_TOOL_CALL_ID, OPENAI_USAGE, TOOL_ARGUMENTS, FakeProviderServer
from instr_harness import Telemetry, make_telemetry, set_env


@lc_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@lc_tool
def broken_tool(city: str) -> str:
    """Always fails."""
    raise RuntimeError("weather service down")


@pytest.fixture
def lc() -> Iterator[Telemetry]:
    """Our LangChain instrumentor alone (no provider instrumentor), exporting to memory."""
    tel = make_telemetry()
    LangChainInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    yield tel
    LangChainInstrumentor().uninstrument()


@pytest.fixture
def lc_and_openai(lc: Telemetry) -> Iterator[Telemetry]:
    OpenAIInstrumentor().instrument(tracer_provider=lc.tracer_provider)
    yield lc
    OpenAIInstrumentor().uninstrument()


def _model(server: FakeProviderServer, model: str = "agent-tools") -> ChatOpenAI:
    return ChatOpenAI(model=model, base_url=server.openai_base_url, api_key="test-key", max_retries=0)


def _graph(server: FakeProviderServer, tools: list[Any]) -> Any:
    """The usual tool-calling loop: a model node, a ToolNode, back to the model until it answers."""
    model = _model(server).bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", call_model)
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="weather_agent")


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in spans}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_a_graph_with_a_tool_is_one_agent_span_over_its_model_calls_and_tool(
        lc_and_openai: Telemetry, fake_server: FakeProviderServer) -> None:
    result = _graph(fake_server, [get_weather]).invoke({"messages": [("user", "Weather in Paris?")]})
    assert result["messages"][-1].content == AGENT_ANSWER
    spans = lc_and_openai.spans()
    (root,) = _named(spans, "invoke_agent weather_agent")
    assert root.parent is None and root.kind == SpanKind.INTERNAL
    assert root.attributes[sc.OPERATION_NAME] == "invoke_agent" and root.attributes[sc.AGENT_NAME] == "weather_agent"
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}

    (tool_span,) = _named(spans, "execute_tool get_weather")
    assert tool_span.attributes[sc.OPERATION_NAME] == "execute_tool"
    assert tool_span.attributes[sc.TOOL_CALL_ID] == AGENT_TOOL_CALL_ID
    assert tool_span.attributes[sc.TOOL_DESCRIPTION] == "Current weather for a city."
    assert sc.TOOL_CALL_ARGUMENTS not in tool_span.attributes  # content is opt-in
    assert _ancestors(tool_span, spans)[-1] == root.name

    model_spans = [s for s in spans if s.name == "chat agent-tools"]
    ours = [s for s in model_spans if s.instrumentation_scope.name.endswith(".langchain")]
    clients = [s for s in model_spans if s.instrumentation_scope.name.endswith(".openai")]
    assert len(ours) == len(clients) == 2  # two turns: the tool call, then the answer
    for client in clients:
        (parent,) = [s for s in ours if s.context.span_id == client.parent.span_id]
        # The same call, told apart by nothing but who made it: dedup groups them by response id...
        assert parent.attributes[sc.RESPONSE_ID] == client.attributes[sc.RESPONSE_ID]
        assert parent.attributes[sc.PROVIDER_NAME] == client.attributes[sc.PROVIDER_NAME] == "openai"
        # ...and only the provider's CLIENT span carries the usage.
        assert client.kind == SpanKind.CLIENT and client.attributes[sc.USAGE_INPUT_TOKENS] == OPENAI_USAGE["prompt_tokens"]
        assert parent.kind == SpanKind.INTERNAL and sc.USAGE_INPUT_TOKENS not in parent.attributes
        assert root.name in _ancestors(parent, spans)
    assert [s.attributes[sc.RESPONSE_FINISH_REASONS] for s in sorted(ours, key=lambda s: s.start_time)] == [
        ("tool_calls",), ("stop",)]


def test_without_a_provider_instrumentor_the_model_span_is_the_call(
        lc: Telemetry, fake_server: FakeProviderServer) -> None:
    _model(fake_server, "gpt-4o").invoke("Hi")
    (span,) = lc.spans()
    assert span.name == "chat gpt-4o" and span.kind == SpanKind.CLIENT
    assert span.attributes[sc.PROVIDER_NAME] == "openai" and span.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert span.attributes[sc.RESPONSE_MODEL] == "gpt-4o-2025-01-01"
    assert span.attributes[sc.RESPONSE_ID] == "chatcmpl-1"
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == OPENAI_USAGE["prompt_tokens"]
    assert span.attributes[sc.USAGE_OUTPUT_TOKENS] == OPENAI_USAGE["completion_tokens"]
    assert span.attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert span.attributes[sc.USAGE_REASONING_OUTPUT_TOKENS] == 2


def test_async_graph_nests_the_same_way(lc_and_openai: Telemetry, fake_server: FakeProviderServer) -> None:
    asyncio.run(_graph(fake_server, [get_weather]).ainvoke({"messages": [("user", "Weather?")]}))
    spans = lc_and_openai.spans()
    (root,) = _named(spans, "invoke_agent weather_agent")
    (tool_span,) = _named(spans, "execute_tool get_weather")
    assert root.name in _ancestors(tool_span, spans)
    clients = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(clients) == 2
    for client in clients:
        assert _ancestors(client, spans)[:1] == ["chat agent-tools"] and root.name in _ancestors(client, spans)


def test_content_is_recorded_only_when_asked_and_capped(
        lc: Telemetry, fake_server: FakeProviderServer) -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true", _config.ENV_CAPTURE_MAX_BYTES: "200"})
    _graph(fake_server, [get_weather]).invoke({"messages": [("user", "Weather in Paris? " + "x" * 500)]})
    spans = lc.spans()
    (tool_span,) = _named(spans, "execute_tool get_weather")
    assert json.loads(tool_span.attributes[sc.TOOL_CALL_ARGUMENTS]) == TOOL_ARGUMENTS
    assert tool_span.attributes[sc.TOOL_CALL_RESULT] == "sunny in Paris"
    first = min(_named(spans, "chat agent-tools"), key=lambda s: s.start_time)
    captured = first.attributes[sc.INPUT_MESSAGES]
    assert len(captured.encode()) <= 200 and captured.endswith("...[truncated]")
    assert json.loads(first.attributes[sc.OUTPUT_MESSAGES])[0]["parts"][0]["name"] == "get_weather"


def test_a_failing_tool_marks_its_span(lc: Telemetry, fake_server: FakeProviderServer) -> None:
    with pytest.raises(RuntimeError, match="weather service down"):
        broken_tool.invoke({"city": "Paris"})
    (span,) = lc.spans()
    assert span.name == "execute_tool broken_tool"
    assert span.attributes[sc.ERROR_TYPE] == "RuntimeError" and span.status.status_code == StatusCode.ERROR


def test_kill_switch_patches_nothing(fake_server: FakeProviderServer) -> None:
    set_env(**{_config.ENV_ENABLED: "false"})
    tel = make_telemetry()
    LangChainInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    try:
        assert not isinstance(vars(CallbackManager)["configure"], wrapt.FunctionWrapper)
        _model(fake_server, "gpt-4o").invoke("Hi")
        assert tel.spans() == []
    finally:
        LangChainInstrumentor().uninstrument()


def test_uninstrument_restores_configure_and_stops_spans(fake_server: FakeProviderServer) -> None:
    original = vars(CallbackManager)["configure"]
    tel = make_telemetry()
    LangChainInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    assert vars(CallbackManager)["configure"] is not original
    LangChainInstrumentor().uninstrument()
    assert vars(CallbackManager)["configure"] is original
    _model(fake_server, "gpt-4o").invoke("Hi")
    assert tel.spans() == []


def test_a_graph_call_is_counted_once_in_the_collector(fake_server: FakeProviderServer, tmp_path: Path) -> None:
    """LangChain's model span over the openai instrumentor's CLIENT span: genai_calls holds each call once."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    running = start_collector(tmp_path / "store")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=running.collector.http_url)))
    LangChainInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    try:
        _graph(fake_server, [get_weather]).invoke({"messages": [("user", "Weather in Paris?")]})
        assert provider.force_flush(30_000)
        chat_spans = running.query("SELECT SpanId, DuplicateOf, ScopeName FROM spans WHERE Operation = 'chat'")
        assert len(chat_spans) == 4, chat_spans  # two turns, each seen by LangChain and by the client
        calls = running.query("SELECT Operation, count(), sum(InputTokens), sum(OutputTokens) FROM genai_calls "
                              "GROUP BY Operation ORDER BY Operation")
        assert calls == [("chat", 2, 2 * OPENAI_USAGE["prompt_tokens"], 2 * OPENAI_USAGE["completion_tokens"]),
                         ("execute_tool", 1, None, None), ("invoke_agent", 1, None, None)], calls
        counted = {span for (span,) in running.query("SELECT SpanId FROM genai_calls WHERE Operation = 'chat'")}
        # The counted span is the client's (innermost); LangChain's names it as the one it duplicates.
        assert {s for s, _, scope in chat_spans if scope.endswith(".openai")} == counted
        assert sorted(d in counted for _, d, scope in chat_spans if scope.endswith(".langchain")) == [True, True]
    finally:
        LangChainInstrumentor().uninstrument()
        OpenAIInstrumentor().uninstrument()
        provider.shutdown()
        running.collector.stop()


def test_hostile_callback_arguments_never_break_the_run(lc: Telemetry) -> None:
    """Callbacks with shapes LangChain never sends (other handlers' managers, custom runnables) cost spans at
    most, never an exception in the app."""
    from uuid import uuid4

    handler = LangChainInstrumentor()._handler  # the instrumentor is a singleton
    handler.on_chain_end({}, run_id=uuid4())  # never started
    handler.on_llm_end(object(), run_id=uuid4())
    run = uuid4()
    handler.on_tool_start({"name": 5, "id": None}, None, run_id=run, parent_run_id=uuid4(),  # type: ignore[arg-type]
                          metadata={"ls_provider": ["x"]}, tool_call_id=object())
    handler.on_tool_end(object(), run_id=run)
    model = uuid4()
    handler.on_chat_model_start(None, [[object()]], run_id=model, metadata={"ls_model_name": 7, "ls_stop": [1]},
                                invocation_params="not a dict")
    handler.on_llm_end({"generations": "nope", "llm_output": 3}, run_id=model)
    names = sorted(s.name for s in lc.spans())
    assert names == ["chat", "execute_tool tool"]


def test_a_streamed_call_without_a_response_id_is_still_one_call(
        lc_and_openai: Telemetry, fake_server: FakeProviderServer) -> None:
    """LangChain's stream gives no response id to group by: its span is then no GenAI call at all."""
    model = ChatOpenAI(model="gpt-4o", base_url=fake_server.openai_base_url, api_key="test-key", max_retries=0,
                       stream_usage=True)
    assert "".join(str(chunk.content) for chunk in model.stream("Hi")) == "Hello there!"
    spans = lc_and_openai.spans()
    assert sorted(s.name for s in spans) == ["chat gpt-4o", "chat gpt-4o"]
    (call,) = [s for s in spans if sc.OPERATION_NAME in s.attributes]  # what genai_calls counts
    assert call.kind == SpanKind.CLIENT and call.attributes[sc.USAGE_INPUT_TOKENS] == OPENAI_USAGE["prompt_tokens"]


def test_a_graph_not_marked_by_langgraph_is_found_by_its_nodes(lc: Telemetry) -> None:
    """LangGraph versions that do not mark the graph's run (`ls_integration`): its first node makes it one."""
    from uuid import uuid4

    handler = LangChainInstrumentor()._handler
    graph, node, other = uuid4(), uuid4(), uuid4()
    handler.on_chain_start(None, {}, run_id=graph, metadata={}, name="planner")
    handler.on_chain_start(None, {}, run_id=node, parent_run_id=graph, metadata={"langgraph_node": "agent"},
                           name="agent")
    handler.on_chain_end({}, run_id=node)
    handler.on_chain_end({}, run_id=graph)
    handler.on_chain_start(None, {}, run_id=other, metadata={}, name="RunnableSequence")  # no nodes: a chain
    handler.on_chain_end({}, run_id=other)
    spans = {s.name: s for s in lc.spans()}
    assert set(spans) == {"invoke_agent planner", "chain agent", "chain RunnableSequence"}
    assert spans["invoke_agent planner"].attributes[sc.OPERATION_NAME] == "invoke_agent"
    assert sc.OPERATION_NAME not in spans["chain RunnableSequence"].attributes
