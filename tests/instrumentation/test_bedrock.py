"""Bedrock instrumentor against the real boto3/botocore and a local fake of the Bedrock Runtime API.

The fake speaks AWS event-stream frames for the streaming operations, so
botocore's own decoder reads them as it reads Bedrock's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from botocore.parsers import ResponseParserError
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation.bedrock import BedrockInstrumentor

from fake_cloud import (ANTHROPIC_BODY_USAGE, BEDROCK_USAGE, INVOKE_HEADER_TOKENS, NOT_JSON_BODY,
                        NOVA_BODY_USAGE,
                        TITAN_TOKENS, TOOL_ARGUMENTS, FakeCloudServer)
from spanhouse.instrumentation.bedrock import extract
from instr_harness import Telemetry, make_telemetry, set_env

MESSAGES = [{"role": "user", "content": [{"text": "Weather in Paris?"}]}]
TOOL_CONFIG = {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather by city",
                                       "inputSchema": {
    "json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}]}
INFERENCE = {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
# Converse reports cache reads and writes beside inputTokens; the conventions count them inside.
EXPECTED_INPUT = BEDROCK_USAGE["inputTokens"] + BEDROCK_USAGE["cacheReadInputTokens"] \
    + BEDROCK_USAGE["cacheWriteInputTokens"]


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeCloudServer]:
    with FakeCloudServer() as server:
        yield server


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    tel = make_telemetry()
    meter_provider = MeterProvider(metric_readers=[tel.reader])
    BedrockInstrumentor().instrument(tracer_provider=tel.tracer_provider, meter_provider=meter_provider)
    yield tel
    BedrockInstrumentor().uninstrument()
    meter_provider.shutdown()


def _client(cloud: FakeCloudServer, service: str = "bedrock-runtime") -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=cloud.url,
                        aws_access_key_id="AKIDTEST",
                        aws_secret_access_key="test-secret",
                        config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def client(cloud: FakeCloudServer) -> Any:
    return _client(cloud)


def _converse(client: Any, mode: str, model: str, **extra: Any) -> str:
    kwargs = {"modelId": model, "messages": MESSAGES, "system": [{"text": "Be brief."}],
              "inferenceConfig": INFERENCE, "additionalModelRequestFields": {"top_k": 40}, **extra}
    if mode == "plain":
        content = client.converse(**kwargs)["output"]["message"]["content"]
        return "".join(block.get("text", "") for block in content)
    events = client.converse_stream(**kwargs)["stream"]
    return "".join(e["contentBlockDelta"]["delta"].get("text",
                                                       "") for e in events if "contentBlockDelta" in e)


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize(("model", "text", "reason"), [
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "Hello there!", "end_turn"),
    ("us.amazon.nova-pro-v1:0", "Hello there!", "end_turn"),
    ("tools", "Let me check.", "tool_use"),
])
def test_converse_span(telemetry: Telemetry, client: Any, cloud: FakeCloudServer, mode: str, model: str,
                       text: str, reason: str) -> None:
    assert _converse(client, mode, model, toolConfig=TOOL_CONFIG) == text  # the user's result is untouched

    span = telemetry.span()
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert span.kind is SpanKind.CLIENT
    assert attrs[sc.OPERATION_NAME] == "chat"
    assert attrs[sc.PROVIDER_NAME] == "aws.bedrock"
    assert attrs[sc.SERVER_ADDRESS] == "127.0.0.1" and attrs[sc.SERVER_PORT] == cloud.port
    assert attrs[sc.REQUEST_MODEL] == model
    assert attrs[sc.REQUEST_MAX_TOKENS] == 100
    assert attrs[sc.REQUEST_TEMPERATURE] == 0.2
    assert attrs[sc.REQUEST_TOP_P] == 0.9
    assert attrs[sc.REQUEST_TOP_K] == 40
    assert attrs[sc.REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.RESPONSE_FINISH_REASONS] == (reason,)
    assert attrs[sc.USAGE_INPUT_TOKENS] == EXPECTED_INPUT
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == BEDROCK_USAGE["outputTokens"]
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == BEDROCK_USAGE["cacheReadInputTokens"]
    assert attrs[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] == BEDROCK_USAGE["cacheWriteInputTokens"]
    streamed = mode == "stream"
    assert attrs.get(sc.REQUEST_STREAM) is (True if streamed else None)
    assert (sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs) is streamed
    assert sc.INPUT_MESSAGES not in attrs and sc.OUTPUT_MESSAGES not in attrs


@pytest.mark.parametrize(("model", "body", "expected"), [
    ("anthropic.claude-3-5-haiku-20241022-v1:0",
     {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "temperature": 0.2, "top_k": 40,
      "messages": [{"role": "user", "content": "Weather in Paris?"}]},
     {sc.OPERATION_NAME: "chat", sc.REQUEST_MAX_TOKENS: 100, sc.REQUEST_TEMPERATURE: 0.2,
      sc.REQUEST_TOP_K: 40,
      sc.RESPONSE_ID: "msg_bdrk_1", sc.RESPONSE_MODEL: "claude-x", sc.RESPONSE_FINISH_REASONS: ("end_turn",),
      sc.USAGE_INPUT_TOKENS: sum(ANTHROPIC_BODY_USAGE[k] for k in (
          "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")),
      sc.USAGE_OUTPUT_TOKENS: 9, sc.USAGE_CACHE_READ_INPUT_TOKENS: 1000,
      sc.USAGE_CACHE_CREATION_INPUT_TOKENS: 200}),
    ("amazon.nova-lite-v1:0",
     {"messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
      "inferenceConfig": {"maxTokens": 100, "topP": 0.9}},
     {sc.OPERATION_NAME: "chat", sc.REQUEST_MAX_TOKENS: 100, sc.REQUEST_TOP_P: 0.9,
      sc.RESPONSE_FINISH_REASONS: ("end_turn",),
      sc.USAGE_INPUT_TOKENS: NOVA_BODY_USAGE["inputTokens"] + NOVA_BODY_USAGE["cacheReadInputTokenCount"]
      + NOVA_BODY_USAGE["cacheWriteInputTokenCount"],
      sc.USAGE_OUTPUT_TOKENS: 9, sc.USAGE_CACHE_READ_INPUT_TOKENS: 1000}),
    ("amazon.titan-text-express-v1",
     {"inputText": "Weather in Paris?", "textGenerationConfig": {"maxTokenCount": 100,
                                                                 "stopSequences": ["END"]}},
     {sc.OPERATION_NAME: "text_completion", sc.REQUEST_MAX_TOKENS: 100, sc.REQUEST_STOP_SEQUENCES: ("END",),
      sc.RESPONSE_FINISH_REASONS: ("FINISH",), sc.USAGE_INPUT_TOKENS: TITAN_TOKENS["inputTextTokenCount"],
      sc.USAGE_OUTPUT_TOKENS: TITAN_TOKENS["tokenCount"]}),
    ("amazon.titan-embed-text-v2:0", {"inputText": "Weather in Paris?", "dimensions": 4},
     {sc.OPERATION_NAME: "embeddings", sc.EMBEDDINGS_DIMENSION_COUNT: 4, sc.USAGE_INPUT_TOKENS: 5}),
])
def test_invoke_model_span(telemetry: Telemetry, client: Any, model: str, body: dict[str, Any],
                           expected: dict[str, Any]) -> None:
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    payload = json.loads(response["body"].read())  # the user still reads the whole body
    assert payload and (payload.get("content") or payload.get("output") or payload.get("results")
                        or payload.get("embedding"))
    span = telemetry.span()
    assert span.name == f"{expected[sc.OPERATION_NAME]} {model}"
    attrs = span.attributes
    assert attrs[sc.PROVIDER_NAME] == "aws.bedrock"
    for key, value in expected.items():
        assert attrs.get(key) == value, key


@pytest.mark.parametrize(("model", "body"), [("meta.llama3-8b-instruct-v1:0", b'{"prompt": "Hi"}'),
                                             ("not-json", b"\x00 not json")])
def test_invoke_model_usage_from_headers_when_the_body_says_nothing_we_read(
        telemetry: Telemetry, client: Any, model: str, body: bytes) -> None:
    response = client.invoke_model(modelId=model, body=body)
    data = response["body"].read()
    if model == "not-json":
        assert data == NOT_JSON_BODY  # the very bytes, unparsed and untouched
    attrs = telemetry.span().attributes
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == INVOKE_HEADER_TOKENS
    assert attrs[sc.OPERATION_NAME] == "chat"


HOSTILE = [None, 0, True, "text", b"\xff", [], {}, [None, 1, "x"], {"usage": "lots"}, {"inputTokens": True},
           {"output": {"message": {"content": "not a list"}}}, {"content": [{"toolUse": None}]}, object()]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_extractors_take_any_shape_without_raising(value: Any) -> None:
    params = {"modelId": value, "messages": value, "system": value, "inferenceConfig": value,
              "toolConfig": value, "body": value, "additionalModelRequestFields": value}
    for reader in (extract.converse_request_attributes, extract.converse_request_content,
                   extract.invoke_request_attributes, extract.invoke_request_content):
        reader(params)
    for reader in (extract.converse_response_attributes, extract.converse_output_messages,
                   extract.invoke_body_attributes, extract.invoke_output_messages, extract.converse_usage):
        reader(value)
    assert extract.converse_usage({"inputTokens": True, "outputTokens": "9"}) == {
        sc.USAGE_INPUT_TOKENS: None, sc.USAGE_OUTPUT_TOKENS: None, sc.USAGE_CACHE_READ_INPUT_TOKENS: None,
        sc.USAGE_CACHE_CREATION_INPUT_TOKENS: None}  # a flag or a string is never a count


@pytest.mark.parametrize("model", ["anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-micro-v1:0"])
def test_invoke_model_with_response_stream_span(telemetry: Telemetry, client: Any, model: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    events = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))["body"]
    chunks = [json.loads(e["chunk"]["bytes"]) for e in events]
    assert len(chunks) > 3
    attrs = telemetry.span().attributes
    assert attrs[sc.REQUEST_STREAM] is True
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.USAGE_INPUT_TOKENS] == 1212  # 12 uncached + 1000 cache read + 200 cache write
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == 9
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in attrs


@pytest.mark.parametrize(("model", "code"), [("error-429", "ThrottlingException"),
                                             ("error-500", "InternalServerException")])
@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_api_errors_carry_the_aws_error_code(telemetry: Telemetry, client: Any, model: str, code: str,
                                             mode: str) -> None:
    with pytest.raises(ClientError) as raised:
        _converse(client, mode, model)
    assert raised.value.response["Error"]["Code"] == code
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == code
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.attributes[sc.ERROR_TYPE] == code


def test_error_event_mid_stream(telemetry: Telemetry, client: Any) -> None:
    with pytest.raises(EventStreamError):
        _converse(client, "stream", "stream-error")
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "modelStreamErrorException"
    assert sc.RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes  # the chunks before the failure were seen


def test_stream_closed_early_ends_span(telemetry: Telemetry, client: Any) -> None:
    stream = client.converse_stream(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)["stream"]
    next(iter(stream))
    stream.close()
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[sc.REQUEST_MODEL] == "amazon.nova-pro-v1:0"


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_content_captured_on_opt_in(capture_content: None, telemetry: Telemetry, client: Any,
                                    mode: str) -> None:
    _converse(client, mode, "tools", toolConfig=TOOL_CONFIG)
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    (tool,) = json.loads(attrs[sc.TOOL_DEFINITIONS])
    assert tool["name"] == "get_weather" and tool["parameters"]["type"] == "object"
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [{"role": "assistant", "finish_reason": "tool_call",
                                                      "parts": [
        {"type": "text", "content": "Let me check."},
        {"type": "tool_call", "id": "tooluse_1", "name": "get_weather", "arguments": TOOL_ARGUMENTS}]}]


def test_reasoning_is_captured(capture_content: None, telemetry: Telemetry, client: Any) -> None:
    _converse(client, "plain", "anthropic.claude-sonnet-4")
    (message,) = json.loads(telemetry.span().attributes[sc.OUTPUT_MESSAGES])
    assert message["parts"][0] == {"type": "reasoning", "content": "Thinking it over."}


def test_invoke_model_content_captured(capture_content: None, telemetry: Telemetry, client: Any) -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    client.invoke_model(modelId="anthropic.claude-x", body=json.dumps(body))
    attrs = telemetry.span().attributes
    assert json.loads(attrs[sc.INPUT_MESSAGES])[0]["parts"] == [{"type": "text",
                                                                 "content": "Weather in Paris?"}]
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Hello there!"}]


def test_metrics(telemetry: Telemetry, client: Any) -> None:
    _converse(client, "stream", "amazon.nova-pro-v1:0")
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1
    assert duration.attributes[sc.PROVIDER_NAME] == "aws.bedrock"
    assert duration.attributes[sc.REQUEST_MODEL] == "amazon.nova-pro-v1:0"
    tokens = {p.attributes[sc.TOKEN_TYPE]: p for p in telemetry.metric_points(sc.METRIC_TOKEN_USAGE)}
    assert tokens["input"].sum == EXPECTED_INPUT
    assert tokens["output"].sum == BEDROCK_USAGE["outputTokens"]


def test_other_aws_services_pass_through(telemetry: Telemetry, cloud: FakeCloudServer) -> None:
    # Same botocore method, another service: no span, and the call is untouched.
    sts = _client(cloud, "sts")
    with pytest.raises((ClientError, ResponseParserError)):
        # The fake answers a JSON 404 for anything that is not Bedrock; STS wants XML.
        sts.get_caller_identity()
    assert telemetry.spans() == []


def test_clients_made_before_instrument_are_traced(cloud: FakeCloudServer) -> None:
    early = _client(cloud)
    tel = make_telemetry()
    BedrockInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    try:
        early.converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
    finally:
        BedrockInstrumentor().uninstrument()
    assert [s.name for s in tel.spans()] == ["chat amazon.nova-pro-v1:0"]


def test_uninstrument_restores_botocore(client: Any) -> None:
    original = botocore.client.BaseClient._make_api_call
    tel = make_telemetry()
    BedrockInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    assert botocore.client.BaseClient._make_api_call is not original
    BedrockInstrumentor().uninstrument()
    assert botocore.client.BaseClient._make_api_call is original
    client.converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
    assert tel.spans() == []


def test_kill_switch(client: Any) -> None:
    set_env(SPANHOUSE_INSTRUMENTATION_ENABLED="false")
    tel = make_telemetry()
    BedrockInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    try:
        client.converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
    finally:
        BedrockInstrumentor().uninstrument()
    assert tel.spans() == []


# --- stepping aside -------------------------------------------------------------------------------------

def _installed(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


def _patched() -> bool:
    import wrapt

    return isinstance(vars(botocore.client.BaseClient)["_make_api_call"], wrapt.FunctionWrapper)


@pytest.fixture
def botocore_instrumentor_installed(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A stand-in with opentelemetry-instrumentation-botocore's metadata (entry points `botocore` and
    `aiobotocore`, botocore in `instruments-any`), found by importlib.metadata as the real one would be."""
    dist = tmp_path / "opentelemetry_instrumentation_botocore-9.9b0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: opentelemetry-instrumentation-botocore\n"
                                   "Version: 9.9b0\nProvides-Extra: instruments-any\n"
                                   'Requires-Dist: botocore~=1.0; extra == "instruments-any"\n')
    (dist / "entry_points.txt").write_text("[opentelemetry_instrumentor]\n"
                                           "botocore = stand_in_botocore_instrumentor:Instrumentor\n")
    (tmp_path / "stand_in_botocore_instrumentor.py").write_text("class Instrumentor:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    BedrockInstrumentor().uninstrument()


@pytest.mark.parametrize(("disabled", "rival", "name"), [
    pytest.param("botocore", "opentelemetry-instrumentation-bedrock", "boto3", id="openllmetry",
                 marks=pytest.mark.skipif(not _installed("opentelemetry-instrumentation-bedrock"),
                                          reason="OpenLLMetry's Bedrock instrumentor is not installed")),
    pytest.param("boto3", "opentelemetry-instrumentation-botocore 9.9b0", "botocore", id="botocore"),
])
def test_steps_aside_for_another_bedrock_instrumentor(
        botocore_instrumentor_installed: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        disabled: str, rival: str, name: str) -> None:
    import logging

    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", disabled)
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        BedrockInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider,
                                         skip_dep_check=True)
    assert not _patched()
    (record,) = [r for r in caplog.records if "spanhouse is not tracing botocore" in r.getMessage()]
    assert rival in record.getMessage()
    told = record.getMessage().split("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=", 1)[1].split(";", 1)[0]
    assert told == name  # the name that turns the rival off, so that ours runs


def test_with_the_others_disabled_ours_traces(botocore_instrumentor_installed: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "boto3,botocore")
    BedrockInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert _patched()
