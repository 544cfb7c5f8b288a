"""normalize on the attribute sets that instrumentation packages really emit, one dialect at a time.

Each case is a span as an OTLP receiver renders it (every value a string,
arrays as JSON), copied from what the named package emitted for a call to a
local fake provider (see tests/dialects/ for the end-to-end runs).
"""

from __future__ import annotations

from typing import Any

import pytest

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors import dialects
from spanhouse.collector.processors.normalize import NormalizeProcessor

TYPED = ("Operation", "Provider", "RequestModel", "ResponseModel", "ResponseId", "FinishReasons", "InputTokens",
         "OutputTokens", "CacheReadTokens", "CacheWriteTokens", "ReasoningTokens", "TimeToFirstToken", "ToolName",
         "ToolCallId", "AgentName", "AgentId", "ConversationId", "ErrorType")


def normalize_one(attributes: dict[str, str], **columns: Any) -> tuple[dict[str, Any], NormalizeProcessor]:
    processor = NormalizeProcessor()
    batch = SpanBatch({"SpanAttributes": [dict(attributes)], **{k: [v] for k, v in columns.items()}}, 1)
    out = processor.process(batch)
    row = {name: out.columns[name][0] for name in TYPED}
    row["FinishReasons"] = list(row["FinishReasons"])
    return row, processor


def expect(**values: Any) -> dict[str, Any]:
    """A full row: the given columns, every other one at its empty value."""
    row: dict[str, Any] = {name: "" for name in TYPED}
    row.update(FinishReasons=[], InputTokens=None, OutputTokens=None, CacheReadTokens=None, CacheWriteTokens=None,
               ReasoningTokens=None, TimeToFirstToken=None)
    row.update(values)
    return row


