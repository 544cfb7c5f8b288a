"""normalize: every GenAI attribute dialect we read -> the typed GenAI columns."""

from __future__ import annotations

from typing import Any

import pytest

from spanhouse.collector.batch import GENAI_COLUMNS, SpanBatch
from spanhouse.collector.processors.normalize import NormalizeProcessor

CHAT = {"gen_ai.operation.name": "chat"}


def normalize(*attributes: dict[str, str]) -> tuple[list[dict[str, Any]], NormalizeProcessor]:
    processor = NormalizeProcessor()
    batch = SpanBatch({"SpanAttributes": [dict(a) for a in attributes]}, len(attributes))
    out = processor.process(batch)
    rows = [{name: out.columns[name][i] for name in out.columns} for i in range(out.size)]
    return rows, processor


@pytest.mark.parametrize("attributes, expected", [
    pytest.param({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": "100",
        "gen_ai.usage.output_tokens": "20",
        "gen_ai.usage.cache_read.input_tokens": "30",
        "gen_ai.usage.cache_creation.input_tokens": "40",
        "gen_ai.usage.reasoning.output_tokens": "5",
        "gen_ai.response.time_to_first_chunk": "0.25",
        "gen_ai.conversation.id": "conv-1",
    }, {
        "Operation": "chat", "Provider": "openai", "RequestModel": "gpt-4o", "ResponseModel": "gpt-4o-2024-08-06",
        "ResponseId": "chatcmpl-1", "InputTokens": 100, "OutputTokens": 20, "CacheReadTokens": 30,
        "CacheWriteTokens": 40, "ReasoningTokens": 5, "TimeToFirstToken": 0.25, "ConversationId": "conv-1",
    }, id="current-conventions"),
    pytest.param({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "gen_ai.tool.call.id": "c1"},
                 {"Operation": "execute_tool", "ToolName": "search", "ToolCallId": "c1", "InputTokens": None},
                 id="tool-span"),
    pytest.param({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "gen_ai.agent.id": "a1"},
                 {"Operation": "invoke_agent", "AgentName": "planner", "AgentId": "a1"}, id="agent-span"),
    pytest.param({**CHAT, "gen_ai.system": "anthropic"}, {"Provider": "anthropic"}, id="deprecated-gen_ai.system"),
    pytest.param({**CHAT, "gen_ai.system": "old", "gen_ai.provider.name": "new"}, {"Provider": "new"},
                 id="provider.name-wins-over-system"),
    pytest.param({**CHAT, "gen_ai.usage.prompt_tokens": "11", "gen_ai.usage.completion_tokens": "7"},
                 {"InputTokens": 11, "OutputTokens": 7}, id="deprecated-prompt-completion-tokens"),
    pytest.param({**CHAT, "gen_ai.usage.prompt_tokens": "1", "gen_ai.usage.input_tokens": "2",
                  "gen_ai.usage.completion_tokens": "3", "gen_ai.usage.output_tokens": "4"},
                 {"InputTokens": 2, "OutputTokens": 4}, id="current-token-names-win"),
    pytest.param({"gen_ai.request.model": "gpt-3.5-turbo", "gen_ai.system": "openai"},
                 {"Operation": "chat", "Provider": "openai", "RequestModel": "gpt-3.5-turbo"},
                 id="legacy-span-without-operation"),
    pytest.param({"gen_ai.response.model": "m"}, {"Operation": "chat", "ResponseModel": "m"},
                 id="legacy-span-with-only-response-model"),
    pytest.param({**CHAT, "error.type": "RateLimitError"}, {"ErrorType": "RateLimitError"}, id="error-type"),
])
def test_genai_attributes_fill_typed_columns(attributes: dict[str, str], expected: dict[str, Any]) -> None:
    (row,), processor = normalize(attributes)
    assert {k: row[k] for k in expected} == expected
    assert processor.counters()["genai_spans_total"] == 1


@pytest.mark.parametrize("value, reasons", [
    ('["stop"]', ["stop"]),
    ('["stop","length"]', ["stop", "length"]),  # how the receiver renders an OTLP string array
    ("stop", ["stop"]),  # a plain string from a non-conforming SDK
    ("[not json", ["[not json"]),
    ("", []),
    (None, []),
])
def test_finish_reasons_become_an_array(value: str | None, reasons: list[str]) -> None:
    attributes = dict(CHAT)
    if value is not None:
        attributes["gen_ai.response.finish_reasons"] = value
    (row,), _ = normalize(attributes)
    assert list(row["FinishReasons"]) == reasons


@pytest.mark.parametrize("value, tokens", [
    ("42", 42),
    ("0", 0),
    ("42.0", 42),  # a double attribute as the receiver renders it
    ("1e3", 1000),
    (str(2**64 - 1), 2**64 - 1),
    ("-1", None),
    ("abc", None),
    ("", None),
    ("nan", None),
    ("inf", None),
    ("1e400", None),
    ("1e30", None),  # does not fit Nullable(UInt64)
    (str(2**64), None),
])
def test_token_counts_parse_or_become_null(value: str, tokens: int | None) -> None:
    (row,), _ = normalize({**CHAT, "gen_ai.usage.input_tokens": value, "gen_ai.usage.cache_read.input_tokens": value})
    assert row["InputTokens"] == tokens
    assert row["CacheReadTokens"] == tokens


@pytest.mark.parametrize("value, seconds", [("0.5", 0.5), ("-0.1", None), ("soon", None), ("nan", None),
                                            ("inf", None), ("-inf", None), ("1e400", None)])
def test_time_to_first_chunk(value: str, seconds: float | None) -> None:
    (row,), _ = normalize({**CHAT, "gen_ai.response.time_to_first_chunk": value})
    assert row["TimeToFirstToken"] == seconds


@pytest.mark.parametrize("attributes", [
    {},
    {"http.request.method": "GET", "url.path": "/v1/chat"},
    {"db.system": "postgresql", "gen_ai.prompt_like_but_not": "x"},
])
def test_non_genai_spans_are_untouched(attributes: dict[str, str]) -> None:
    (row,), processor = normalize(attributes)
    assert row["SpanAttributes"] == attributes
    assert {k: row[k] for k in GENAI_COLUMNS if k in row} == {k: GENAI_COLUMNS[k] for k in GENAI_COLUMNS if k in row}
    assert processor.counters() == {"genai_spans_total": 0, "dialect_spans_total": 0, "outcomes_refused_total": 0}


def test_mixed_batch_keeps_rows_aligned() -> None:
    rows, processor = normalize(
        {"http.request.method": "GET"},
        {**CHAT, "gen_ai.request.model": "a", "gen_ai.usage.input_tokens": "1"},
        {},
        {**CHAT, "gen_ai.request.model": "b", "gen_ai.usage.prompt_tokens": "2"},
    )
    assert [(r["Operation"], r["RequestModel"], r["InputTokens"]) for r in rows] == [
        ("", "", None), ("chat", "a", 1), ("", "", None), ("chat", "b", 2)]
    assert processor.counters() == {"genai_spans_total": 2, "dialect_spans_total": 1, "outcomes_refused_total": 0}
