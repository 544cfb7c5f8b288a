"""agent() / tool() spans, context() stamping across threads and tasks, and the kill switch."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import importlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import ContextSpanProcessor, _config, agent, context, tool
from spanhouse.instrumentation import _semconv as sc

from instr_harness import set_env

agent_module = importlib.import_module("spanhouse.instrumentation.agent")  # the package attribute is the function


@pytest.fixture(autouse=True)
def agent_tracer(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The helpers use the global tracer provider; point them at the test's provider instead.
    monkeypatch.setattr(agent_module, "_tracer", telemetry.tracer_provider.get_tracer("test"))


def _by_name(telemetry: Any) -> dict[str, Any]:
    return {span.name: span for span in telemetry.spans()}


def test_agent_and_tool_context_managers_nest(telemetry: Any, openai_client: openai.OpenAI) -> None:
    with agent("planner", id="agent-1", description="plans trips"):
        with tool("get_weather", call_id="call_1", arguments={"city": "Paris"}) as scope:
            scope.set_result({"temp": 18})
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    spans = _by_name(telemetry)
    root, tool_span, llm = spans["invoke_agent planner"], spans["execute_tool get_weather"], spans["chat gpt-4o"]
    assert root.kind is SpanKind.INTERNAL
    assert root.attributes[sc.OPERATION_NAME] == "invoke_agent"
    assert root.attributes[sc.AGENT_NAME] == "planner" and root.attributes[sc.AGENT_ID] == "agent-1"
    assert tool_span.attributes[sc.OPERATION_NAME] == "execute_tool"
    assert tool_span.attributes[sc.TOOL_NAME] == "get_weather"
    assert tool_span.attributes[sc.TOOL_CALL_ID] == "call_1"
    assert tool_span.attributes[sc.TOOL_TYPE] == "function"
    assert tool_span.parent.span_id == root.context.span_id
    assert llm.parent.span_id == root.context.span_id
    # Arguments and results are content: off unless opted in.
    assert sc.TOOL_CALL_ARGUMENTS not in tool_span.attributes
    assert sc.TOOL_CALL_RESULT not in tool_span.attributes


def test_tool_decorator_records_io_on_opt_in(capture_content: None, telemetry: Any) -> None:
    @tool("add")
    def add(a: int, b: int = 2) -> int:
        return a + b

    @tool("async_add")
    async def async_add(a: int, b: int) -> int:
        return a + b

    assert add(1) == 3
    assert asyncio.run(async_add(2, b=5)) == 7
    spans = _by_name(telemetry)
    assert json.loads(spans["execute_tool add"].attributes[sc.TOOL_CALL_ARGUMENTS]) == {"a": 1}
    assert spans["execute_tool add"].attributes[sc.TOOL_CALL_RESULT] == "3"
    assert json.loads(spans["execute_tool async_add"].attributes[sc.TOOL_CALL_ARGUMENTS]) == {"a": 2, "b": 5}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_agent_decorator_marks_errors_and_reraises(telemetry: Any, use_async: bool) -> None:
    class Boom(Exception):
        pass

    if use_async:
        @agent("failing")
        async def run_async() -> None:
            raise Boom("no")

        with pytest.raises(Boom):
            asyncio.run(run_async())
    else:
        @agent("failing")
        def run() -> None:
            raise Boom("no")

        with pytest.raises(Boom):
            run()
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE].endswith("Boom")


def test_async_context_manager(telemetry: Any) -> None:
    async def main() -> None:
        async with agent("a"):
            async with tool("t"):
                pass

    asyncio.run(main())
    assert set(_by_name(telemetry)) == {"invoke_agent a", "execute_tool t"}


def test_context_stamps_spans_across_threads_and_tasks(telemetry: Any, openai_client: openai.OpenAI,
                                                       async_openai_client: openai.AsyncOpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]

    async def in_tasks() -> None:
        await asyncio.gather(*(async_openai_client.chat.completions.create(model="gpt-task", messages=messages)
                               for _ in range(2)))

    with context(conversation_id="conv-9", user_id="alice@example.com", metadata={"tier": "gold", "n": 3}):
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(contextvars.copy_context().run, openai_client.chat.completions.create,
                                   model="gpt-thread", messages=messages) for _ in range(2)]
            [f.result() for f in futures]
        asyncio.run(in_tasks())
        with tool("lookup"):
            pass
    openai_client.chat.completions.create(model="gpt-outside", messages=messages)

    expected_hash = hashlib.sha256(b"alice@example.com").hexdigest()
    spans = telemetry.spans()
    inside = [s for s in spans if s.name != "chat gpt-outside"]
    assert len(inside) == 5
    for span in inside:
        assert span.attributes[sc.CONVERSATION_ID] == "conv-9"
        assert span.attributes[sc.USER_ID_HASH] == expected_hash
        assert span.attributes[sc.METADATA_PREFIX + "tier"] == "gold"
        assert span.attributes[sc.METADATA_PREFIX + "n"] == 3
    assert "alice@example.com" not in json.dumps([dict(s.attributes) for s in spans])
    (outside,) = [s for s in spans if s.name == "chat gpt-outside"]
    assert sc.CONVERSATION_ID not in outside.attributes


def test_user_id_hash_is_salted_when_configured(telemetry: Any) -> None:
    set_env(**{_config.ENV_USER_ID_SALT: "pepper"})
    with context(user_id="42"), agent("a"):
        pass
    assert telemetry.span().attributes[sc.USER_ID_HASH] == hashlib.sha256(b"pepper42").hexdigest()


def test_nested_context_merges(telemetry: Any) -> None:
    with context(conversation_id="outer", metadata={"a": 1}), context(metadata={"b": 2}), agent("x"):
        pass
    attrs = telemetry.span().attributes
    assert attrs[sc.CONVERSATION_ID] == "outer"
    assert attrs[sc.METADATA_PREFIX + "a"] == 1 and attrs[sc.METADATA_PREFIX + "b"] == 2


def test_context_span_processor_stamps_third_party_genai_spans(telemetry: Any) -> None:
    telemetry.tracer_provider.add_span_processor(ContextSpanProcessor())
    tracer = telemetry.tracer_provider.get_tracer("someone-else")
    with context(conversation_id="c1"):
        tracer.start_span("chat m", attributes={sc.OPERATION_NAME: "chat"}).end()
        tracer.start_span("GET /", attributes={"http.request.method": "GET"}).end()
    spans = _by_name(telemetry)
    assert spans["chat m"].attributes[sc.CONVERSATION_ID] == "c1"
    assert sc.CONVERSATION_ID not in spans["GET /"].attributes


@pytest.mark.parametrize("env", [{_config.ENV_ENABLED: "false"}, {_config.ENV_SDK_DISABLED: "true"}])
def test_kill_switch_makes_helpers_noops(telemetry: Any, env: dict[str, str]) -> None:
    set_env(**env)

    def plain(x: int) -> int:
        return x

    assert tool("t")(plain) is plain
    assert agent("a")(plain) is plain
    with context(conversation_id="c"), agent("a"), tool("t") as scope:
        scope.set_result("ignored")
        assert trace.get_current_span() is trace.INVALID_SPAN
    assert telemetry.spans() == []
