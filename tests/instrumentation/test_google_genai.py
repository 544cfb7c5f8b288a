"""Google GenAI instrumentor against the real `google-genai` SDK and a local fake of the Gemini API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation.google_genai import GoogleGenAIInstrumentor

from fake_cloud import GEMINI_USAGE, TOOL_ARGUMENTS, FakeCloudServer
from instr_harness import Telemetry, make_telemetry

CONFIG = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_output_tokens": 100, "stop_sequences": ["END"],
          "seed": 7, "system_instruction": "Be brief."}
TOOLS = [types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Weather by city",
    parameters={"type": "OBJECT", "properties": {"city": {"type": "STRING"}}})])]
# Thinking tokens are output in the conventions; Gemini counts them beside candidates_token_count.
EXPECTED_OUTPUT = GEMINI_USAGE["candidatesTokenCount"] + GEMINI_USAGE["thoughtsTokenCount"]


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeCloudServer]:
    with FakeCloudServer() as server:
        yield server


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    tel = make_telemetry()
    meter_provider = MeterProvider(metric_readers=[tel.reader])
    GoogleGenAIInstrumentor().instrument(tracer_provider=tel.tracer_provider, meter_provider=meter_provider)
    yield tel
    GoogleGenAIInstrumentor().uninstrument()
    meter_provider.shutdown()


@pytest.fixture
def client(cloud: FakeCloudServer) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=cloud.url))


def _sync_call(client: genai.Client, mode: str, model: str, config: Any = None) -> str:
    config = config if config is not None else CONFIG
    if mode == "plain":
        return client.models.generate_content(model=model, contents="Weather in Paris?",
                                              config=config).text or ""
    if mode == "stream":
        return "".join(c.text or "" for c in
                       client.models.generate_content_stream(model=model, contents="Weather in Paris?",
                                                             config=config))
    chat = client.chats.create(model=model, config=config)
    if mode == "chat":
        return chat.send_message("Weather in Paris?").text or ""
    return "".join(c.text or "" for c in chat.send_message_stream("Weather in Paris?"))


async def _async_call(client: genai.Client, mode: str, model: str, config: Any = None) -> str:
    config = config if config is not None else CONFIG
    models = client.aio.models
    if mode == "plain":
        return (await models.generate_content(model=model, contents="Weather in Paris?",
                                              config=config)).text or ""
    if mode == "stream":
        stream = await models.generate_content_stream(model=model, contents="Weather in Paris?",
                                                      config=config)
        return "".join([c.text or "" async for c in stream])
    chat = client.aio.chats.create(model=model, config=config)
    if mode == "chat":
        return (await chat.send_message("Weather in Paris?")).text or ""
    return "".join([c.text or "" async for c in await chat.send_message_stream("Weather in Paris?")])


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["plain", "stream", "chat", "chat_stream"])
def test_generate_content_span(telemetry: Telemetry, client: genai.Client, cloud: FakeCloudServer,
                               use_async: bool, mode: str) -> None:
    model = "gemini-2.5-flash"
    got = asyncio.run(_async_call(client, mode, model)) if use_async else _sync_call(client, mode, model)
    assert got == "Hello there!"  # the user's result is untouched (thoughts are not part of .text)

    span = telemetry.span()  # a chat's send_message goes through models.generate_content: one span, not two
    attrs = span.attributes
    assert span.name == f"generate_content {model}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[sc.OPERATION_NAME] == "generate_content"
    assert attrs[sc.PROVIDER_NAME] == "gcp.gemini"
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1" and attrs[sc.SERVER_PORT] == cloud.port
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.REQUEST_SEED] == 7
    assert attrs[sc.RESPONSE_ID] == "resp-gemini-1"
    assert attrs[sc.RESPONSE_MODEL] == f"{model}-001"
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("stop",)
    # Gemini's prompt count already includes the cached tokens.
    assert attrs[sc.USAGE_INPUT_TOKENS] == GEMINI_USAGE["promptTokenCount"]
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == GEMINI_USAGE["cachedContentTokenCount"]
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == EXPECTED_OUTPUT
    assert attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == GEMINI_USAGE["thoughtsTokenCount"]
    streamed = mode.endswith("stream")
    assert attrs.get(sc.REQUEST_STREAM) is (True if streamed else None)
    assert (sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs) is streamed
    assert sc.INPUT_MESSAGES not in attrs and sc.OUTPUT_MESSAGES not in attrs


def test_vertex_client_is_its_own_provider(telemetry: Telemetry, cloud: FakeCloudServer) -> None:
    client = genai.Client(vertexai=True, api_key="test-key",
                          http_options=types.HttpOptions(base_url=cloud.url))
    try:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    except errors.APIError:
        pass  # the fake may not route Vertex's paths; the span's provider is what is checked
    attrs = telemetry.span().attributes
    assert attrs[sc.PROVIDER_NAME] == "gcp.vertex_ai"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_embed_content_span(telemetry: Telemetry, client: genai.Client, use_async: bool) -> None:
    kwargs: dict[str, Any] = {"model": "gemini-embedding-001", "contents": ["a", "b"],
                              "config": {"output_dimensionality": 4}}
    if use_async:
        result = asyncio.run(client.aio.models.embed_content(**kwargs))
    else:
        result = client.models.embed_content(**kwargs)
    assert result.embeddings and len(result.embeddings) == 2
    span = telemetry.span()
    assert span.name == "embeddings gemini-embedding-001"
    assert span.attributes[sc.OPERATION_NAME] == "embeddings"
    assert span.attributes[sc.USAGE_INPUT_TOKENS] == 10
    assert span.attributes[sc.EMBEDDINGS_DIMENSION_COUNT] == 4


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("model", "code"), [("error-429", 429), ("error-500", 500)])
@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_api_errors_carry_the_status_code(telemetry: Telemetry, client: genai.Client, use_async: bool,
                                          model: str, code: int, mode: str) -> None:
    with pytest.raises(errors.APIError) as raised:
        asyncio.run(_async_call(client, mode, model)) if use_async else _sync_call(client, mode, model)
    assert raised.value.code == code
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == str(code)
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.attributes[sc.ERROR_TYPE] == str(code)
    assert telemetry.metric_points(sc.METRIC_TOKEN_USAGE) == []


def test_error_mid_stream_keeps_what_arrived(telemetry: Telemetry, client: genai.Client) -> None:
    with pytest.raises(errors.ServerError):
        _sync_call(client, "stream", "stream-error")
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "500"
    assert span.attributes[sc.RESPONSE_ID] == "resp-gemini-1"


def test_stream_dropped_half_read_ends_span(telemetry: Telemetry, client: genai.Client) -> None:
    stream = client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
    next(iter(stream))
    stream.close()
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.RESPONSE_MODEL] == "gemini-2.5-flash-001"


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_content_captured_on_opt_in(capture_content: None, telemetry: Telemetry, client: genai.Client,
                                    mode: str) -> None:
    _sync_call(client, mode, "tools", {**CONFIG, "tools": TOOLS})
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    (tool,) = json.loads(attrs[sc.TOOL_DEFINITIONS])
    assert tool["name"] == "get_weather" and tool["description"] == "Weather by city"
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [{"role": "assistant", "finish_reason": "tool_call",
                                                      "parts": [
        {"type": "tool_call", "name": "get_weather", "arguments": TOOL_ARGUMENTS}]}]


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_thoughts_are_captured_as_reasoning(capture_content: None, telemetry: Telemetry, client: genai.Client,
                                            mode: str) -> None:
    _sync_call(client, mode, "gemini-2.5-flash")
    (message,) = json.loads(telemetry.span().attributes[sc.OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "reasoning", "content": "Thinking it over."},
                                {"type": "text", "content": "Hello there!"}]
    assert message["finish_reason"] == "stop"


def test_chat_history_is_captured_with_roles(capture_content: None, telemetry: Telemetry,
                                             client: genai.Client) -> None:
    chat = client.chats.create(model="gemini-2.5-flash")
    chat.send_message("First?")
    chat.send_message("Second?")
    last = max(telemetry.spans(), key=lambda s: s.start_time)
    roles = [m["role"] for m in json.loads(last.attributes[sc.INPUT_MESSAGES])]
    assert roles == ["user", "assistant", "user"]


def test_captured_content_is_capped(capture_content: None, telemetry: Telemetry, client: genai.Client,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from instr_harness import set_env

    set_env(SPANHOUSE_CAPTURE_MAX_BYTES="64")
    client.models.generate_content(model="gemini-2.5-flash", contents="x" * 1000)
    captured = telemetry.span().attributes[sc.INPUT_MESSAGES]
    assert len(captured.encode()) <= 64 and captured.endswith("...[truncated]")


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_metrics(telemetry: Telemetry, client: genai.Client, mode: str) -> None:
    _sync_call(client, mode, "gemini-2.5-flash")
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert duration.attributes[sc.PROVIDER_NAME] == "gcp.gemini"
    assert duration.attributes[sc.OPERATION_NAME] == "generate_content"
    assert duration.attributes[sc.RESPONSE_MODEL] == "gemini-2.5-flash-001"
    tokens = {p.attributes[sc.TOKEN_TYPE]: p for p in telemetry.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert tokens["input"].sum == GEMINI_USAGE["promptTokenCount"]
    assert tokens["output"].sum == EXPECTED_OUTPUT


def test_uninstrument_restores_the_sdk(client: genai.Client) -> None:
    original = genai.models.Models.generate_content
    tel = make_telemetry()
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tel.tracer_provider)
    assert genai.models.Models.generate_content is not original
    instrumentor.uninstrument()
    assert genai.models.Models.generate_content is original
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert tel.spans() == []


def test_kill_switch(client: genai.Client) -> None:
    from instr_harness import set_env

    set_env(SPANHOUSE_INSTRUMENTATION_ENABLED="false")
    tel = make_telemetry()
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tel.tracer_provider)
    try:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    finally:
        instrumentor.uninstrument()
    assert tel.spans() == []


# --- stepping aside for the official instrumentor ------------------------------------------------------
# opentelemetry-instrumentation-google-genai needs opentelemetry-util-genai>=1.3b0 and google-genai<3, which
# this test environment cannot hold beside its other instrumentors; a distribution with its metadata (name,
# entry point `google-genai`, `instruments` extra) stands in for it, found by importlib.metadata as the real
# one would be.

OFFICIAL_METADATA = """Metadata-Version: 2.1
Name: opentelemetry-instrumentation-google-genai
Version: 9.9b0
Provides-Extra: instruments
Requires-Dist: google-genai>=1.0.0; extra == "instruments"
"""


@pytest.fixture
def official_installed(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    dist = tmp_path / "opentelemetry_instrumentation_google_genai-9.9b0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(OFFICIAL_METADATA)
    (dist / "entry_points.txt").write_text(
        "[opentelemetry_instrumentor]\ngoogle-genai = stand_in_google_genai_instrumentor:Instrumentor\n")
    (tmp_path / "stand_in_google_genai_instrumentor.py").write_text("class Instrumentor:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    GoogleGenAIInstrumentor().uninstrument()


def _patched() -> bool:
    import wrapt

    return isinstance(vars(genai.models.Models)["generate_content"], wrapt.FunctionWrapper)


def test_steps_aside_for_the_official_instrumentor(official_installed: None,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        # skip_dep_check=True is how opentelemetry-instrument calls every instrumentor.
        GoogleGenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider,
                                             skip_dep_check=True)
    assert not _patched()
    (record,) = [r for r in caplog.records if "spanhouse is not tracing google-genai" in r.getMessage()]
    assert "opentelemetry-instrumentation-google-genai 9.9b0" in record.getMessage()
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=google-genai" in record.getMessage()


def test_official_disabled_by_name_brings_ours_back(official_installed: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "google-genai")
    GoogleGenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider,
                                         skip_dep_check=True)
    assert _patched()


def test_instrumenting_by_hand_does_not_step_aside(official_installed: None) -> None:
    GoogleGenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider)
    assert _patched()


HOSTILE = [None, 0, True, "text", b"\xff", [], {}, [None, 1, "x"], {"parts": "not a list"}, {"role": 5,
                                                                                             "parts": [3]},
           {"usage_metadata": {"prompt_token_count": True}}, {"candidates": [{"finish_reason": 7}]}, object()]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_extractors_take_any_shape_without_raising(value: Any) -> None:
    from spanhouse.instrumentation.google_genai import extract
    from spanhouse.instrumentation.google_genai.accumulate import GenerateContentStreamAccumulator

    kwargs = {"model": value, "contents": value, "config": value}
    for reader in (extract.generate_request_attributes, extract.generate_request_content,
                   extract.embed_request_attributes):
        reader(kwargs)
    for reader in (extract.generate_response_attributes, extract.generate_output_messages,
                   extract.embed_response_attributes, extract.usage_attributes, extract.client_attributes):
        reader(value)
    accumulator = GenerateContentStreamAccumulator(kwargs)
    accumulator.capture = True
    accumulator.observe(value)
    accumulator.attributes()
    accumulator.output_messages()
    assert extract.usage_attributes({"prompt_token_count": True, "candidates_token_count": "8"}) == {
        sc.USAGE_INPUT_TOKENS: None, sc.USAGE_OUTPUT_TOKENS: None, sc.USAGE_CACHE_READ_INPUT_TOKENS: None,
        sc.USAGE_REASONING_OUTPUT_TOKENS: None}  # a flag or a string is never a count