CASES = [
    pytest.param({  # opentelemetry-instrumentation-openai-v2 2.4b0
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-2025-01-01", "gen_ai.usage.input_tokens": "120",
        "gen_ai.usage.output_tokens": "8", "openai.response.service_tier": "default",
    }, expect(Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2025-01-01",
              ResponseId="chatcmpl-1", FinishReasons=["stop"], InputTokens=120, OutputTokens=8),
        False, id="openai-v2"),
    pytest.param({  # opentelemetry-instrumentation-openai-v2 2.4b0, failed call
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "error-429",
        "error.type": "<class 'openai.RateLimitError'>",
    }, expect(Operation="chat", Provider="openai", RequestModel="error-429", ErrorType="openai.RateLimitError"),
        False, id="openai-v2-error-type-as-class-repr"),
    pytest.param({  # OpenLLMetry opentelemetry-instrumentation-openai 0.62
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2025-01-01", "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.is_streaming": "false",
        "gen_ai.usage.input_tokens": "120", "gen_ai.usage.output_tokens": "8", "gen_ai.usage.total_tokens": "128",
        "gen_ai.usage.cache_read.input_tokens": "100", "gen_ai.usage.reasoning_tokens": "2",
        "gen_ai.openai.api_base": "http://127.0.0.1:1/v1/",
    }, expect(Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2025-01-01",
              ResponseId="chatcmpl-1", FinishReasons=["stop"], InputTokens=120, OutputTokens=8, CacheReadTokens=100,
              ReasoningTokens=2),
        True, id="openllmetry-openai"),
    pytest.param({  # OpenLLMetry opentelemetry-instrumentation-anthropic 0.62
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-x",
        "gen_ai.request.max_tokens": "10", "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.response.id": "msg_1",
        "gen_ai.response.model": "claude-x-2025-01-01", "gen_ai.usage.cache_creation.input_tokens": "200",
        "gen_ai.usage.cache_read.input_tokens": "1000", "gen_ai.usage.input_tokens": "1212",
        "gen_ai.usage.output_tokens": "9", "gen_ai.usage.total_tokens": "1221",
    }, expect(Operation="chat", Provider="anthropic", RequestModel="claude-x", ResponseModel="claude-x-2025-01-01",
              ResponseId="msg_1", FinishReasons=["stop"], InputTokens=1212, OutputTokens=9, CacheReadTokens=1000,
              CacheWriteTokens=200),
        False, id="openllmetry-anthropic"),
    pytest.param({  # OpenLLMetry opentelemetry-instrumentation-openai 0.47
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2025-01-01",
        "gen_ai.response.id": "chatcmpl-1", "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.completion.0.role": "assistant", "gen_ai.usage.cache_read_input_tokens": "100",
        "gen_ai.usage.completion_tokens": "8", "gen_ai.usage.prompt_tokens": "120", "llm.is_streaming": "false",
        "llm.request.type": "chat", "llm.usage.reasoning_tokens": "2", "llm.usage.total_tokens": "128",
    }, expect(Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2025-01-01",
              ResponseId="chatcmpl-1", FinishReasons=["stop"], InputTokens=120, OutputTokens=8, CacheReadTokens=100,
              ReasoningTokens=2),
        True, id="openllmetry-0.47-openai"),
    pytest.param({  # OpenLLMetry opentelemetry-instrumentation-openai 0.47, embeddings
        "gen_ai.system": "openai", "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.response.model": "text-embedding-3-small-2025-01-01", "gen_ai.usage.cache_read_input_tokens": "0",
        "gen_ai.usage.prompt_tokens": "5", "llm.request.type": "embedding", "llm.usage.total_tokens": "5",
    }, expect(Operation="embeddings", Provider="openai", RequestModel="text-embedding-3-small",
              ResponseModel="text-embedding-3-small-2025-01-01", InputTokens=5, CacheReadTokens=0),
        True, id="openllmetry-0.47-openai-embeddings"),
    pytest.param({  # OpenLLMetry opentelemetry-instrumentation-anthropic 0.47
        "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-x", "gen_ai.response.model": "claude-x-2025-01-01",
        "gen_ai.response.id": "msg_1", "gen_ai.completion.0.finish_reason": "end_turn",
        "gen_ai.usage.cache_creation_input_tokens": "200", "gen_ai.usage.cache_read_input_tokens": "1000",
        "gen_ai.usage.completion_tokens": "9", "gen_ai.usage.prompt_tokens": "1212", "llm.request.type": "completion",
        "llm.usage.total_tokens": "1221",
    }, expect(Operation="chat", Provider="anthropic", RequestModel="claude-x", ResponseModel="claude-x-2025-01-01",
              ResponseId="msg_1", FinishReasons=["end_turn"], InputTokens=1212, OutputTokens=9, CacheReadTokens=1000,
              CacheWriteTokens=200),
        True, id="openllmetry-0.47-anthropic"),
    pytest.param({  # openinference-instrumentation-openai 0.1.66
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-2025-01-01",
        "llm.invocation_parameters": '{"model": "gpt-4o", "stream": true}', "llm.finish_reason": "stop",
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
        "llm.token_count.prompt": "120", "llm.token_count.completion": "8", "llm.token_count.total": "128",
        "llm.token_count.prompt_details.cache_read": "100", "llm.token_count.prompt_details.audio": "0",
        "llm.token_count.completion_details.reasoning": "2", "input.mime_type": "application/json",
    }, expect(Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2025-01-01",
              FinishReasons=["stop"], InputTokens=120, OutputTokens=8, CacheReadTokens=100, ReasoningTokens=2),
        True, id="openinference-openai"),
    pytest.param({  # openinference-instrumentation-openai 0.1.66, embeddings
        "openinference.span.kind": "EMBEDDING", "llm.system": "openai",
        "embedding.model_name": "text-embedding-3-small-2025-01-01",
        "embedding.invocation_parameters": '{"model": "text-embedding-3-small", "encoding_format": "base64"}',
        "llm.token_count.prompt": "5", "llm.token_count.total": "5",
    }, expect(Operation="embeddings", Provider="openai", RequestModel="text-embedding-3-small",
              ResponseModel="text-embedding-3-small-2025-01-01", InputTokens=5),
        True, id="openinference-openai-embeddings"),
    pytest.param({  # OpenInference: newer request/response names, provider, cache writes, session, tools
        "openinference.span.kind": "LLM", "llm.provider": "azure", "llm.system": "openai",
        "llm.request.model_name": "gpt-4o", "llm.response.model_name": "gpt-4o-2024-08-06",
        "llm.model_name": "gpt-4o-2024-08-06", "llm.token_count.prompt_details.cache_write": "30",
        "session.id": "s-1",
    }, expect(Operation="chat", Provider="azure.ai.openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2024-08-06",
              CacheWriteTokens=30, ConversationId="s-1"),
        True, id="openinference-provider-and-session"),
    pytest.param({"openinference.span.kind": "TOOL", "tool.name": "get_weather", "tool_call.id": "call_1"},
                 expect(Operation="execute_tool", ToolName="get_weather", ToolCallId="call_1"),
                 True, id="openinference-tool"),
    pytest.param({"openinference.span.kind": "AGENT", "agent.name": "planner", "session.id": "s-2"},
                 expect(Operation="invoke_agent", AgentName="planner", ConversationId="s-2"),
                 True, id="openinference-agent"),
    pytest.param({"openinference.span.kind": "LLM", "llm.model_name": "mistral-large-latest", "llm.provider": "mistralai"},
                 expect(Operation="chat", Provider="mistral_ai", RequestModel="mistral-large-latest",
                        ResponseModel="mistral-large-latest"),
                 True, id="openinference-only-model-name"),
    pytest.param({  # openlit 1.45, OpenAI streaming
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.stream": "true", "gen_ai.response.finish_reasons": '["stop"]', "gen_ai.response.id": "chatcmpl-2",
        "gen_ai.response.model": "gpt-4o-2025-01-01", "gen_ai.server.time_per_output_token": "0.0019",
        "gen_ai.server.time_to_first_token": "0.048", "gen_ai.usage.cache_creation.input_tokens": "0",
        "gen_ai.usage.cache_read.input_tokens": "100", "gen_ai.usage.cost": "0", "gen_ai.usage.input_tokens": "120",
        "gen_ai.usage.output_tokens": "8", "telemetry.sdk.name": "openlit", "gen_ai.client.token.usage": "128",
    }, expect(Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2025-01-01",
              ResponseId="chatcmpl-2", FinishReasons=["stop"], InputTokens=120, OutputTokens=8, CacheReadTokens=100,
              CacheWriteTokens=0, TimeToFirstToken=0.048),
        True, id="openlit-openai-stream"),
    pytest.param({  # openlit 1.45, Anthropic: input_tokens leave out cached tokens
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-x",
        "gen_ai.request.stream": "false", "gen_ai.response.finish_reasons": '["end_turn"]', "gen_ai.response.id": "msg_1",
        "gen_ai.response.model": "claude-x-2025-01-01", "gen_ai.server.time_to_first_token": "0.057",
        "gen_ai.usage.cache_creation.input_tokens": "200", "gen_ai.usage.cache_read.input_tokens": "1000",
        "gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": "9", "telemetry.sdk.name": "openlit",
    }, expect(Operation="chat", Provider="anthropic", RequestModel="claude-x", ResponseModel="claude-x-2025-01-01",
              ResponseId="msg_1", FinishReasons=["end_turn"], InputTokens=1212, OutputTokens=9, CacheReadTokens=1000,
              CacheWriteTokens=200),
        True, id="openlit-anthropic-not-streaming"),
    pytest.param({  # the Anthropic SDK's own spans (anthropic 2.x)
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-x",
        "gen_ai.request.stream": "true", "gen_ai.response.id": "msg_1", "gen_ai.response.model": "claude-x-2025-01-01",
        "gen_ai.response.time_to_first_chunk": "0.06", "gen_ai.usage.cache_read.input_tokens": "1000",
        "gen_ai.usage.cache_write.input_tokens": "200", "gen_ai.usage.input_tokens": "1212",
        "gen_ai.usage.output_tokens": "9", "anthropic.message.stop_reason": "end_turn",
    }, expect(Operation="chat", Provider="anthropic", RequestModel="claude-x", ResponseModel="claude-x-2025-01-01",
              ResponseId="msg_1", InputTokens=1212, OutputTokens=9, CacheReadTokens=1000, CacheWriteTokens=200,
              TimeToFirstToken=0.06),
        True, id="anthropic-sdk"),
    pytest.param({"gen_ai.system": "az.ai.openai", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.usage.prompt_tokens": "3", "gen_ai.usage.completion_tokens": "4"},
                 expect(Operation="chat", Provider="azure.ai.openai", RequestModel="gpt-4o", InputTokens=3,
                        OutputTokens=4),
                 True, id="deprecated-system-value"),
]


@pytest.mark.parametrize("attributes, row, dialect", CASES)
def test_dialect_span_fills_typed_columns(attributes: dict[str, str], row: dict[str, Any], dialect: bool) -> None:
    got, processor = normalize_one(attributes)
    assert got == row
    assert processor.counters() == {"genai_spans_total": 1, "dialect_spans_total": int(dialect),
                                    "outcomes_refused_total": 0}


@pytest.mark.parametrize("attributes", [
    {"openinference.span.kind": "CHAIN", "input.value": "hi"},
    {"openinference.span.kind": "UNKNOWN"},
    {"telemetry.sdk.name": "openlit", "http.request.method": "POST"},
    {"llm.token_count.prompt": "5"},  # a count alone does not say what the span is
    {"session.id": "s-1", "tool.name": "x"},
])
def test_dialect_names_alone_do_not_make_a_genai_call(attributes: dict[str, str]) -> None:
    row, processor = normalize_one(attributes)
    assert row == expect()
    assert processor.counters()["genai_spans_total"] == 0


CURRENT_ROW = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.finish_reasons": '["stop"]',
    "gen_ai.usage.input_tokens": "100", "gen_ai.usage.output_tokens": "10",
    "gen_ai.usage.cache_read.input_tokens": "40", "gen_ai.usage.cache_creation.input_tokens": "20",
    "gen_ai.usage.reasoning.output_tokens": "5", "gen_ai.response.time_to_first_chunk": "0.5",
    "gen_ai.tool.name": "t", "gen_ai.tool.call.id": "c", "gen_ai.agent.name": "a", "gen_ai.conversation.id": "conv",
}
EVERY_OTHER_DIALECT = {
    # deprecated conventions
    "gen_ai.system": "cohere", "gen_ai.usage.prompt_tokens": "1", "gen_ai.usage.completion_tokens": "2",
    # OpenLLMetry
    "llm.request.type": "embedding", "gen_ai.usage.cache_read_input_tokens": "3",
    "gen_ai.usage.cache_creation_input_tokens": "4", "gen_ai.usage.reasoning_tokens": "6",
    "llm.usage.reasoning_tokens": "7", "gen_ai.completion.0.finish_reason": "length",
    "gen_ai.usage.cache_write.input_tokens": "8",
    # OpenInference
    "openinference.span.kind": "TOOL", "llm.provider": "google", "llm.system": "vertexai",
    "llm.model_name": "other-model", "llm.request.model_name": "other-request", "llm.response.model_name": "other",
    "llm.invocation_parameters": '{"model": "other-parameters"}', "llm.finish_reason": "length",
    "llm.token_count.prompt": "9", "llm.token_count.completion": "11",
    "llm.token_count.prompt_details.cache_read": "12", "llm.token_count.prompt_details.cache_write": "13",
    "llm.token_count.completion_details.reasoning": "14", "tool.name": "other-tool", "tool_call.id": "other-call",
    "agent.name": "other-agent", "session.id": "other-session",
    # OpenLIT
    "telemetry.sdk.name": "openlit", "gen_ai.request.stream": "true", "gen_ai.server.time_to_first_token": "9.0",
}


