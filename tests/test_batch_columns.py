"""The one table of GenAI columns (batch.GENAI_TABLE) agrees with the migrations and with every stage that derives from it."""

from __future__ import annotations

from spanhouse.collector.batch import BASE_COLUMNS, GENAI_CALLS_COLUMNS, GENAI_TABLE
from spanhouse.collector.processors import dialects
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.store import Store
from spanhouse.collector.writer.clickhouse import SPANS_COLUMNS


def test_the_table_matches_the_spans_table_the_migrations_create(store: Store) -> None:
    stored = store.column_types("spans")
    assert {c.name: c.clickhouse_type for c in GENAI_TABLE} == {c.name: stored[c.name] for c in GENAI_TABLE}
    assert set(stored) == set(SPANS_COLUMNS)


def test_genai_calls_has_exactly_the_columns_marked_for_it(store: Store) -> None:
    stored = store.column_types("genai_calls")
    assert set(GENAI_CALLS_COLUMNS) == set(stored) - {"Model"}  # Model is MATERIALIZED from the two models
    spans = store.column_types("spans")
    assert all(stored[name] == spans[name] for name in GENAI_CALLS_COLUMNS)
    assert set(GENAI_CALLS_COLUMNS) <= set(BASE_COLUMNS) | {c.name for c in GENAI_TABLE}


def test_normalize_reads_each_column_from_its_source_first() -> None:
    chains = {
        "Provider": dialects.PROVIDER_KEYS, "RequestModel": dialects.REQUEST_MODEL_KEYS,
        "ResponseModel": dialects.RESPONSE_MODEL_KEYS, "FinishReasons": dialects.FINISH_REASONS_KEYS,
        "InputTokens": dialects.INPUT_TOKENS_KEYS, "OutputTokens": dialects.OUTPUT_TOKENS_KEYS,
        "CacheReadTokens": dialects.CACHE_READ_TOKENS_KEYS, "CacheWriteTokens": dialects.CACHE_WRITE_TOKENS_KEYS,
        "ReasoningTokens": dialects.REASONING_TOKENS_KEYS, "TimeToFirstToken": dialects.TIME_TO_FIRST_CHUNK_KEYS,
        "ToolName": dialects.TOOL_NAME_KEYS, "ToolCallId": dialects.TOOL_CALL_ID_KEYS,
        "AgentName": dialects.AGENT_NAME_KEYS, "AgentId": dialects.AGENT_ID_KEYS,
        "ConversationId": dialects.CONVERSATION_ID_KEYS, "UserId": dialects.USER_ID_KEYS,
        "AgentVersion": dialects.AGENT_VERSION_KEYS, "PromptName": dialects.PROMPT_NAME_KEYS,
        "PromptVersion": dialects.PROMPT_VERSION_KEYS, "Outcome": dialects.OUTCOME_KEYS,
        "OutcomeReason": dialects.OUTCOME_REASON_KEYS,
        "Operation": (dialects.OPERATION,), "ResponseId": (dialects.RESPONSE_ID,), "ErrorType": (dialects.ERROR_TYPE,),
    }
    assert {c.name: c.source for c in GENAI_TABLE if c.source} == {name: keys[0] for name, keys in chains.items()}


def test_a_span_in_the_current_conventions_fills_every_sourced_column() -> None:
    from spanhouse.collector.batch import SpanBatch

    values = {"FinishReasons": '["stop"]', "InputTokens": "12", "OutputTokens": "3", "CacheReadTokens": "2",
              "CacheWriteTokens": "1", "ReasoningTokens": "4", "TimeToFirstToken": "0.25",
              "Outcome": "completed"}
    attributes = {c.source: values.get(c.name, f"{c.name}-value") for c in GENAI_TABLE if c.source}
    batch = NormalizeProcessor().process(SpanBatch({"SpanAttributes": [attributes]}, 1))
    for column in GENAI_TABLE:
        if column.source:
            assert batch[column.name][0] not in ("", (), None), column.name


def test_redaction_reaches_every_string_column_normalize_copies_from_an_attribute() -> None:
    from spanhouse.collector.processors.redact import COLUMN_SOURCES

    copied = {c.name: c.source for c in GENAI_TABLE if c.source and "String" in c.clickhouse_type
              and "Array" not in c.clickhouse_type}
    assert copied.items() <= COLUMN_SOURCES.items()
    assert len(copied) == 17
