"""Anthropic instrumentor against the real `anthropic` SDK and a local fake API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _semconv as sc

from fake_providers import ANTHROPIC_USAGE, TOOL_ARGUMENTS

MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
TOOLS = [{"name": "get_weather", "description": "Weather by city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
# The conventions count cached tokens inside input_tokens; Anthropic reports them beside it.
EXPECTED_INPUT = (ANTHROPIC_USAGE["input_tokens"] + ANTHROPIC_USAGE["cache_read_input_tokens"]
                  + ANTHROPIC_USAGE["cache_creation_input_tokens"])


def _sync_call(client: anthropic.Anthropic, mode: str, model: str) -> str:
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": MESSAGES, "tools": TOOLS,
                              "system": "Be brief.", "stop_sequences": ["END"]}
    if mode == "plain":
        return client.messages.create(**kwargs).content[0].text
    if mode == "stream":
        return "".join(e.delta.text for e in client.messages.create(stream=True, **kwargs)
                       if e.type == "content_block_delta" and e.delta.type == "text_delta")
    with client.messages.stream(**kwargs) as stream:
        return stream.get_final_message().content[0].text


async def _async_call(client: anthropic.AsyncAnthropic, mode: str, model: str) -> str:
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": MESSAGES, "tools": TOOLS,
                              "system": "Be brief.", "stop_sequences": ["END"]}
    if mode == "plain":
        return (await client.messages.create(**kwargs)).content[0].text
    if mode == "stream":
        events = await client.messages.create(stream=True, **kwargs)
        return "".join([e.delta.text async for e in events
                        if e.type == "content_block_delta" and e.delta.type == "text_delta"])
    async with client.messages.stream(**kwargs) as stream:
        return "".join([text async for text in stream.text_stream])


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["plain", "stream", "stream_helper"])
@pytest.mark.parametrize(("model", "stop_reason", "text"), [
    ("claude-x", "end_turn", "Hello there!"),
    ("tools", "tool_use", "Let me check."),
])
def test_messages_span(telemetry: Any, anthropic_client: anthropic.Anthropic,
                       async_anthropic_client: anthropic.AsyncAnthropic, fake_server: Any,
                       use_async: bool, mode: str, model: str, stop_reason: str, text: str) -> None:
    if use_async:
        got = asyncio.run(_async_call(async_anthropic_client, mode, model))
    else:
        got = _sync_call(anthropic_client, mode, model)
    assert got == text  # the user's result is untouched

    span = telemetry.span()
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[sc.OPERATION_NAME] == "chat"
    assert attrs[sc.PROVIDER_NAME] == "anthropic"
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.RESPONSE_ID] == "msg_1"
    assert attrs[sc.RESPONSE_MODEL] == f"{model}-2025-01-01"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (stop_reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == EXPECTED_INPUT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == ANTHROPIC_USAGE["output_tokens"]
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == ANTHROPIC_USAGE["cache_read_input_tokens"]
    assert attrs[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] == ANTHROPIC_USAGE["cache_creation_input_tokens"]
    assert attrs[sc.SERVER_PORT] == fake_server.port
    streamed = mode != "plain"
    assert attrs.get(sc.REQUEST_STREAM) is (True if streamed else None)
    assert (sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs) is streamed
    assert sc.INPUT_MESSAGES not in attrs


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("model", "error_type"), [("error-429", "RateLimitError"),
                                                   ("error-500", "InternalServerError")])
@pytest.mark.parametrize("mode", ["plain", "stream_helper"])
def test_api_errors(telemetry: Any, anthropic_client: anthropic.Anthropic,
                    async_anthropic_client: anthropic.AsyncAnthropic, use_async: bool, model: str,
                    error_type: str, mode: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as raised:
        if use_async:
            asyncio.run(_async_call(async_anthropic_client, mode, model))
        else:
            _sync_call(anthropic_client, mode, model)
    assert type(raised.value).__name__ == error_type
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == error_type


@pytest.mark.parametrize("mode", ["stream", "stream_helper"])
def test_error_event_mid_stream(telemetry: Any, anthropic_client: anthropic.Anthropic, mode: str) -> None:
    with pytest.raises(anthropic.APIStatusError):
        _sync_call(anthropic_client, mode, "stream-error")
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.RESPONSE_ID] == "msg_1"  # what arrived before the failure is kept


def test_stream_helper_closed_early_ends_span(telemetry: Any, anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(model="claude-x", max_tokens=10, messages=MESSAGES) as stream:
        next(iter(stream))
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.RESPONSE_ID] == "msg_1"


@pytest.mark.parametrize("mode", ["plain", "stream", "stream_helper"])
def test_content_captured_on_opt_in(capture_content: None, telemetry: Any,
                                    anthropic_client: anthropic.Anthropic, mode: str) -> None:
    _sync_call(anthropic_client, mode, "tools")
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    assert json.loads(attrs[sc.TOOL_DEFINITIONS])[0]["name"] == "get_weather"
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [{"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "text", "content": "Let me check."},
        {"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": TOOL_ARGUMENTS}]}]


def test_tool_result_messages_map_to_parts(capture_content: None, telemetry: Any,
                                           anthropic_client: anthropic.Anthropic) -> None:
    history = [*MESSAGES,
               {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                  "input": TOOL_ARGUMENTS}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}]
    anthropic_client.messages.create(model="claude-x", max_tokens=10, messages=history)
    messages = json.loads(telemetry.span().attributes[sc.INPUT_MESSAGES])
    assert messages[1]["parts"] == [{"type": "tool_call", "id": "toolu_1", "name": "get_weather",
                                     "arguments": TOOL_ARGUMENTS}]
    assert messages[2]["parts"] == [{"type": "tool_call_response", "id": "toolu_1", "response": "18C"}]


def test_sdk_native_spans_nest_under_ours(telemetry: Any, fake_server: Any) -> None:
    # anthropic>=2 emits its own `anthropic.messages.create` span unless told not to; it becomes our child.
    client = anthropic.Anthropic(base_url=fake_server.anthropic_base_url, api_key="k", max_retries=0,
                                 open_telemetry={"tracer_provider": telemetry.tracer_provider})
    client.messages.create(model="claude-x", max_tokens=10, messages=MESSAGES)
    spans = {s.name: s for s in telemetry.spans()}
    ours = spans["chat claude-x"]
    native = [s for name, s in spans.items() if name != "chat claude-x"]
    assert native, spans.keys()
    assert all(s.parent is not None and s.parent.span_id == ours.context.span_id for s in native)


@pytest.mark.parametrize("mode", ["plain", "stream_helper"])
def test_metrics_count_cached_tokens_as_input(telemetry: Any, anthropic_client: anthropic.Anthropic,
                                              mode: str) -> None:
    _sync_call(anthropic_client, mode, "claude-x")
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert tuple(duration.explicit_bounds) == sc.DURATION_BUCKETS_S
    assert duration.attributes[sc.PROVIDER_NAME] == "anthropic"
    assert duration.attributes[sc.RESPONSE_MODEL] == "claude-x-2025-01-01"
    tokens = {p.attributes[sc.TOKEN_TYPE]: p for p in telemetry.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert tokens["input"].sum == EXPECTED_INPUT
    assert tokens["output"].sum == ANTHROPIC_USAGE["output_tokens"]
    assert tuple(tokens["output"].explicit_bounds) == sc.TOKEN_USAGE_BUCKETS


def test_with_raw_response_is_traced_and_untouched(telemetry: Any, anthropic_client: anthropic.Anthropic) -> None:
    raw = anthropic_client.messages.with_raw_response.create(model="claude-x", max_tokens=10, messages=MESSAGES)
    assert raw.headers["request-id"] == "req_1"
    assert raw.parse().content[0].text == "Hello there!"
    attrs = telemetry.span().attributes
    assert attrs[sc.RESPONSE_ID] == "msg_1"
    assert attrs[sc.USAGE_INPUT_TOKENS] == EXPECTED_INPUT


def test_async_with_raw_response_is_traced(telemetry: Any, async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    # Its parse() is a coroutine; it caches what it builds, so the user's own parse() gets the same object.
    async def run() -> str:
        raw = await async_anthropic_client.messages.with_raw_response.create(model="claude-x", max_tokens=10,
                                                                             messages=MESSAGES)
        return (await raw.parse()).content[0].text

    assert asyncio.run(run()) == "Hello there!"
    attrs = telemetry.span().attributes
    assert attrs[sc.RESPONSE_ID] == "msg_1"
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == ANTHROPIC_USAGE["output_tokens"]