def test_current_conventions_win_over_every_other_dialect_on_one_span() -> None:
    alone, _ = normalize_one(CURRENT_ROW)
    mixed, processor = normalize_one({**EVERY_OTHER_DIALECT, **CURRENT_ROW})
    assert mixed == alone
    assert alone == expect(
        Operation="chat", Provider="openai", RequestModel="gpt-4o", ResponseModel="gpt-4o-2024-08-06",
        FinishReasons=["stop"], InputTokens=100, OutputTokens=10, CacheReadTokens=40, CacheWriteTokens=20,
        ReasoningTokens=5, TimeToFirstToken=0.5, ToolName="t", ToolCallId="c", AgentName="a", ConversationId="conv")
    assert processor.counters()["dialect_spans_total"] == 1  # read through the chains, same answer


@pytest.mark.parametrize("attributes, column, value", [
    # deprecated conventions before OpenLLMetry's and OpenInference's names
    ({"gen_ai.usage.prompt_tokens": "1", "llm.token_count.prompt": "9"}, "InputTokens", 1),
    ({"gen_ai.usage.completion_tokens": "2", "llm.token_count.completion": "11"}, "OutputTokens", 2),
    ({"gen_ai.system": "cohere", "llm.provider": "google"}, "Provider", "cohere"),
    # OpenInference's provider before its system
    ({"llm.provider": "google", "llm.system": "vertexai"}, "Provider", "gcp.gen_ai"),
    # OpenLLMetry's older names before OpenInference's
    ({"gen_ai.usage.cache_read_input_tokens": "3", "llm.token_count.prompt_details.cache_read": "12"},
     "CacheReadTokens", 3),
    ({"gen_ai.usage.cache_write.input_tokens": "8", "gen_ai.usage.cache_creation_input_tokens": "4",
      "llm.token_count.prompt_details.cache_write": "13"}, "CacheWriteTokens", 8),
    ({"gen_ai.usage.reasoning_tokens": "6", "llm.usage.reasoning_tokens": "7",
      "llm.token_count.completion_details.reasoning": "14"}, "ReasoningTokens", 6),
    # explicit request/response names before OpenInference's single model name and its parameters
    ({"llm.request.model_name": "r", "llm.invocation_parameters": '{"model": "p"}', "llm.model_name": "m"},
     "RequestModel", "r"),
    ({"llm.invocation_parameters": '{"model": "p"}', "llm.model_name": "m"}, "RequestModel", "p"),
    ({"llm.invocation_parameters": "not json", "llm.model_name": "m"}, "RequestModel", "m"),
    ({"llm.invocation_parameters": '["model"]', "llm.model_name": "m"}, "RequestModel", "m"),
    ({"llm.response.model_name": "r", "llm.model_name": "m"}, "ResponseModel", "r"),
    # OpenLIT's time to first token counts only for a stream: otherwise it is the whole call
    ({"telemetry.sdk.name": "openlit", "gen_ai.request.stream": "false",
      "gen_ai.server.time_to_first_token": "2.5"}, "TimeToFirstToken", None),
])
def test_precedence_between_older_dialects(attributes: dict[str, str], column: str, value: Any) -> None:
    row, _ = normalize_one({"gen_ai.operation.name": "chat", **attributes})
    assert row[column] == value


