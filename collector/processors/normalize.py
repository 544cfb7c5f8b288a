"""normalize: GenAI span attributes -> the typed GenAI columns.

Reads the current OpenTelemetry GenAI semantic conventions and falls back to
their deprecated names (`gen_ai.system`, `gen_ai.usage.prompt_tokens`,
`gen_ai.usage.completion_tokens`). Attributes arrive as strings (the Map
column's value type); counts are parsed back to integers here, once.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes

from spanhouse.collector.batch import SpanBatch

OPERATION = ga.GEN_AI_OPERATION_NAME
PROVIDER = ga.GEN_AI_PROVIDER_NAME
SYSTEM_DEPRECATED = ga.GEN_AI_SYSTEM
REQUEST_MODEL = ga.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL = ga.GEN_AI_RESPONSE_MODEL
RESPONSE_ID = ga.GEN_AI_RESPONSE_ID
FINISH_REASONS = ga.GEN_AI_RESPONSE_FINISH_REASONS
INPUT_TOKENS = ga.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = ga.GEN_AI_USAGE_OUTPUT_TOKENS
PROMPT_TOKENS_DEPRECATED = ga.GEN_AI_USAGE_PROMPT_TOKENS
COMPLETION_TOKENS_DEPRECATED = ga.GEN_AI_USAGE_COMPLETION_TOKENS
CACHE_READ_TOKENS = ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_WRITE_TOKENS = ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
REASONING_TOKENS = ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
TIME_TO_FIRST_CHUNK = ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
TOOL_NAME = ga.GEN_AI_TOOL_NAME
TOOL_CALL_ID = ga.GEN_AI_TOOL_CALL_ID
AGENT_NAME = ga.GEN_AI_AGENT_NAME
AGENT_ID = ga.GEN_AI_AGENT_ID
CONVERSATION_ID = ga.GEN_AI_CONVERSATION_ID
ERROR_TYPE = error_attributes.ERROR_TYPE

# Operation assumed for spans from convention versions that named a model but
# had no gen_ai.operation.name yet.
_LEGACY_OPERATION = "chat"


# Token columns are Nullable(UInt64): a larger value would fail every retry of the insert.
_UINT64_MAX = (1 << 64) - 1


def _count(text: str | None) -> int | None:
    """A token count attribute -> int; None when absent or not a number in 0..2**64-1."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        try:
            value = int(float(text))
        except (ValueError, OverflowError):  # "nan", "inf", "1e400"
            return None
    return value if 0 <= value <= _UINT64_MAX else None


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _reasons(text: str | None) -> list[str]:
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return [text]
        if isinstance(parsed, list):
            return [str(r) for r in parsed]
    return [text]


class NormalizeProcessor:
    """Fills Operation, Provider, models, tokens, tool/agent/conversation ids and ErrorType."""

    name = "normalize"

    def __init__(self) -> None:
        self.genai_spans_total = 0

    def counters(self) -> dict[str, int]:
        return {"genai_spans_total": self.genai_spans_total}

    def process(self, batch: SpanBatch) -> SpanBatch:
        n = batch.size
        out: dict[str, list[Any]] = {
            name: [default] * n
            for name, default in (
                ("Operation", ""), ("Provider", ""), ("RequestModel", ""), ("ResponseModel", ""),
                ("ResponseId", ""), ("FinishReasons", ()), ("InputTokens", None), ("OutputTokens", None),
                ("CacheReadTokens", None), ("CacheWriteTokens", None), ("ReasoningTokens", None),
                ("TimeToFirstToken", None), ("ToolName", ""), ("ToolCallId", ""), ("AgentName", ""),
                ("AgentId", ""), ("ConversationId", ""), ("ErrorType", ""),
            )
        }
        operation, provider = out["Operation"], out["Provider"]
        request_model, response_model, response_id = out["RequestModel"], out["ResponseModel"], out["ResponseId"]
        finish, input_tokens, output_tokens = out["FinishReasons"], out["InputTokens"], out["OutputTokens"]
        cache_read, cache_write, reasoning = out["CacheReadTokens"], out["CacheWriteTokens"], out["ReasoningTokens"]
        ttft, tool_name, tool_call = out["TimeToFirstToken"], out["ToolName"], out["ToolCallId"]
        agent_name, agent_id, conversation = out["AgentName"], out["AgentId"], out["ConversationId"]
        error_type = out["ErrorType"]
        genai = 0
        for i, attrs in enumerate(batch["SpanAttributes"]):
            error = attrs.get(ERROR_TYPE)
            if error:
                error_type[i] = error
            op = attrs.get(OPERATION)
            model = attrs.get(REQUEST_MODEL)
            if op is None:
                if model is None and RESPONSE_MODEL not in attrs:
                    continue
                op = _LEGACY_OPERATION
            genai += 1
            operation[i] = op
            provider[i] = attrs.get(PROVIDER) or attrs.get(SYSTEM_DEPRECATED) or ""
            request_model[i] = model or ""
            response_model[i] = attrs.get(RESPONSE_MODEL, "")
            response_id[i] = attrs.get(RESPONSE_ID, "")
            finish[i] = _reasons(attrs.get(FINISH_REASONS))
            tokens = attrs.get(INPUT_TOKENS)
            input_tokens[i] = _count(tokens if tokens is not None else attrs.get(PROMPT_TOKENS_DEPRECATED))
            tokens = attrs.get(OUTPUT_TOKENS)
            output_tokens[i] = _count(tokens if tokens is not None else attrs.get(COMPLETION_TOKENS_DEPRECATED))
            cache_read[i] = _count(attrs.get(CACHE_READ_TOKENS))
            cache_write[i] = _count(attrs.get(CACHE_WRITE_TOKENS))
            reasoning[i] = _count(attrs.get(REASONING_TOKENS))
            ttft[i] = _seconds(attrs.get(TIME_TO_FIRST_CHUNK))
            tool_name[i] = attrs.get(TOOL_NAME, "")
            tool_call[i] = attrs.get(TOOL_CALL_ID, "")
            agent_name[i] = attrs.get(AGENT_NAME, "")
            agent_id[i] = attrs.get(AGENT_ID, "")
            conversation[i] = attrs.get(CONVERSATION_ID, "")
        self.genai_spans_total += genai
        for name, values in out.items():
            batch.set_column(name, values)
        return batch
