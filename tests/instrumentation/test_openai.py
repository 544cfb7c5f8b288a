"""OpenAI instrumentor against the real `openai` SDK and a local fake API."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _semconv as sc

from fake_providers import OPENAI_USAGE, RESPONSES_USAGE, TOOL_ARGUMENTS

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                                           "parameters": {"type": "object", "properties": {}}}}]


def _chat(client: openai.OpenAI, model: str, stream: bool, **extra: Any) -> Any:
    if stream:
        extra["stream_options"] = {"include_usage": True}
    result = client.chat.completions.create(model=model, messages=MESSAGES, stream=stream, **extra)
    if stream:
        return list(result)
    return result


async def _achat(client: openai.AsyncOpenAI, model: str, stream: bool, **extra: Any) -> Any:
    if stream:
        extra["stream_options"] = {"include_usage": True}
    result = await client.chat.completions.create(model=model, messages=MESSAGES, stream=stream, **extra)
    if stream:
        return [chunk async for chunk in result]
    return result


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("model", "finish_reason"), [("gpt-4o", "stop"), ("tools", "tool_calls")])
def test_chat_completions_span(telemetry: Any, openai_client: openai.OpenAI,
                               async_openai_client: openai.AsyncOpenAI, fake_server: Any,
                               use_async: bool, stream: bool, model: str, finish_reason: str) -> None:
    if use_async:
        asyncio.run(_achat(async_openai_client, model, stream, temperature=0.2, max_tokens=50))
    else:
        _chat(openai_client, model, stream, temperature=0.2, max_tokens=50)

    span = telemetry.span()
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.OPERATION_NAME] == "chat"
    assert attrs[sc.PROVIDER_NAME] == "openai"
    assert attrs[sc.REQUEST_MODEL] == model
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_MAX_TOKENS] == 50
    assert attrs[sc.RESPONSE_MODEL] == f"{model}-2025-01-01"
    assert attrs[sc.RESPONSE_ID].startswith("chatcmpl-")
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (finish_reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == OPENAI_USAGE["prompt_tokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == OPENAI_USAGE["completion_tokens"]
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[sc.SERVER_PORT] == fake_server.port
    assert sc.INPUT_MESSAGES not in attrs and sc.OUTPUT_MESSAGES not in attrs
    if stream:
        assert attrs[sc.REQUEST_STREAM] is True
        assert isinstance(attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK], float)
        assert 0 < attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] <= (span.end_time - span.start_time) / 1e9
    else:
        assert sc.RESPONSE_TIME_TO_FIRST_CHUNK not in attrs


def test_stream_without_usage_option_has_no_usage(telemetry: Any, openai_client: openai.OpenAI) -> None:
    list(openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    attrs = telemetry.span().attributes
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    assert sc.USAGE_INPUT_TOKENS not in attrs


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("model", "status", "error_type"), [
    ("error-429", 429, "RateLimitError"),
    ("error-500", 500, "InternalServerError"),
])
def test_api_errors_mark_span_and_pass_through(telemetry: Any, openai_client: openai.OpenAI,
                                               async_openai_client: openai.AsyncOpenAI, use_async: bool,
                                               model: str, status: int, error_type: str) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        if use_async:
            asyncio.run(_achat(async_openai_client, model, False))
        else:
            _chat(openai_client, model, False)
    assert raised.value.status_code == status
    assert type(raised.value).__name__ == error_type  # the user's exception, unchanged
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == error_type
    (point,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert point.attributes[sc.ERROR_TYPE] == error_type
    assert telemetry.metric_points(sc.METRIC_TOKEN_USAGE) == []


def test_error_mid_stream_ends_span_with_error(telemetry: Any, openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(model="stream-error", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "APIError"


@pytest.mark.parametrize("how", ["close", "with_break", "garbage_collected"])
def test_stream_left_early_still_ends_span(telemetry: Any, openai_client: openai.OpenAI, how: str) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    if how == "close":
        next(stream)
        stream.close()
    elif how == "with_break":
        with stream:
            for _ in stream:
                break
    else:
        next(stream)
        del stream
        gc.collect()
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.RESPONSE_ID] == "chatcmpl-2"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("model", "finish_reason"), [("gpt-4.1", "stop"), ("tools", "tool_call")])
def test_responses_span(telemetry: Any, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI,
                        use_async: bool, stream: bool, model: str, finish_reason: str) -> None:
    async def run_async() -> None:
        result = await async_openai_client.responses.create(model=model, input="Hi", stream=stream,
                                                            max_output_tokens=64)
        if stream:
            async with result:
                [event async for event in result]

    if use_async:
        asyncio.run(run_async())
    else:
        result = openai_client.responses.create(model=model, input="Hi", stream=stream, max_output_tokens=64)
        if stream:
            list(result)

    span = telemetry.span()
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert attrs[sc.REQUEST_MAX_TOKENS] == 64
    assert attrs[sc.RESPONSE_ID] == "resp_1"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (finish_reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == RESPONSES_USAGE["input_tokens"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == RESPONSES_USAGE["output_tokens"]
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 20
    assert (sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs) is stream


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_embeddings_span(telemetry: Any, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI,
                         use_async: bool) -> None:
    kwargs = {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "float"}
    if use_async:
        result = asyncio.run(async_openai_client.embeddings.create(**kwargs))
    else:
        result = openai_client.embeddings.create(**kwargs)
    assert result.data[0].embedding == [0.25, -0.5, 0.75, 1.0]
    span = telemetry.span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes[sc.OPERATION_NAME] == "embeddings"
    assert span.attributes[sc.REQUEST_ENCODING_FORMATS] == ("float",)
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 5
    assert span.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 4


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_content_captured_on_opt_in(capture_content: None, telemetry: Any, openai_client: openai.OpenAI,
                                    stream: bool) -> None:
    _chat(openai_client, "tools", stream, tools=TOOLS)
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
    ]
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [{"role": "assistant", "finish_reason": "tool_call", "parts": [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": TOOL_ARGUMENTS}]}]
    assert json.loads(attrs[sc.TOOL_DEFINITIONS]) == [{
        "type": "function", "name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {}}}]


def test_responses_content_with_instructions(capture_content: None, telemetry: Any,
                                             openai_client: openai.OpenAI) -> None:
    openai_client.responses.create(model="gpt-4.1", input="Hi", instructions="Be brief.")
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Hello there!"}]


def test_metrics_recorded_with_convention_attributes(telemetry: Any, openai_client: openai.OpenAI) -> None:
    _chat(openai_client, "gpt-4o", False)
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert tuple(duration.explicit_bounds) == sc.DURATION_BUCKETS_S
    assert duration.attributes[sc.OPERATION_NAME] == "chat"
    assert duration.attributes[sc.PROVIDER_NAME] == "openai"
    assert duration.attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert duration.attributes[sc.RESPONSE_MODEL] == "gpt-4o-2025-01-01"
    tokens = {p.attributes[sc.TOKEN_TYPE]: p for p in telemetry.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert tokens["input"].sum == 120 and tokens["output"].sum == 8
    assert tuple(tokens["input"].explicit_bounds) == sc.TOKEN_USAGE_BUCKETS


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_with_raw_response_is_traced_and_untouched(telemetry: Any, openai_client: openai.OpenAI,
                                                   async_openai_client: openai.AsyncOpenAI, use_async: bool) -> None:
    # Frameworks (LangChain among them) call the raw-response variant and parse it themselves.
    if use_async:
        raw = asyncio.run(async_openai_client.chat.completions.with_raw_response.create(model="gpt-4o",
                                                                                        messages=MESSAGES))
    else:
        raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["request-id"] == "req_1"
    assert raw.parse().choices[0].message.content == "Hello there!"
    attrs = telemetry.span().attributes
    assert attrs[sc.RESPONSE_ID] == "chatcmpl-1"
    assert attrs[sc.USAGE_INPUT_TOKENS] == OPENAI_USAGE["prompt_tokens"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)


def test_raw_streaming_response_is_left_unread(telemetry: Any, openai_client: openai.OpenAI) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    span = telemetry.span()  # ended when the call returned
    assert span.attributes[sc.REQUEST_STREAM] is True
    assert sc.RESPONSE_ID not in span.attributes
    chunks = list(raw.parse())  # the user's stream is whole
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there!"


def test_server_address_follows_the_clients_base_url(telemetry: Any, fake_server: Any) -> None:
    first = openai.OpenAI(base_url=fake_server.openai_base_url, api_key="k", max_retries=0)
    second = openai.OpenAI(base_url=f"http://localhost:{fake_server.port}/v1", api_key="k", max_retries=0)
    for client in (first, second, first):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    first.base_url = f"http://localhost:{fake_server.port}/v1"  # changed on a live client
    first.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    hosts = [span.attributes[sc.SERVER_ADDRESS] for span in telemetry.spans()]
    assert hosts == ["127.0.0.1", "localhost", "127.0.0.1", "localhost"]
    assert {span.attributes[sc.SERVER_PORT] for span in telemetry.spans()} == {fake_server.port}