def test_openlit_input_tokens_are_left_alone_for_other_providers_and_instrumentors() -> None:
    base = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "12",
            "gen_ai.usage.cache_read.input_tokens": "1000", "gen_ai.usage.cache_creation.input_tokens": "200"}
    openai_row, _ = normalize_one({**base, "gen_ai.provider.name": "openai", "telemetry.sdk.name": "openlit"})
    other_row, _ = normalize_one({**base, "gen_ai.provider.name": "anthropic"})
    assert openai_row["InputTokens"] == other_row["InputTokens"] == 12


@pytest.mark.parametrize("attributes, events, error_type", [
    ({"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"model": "m"}'},
     (["exception"], [{"exception.type": "openai.RateLimitError", "exception.message": "429"}]),
     "openai.RateLimitError"),
    ({"gen_ai.operation.name": "chat"}, (["gen_ai.content.chunk", "exception"],
                                         [{}, {"exception.type": "TimeoutError"}]), "TimeoutError"),
    ({"gen_ai.operation.name": "chat"}, ([], []), "_OTHER"),
    ({"gen_ai.operation.name": "chat", "error.type": "429"}, (["exception"], [{"exception.type": "X"}]), "429"),
])
def test_failed_call_without_error_type_takes_the_exception_event(
        attributes: dict[str, str], events: tuple[list[str], list[dict[str, str]]], error_type: str) -> None:
    row, _ = normalize_one(attributes, StatusCode="Error", **{"Events.Name": events[0],
                                                                "Events.Attributes": events[1]})
    assert row["ErrorType"] == error_type


def test_ok_and_non_genai_spans_get_no_error_type_from_status() -> None:
    processor = NormalizeProcessor()
    batch = SpanBatch({
        "SpanAttributes": [{"gen_ai.operation.name": "chat"}, {"http.request.method": "GET"}],
        "StatusCode": ["Ok", "Error"],
        "Events.Name": [["exception"], ["exception"]],
        "Events.Attributes": [[{"exception.type": "A"}], [{"exception.type": "B"}]],
    }, 2)
    assert processor.process(batch).columns["ErrorType"] == ["", ""]


def test_names_match_the_dialect_packages_own_constants() -> None:
    """The names we read are the ones the packages define (both are installed by the test extra)."""
    from openinference.semconv.trace import SpanAttributes as OpenInference
    from opentelemetry.semconv_ai import SpanAttributes as OpenLLMetry

    assert dialects.OPENINFERENCE_SPAN_KIND == OpenInference.OPENINFERENCE_SPAN_KIND
    assert dialects.OPENINFERENCE_INVOCATION_PARAMETERS == OpenInference.LLM_INVOCATION_PARAMETERS
    assert dialects.OPENINFERENCE_EMBEDDING_INVOCATION_PARAMETERS == OpenInference.EMBEDDING_INVOCATION_PARAMETERS
    assert dialects.OPENINFERENCE_MODEL_KEYS == (OpenInference.LLM_MODEL_NAME, OpenInference.EMBEDDING_MODEL_NAME)
    assert dialects.PROVIDER_KEYS[2:] == (OpenInference.LLM_PROVIDER, OpenInference.LLM_SYSTEM)
    assert dialects.REQUEST_MODEL_KEYS[1] == OpenInference.LLM_REQUEST_MODEL_NAME
    assert dialects.RESPONSE_MODEL_KEYS[1] == OpenInference.LLM_RESPONSE_MODEL_NAME
    assert dialects.INPUT_TOKENS_KEYS[2] == OpenInference.LLM_TOKEN_COUNT_PROMPT
    assert dialects.OUTPUT_TOKENS_KEYS[2] == OpenInference.LLM_TOKEN_COUNT_COMPLETION
    assert dialects.CACHE_READ_TOKENS_KEYS[2] == OpenInference.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ
    assert dialects.CACHE_WRITE_TOKENS_KEYS[3] == OpenInference.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE
    assert dialects.REASONING_TOKENS_KEYS[3] == OpenInference.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING
    assert dialects.CONVERSATION_ID_KEYS[1] == OpenInference.SESSION_ID
    assert dialects.AGENT_NAME_KEYS[1] == OpenInference.AGENT_NAME
    assert dialects.TOOL_NAME_KEYS[1] == OpenInference.TOOL_NAME

    assert dialects.TRACELOOP_REQUEST_TYPE == OpenLLMetry.LLM_REQUEST_TYPE
    assert dialects.REASONING_TOKENS_KEYS[1:3] == (OpenLLMetry.GEN_AI_USAGE_REASONING_TOKENS,
                                                   OpenLLMetry.LLM_USAGE_REASONING_TOKENS)
    assert dialects.CACHE_READ_TOKENS_KEYS[1] == OpenLLMetry.LLM_USAGE_CACHE_READ_INPUT_TOKENS
    assert dialects.CACHE_WRITE_TOKENS_KEYS[2] == OpenLLMetry.LLM_USAGE_CACHE_CREATION_INPUT_TOKENS
