"""normalize: GenAI span attributes of every known dialect -> the typed GenAI columns.

Reads the current OpenTelemetry GenAI semantic conventions, their deprecated
names, and the dialects of OpenLLMetry (Traceloop), OpenInference and OpenLIT
(names and precedence in `dialects`). For each column the first name present
on a span wins, current conventions first. Attributes arrive as strings (the
Map column's value type); counts are parsed back to integers here, once.

Per span this costs one dict lookup per name tried: a span in the current
conventions stops at the first name of each column it carries.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from spanhouse.collector.batch import GENAI_TABLE, GenAIColumn, SpanBatch
from spanhouse.collector.processors import dialects as d

# Token columns are Nullable(UInt64): a larger value would fail every retry of the insert.
_UINT64_MAX = (1 << 64) - 1

# error.type when a GenAI span failed (status Error) without saying how (semantic conventions' fallback).
_OTHER_ERROR = "_OTHER"


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
    # "inf" parses but is no duration: it would turn every percentile and mean it joins into inf.
    return value if 0 <= value < math.inf else None


def _reasons(text: str | None) -> list[str]:
    if not text:
        return []
    return list(_parsed_reasons(text))


@functools.lru_cache(maxsize=1024)
def _parsed_reasons(text: str) -> tuple[str, ...]:
    """Finish reasons take few distinct values ('["stop"]', '["tool_calls"]'): each is parsed once."""
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return (text,)
        if isinstance(parsed, list):
            return tuple(str(r) for r in parsed)
    return (text,)


def _invocation_model(text: str) -> str:
    """The `model` of OpenInference's invocation parameters (a JSON object); '' if none."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return ""
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else ""


def _error_type(text: str) -> str:
    # Some instrumentors record str(type(exc)): "<class 'openai.RateLimitError'>" -> "openai.RateLimitError".
    if text.startswith("<class '") and text.endswith("'>"):
        return text[8:-2]
    return text


def _exception_type(names: Any, attributes: Any) -> str:
    """exception.type of the span's first exception event, or the conventions' fallback."""
    if names:
        for name, attrs in zip(names, attributes or ()):
            if name == "exception":
                return attrs.get("exception.type") or _OTHER_ERROR
    return _OTHER_ERROR


def _outcome(text: str) -> str | None:
    """A task outcome in its stored form ('Completed ' -> 'completed'); None when it is none of the four."""
    value = text.strip().lower()
    return value if value in _OUTCOMES else None


def _positions(values: list[Any], wanted: Any) -> list[int]:
    """Indices of `wanted` in `values`, scanned by list.index (C speed: errors are rare)."""
    found: list[int] = []
    i = -1
    try:
        while True:
            i = values.index(wanted, i + 1)
            found.append(i)
    except ValueError:
        return found


def _operation(get: Any) -> str | None:
    """Operation of a span without gen_ai.operation.name, from older dialects; None if not a GenAI call."""
    kind = get(d.OPENINFERENCE_SPAN_KIND)
    if kind is not None:
        return d.OPENINFERENCE_OPERATIONS.get(kind)
    request_type = get(d.TRACELOOP_REQUEST_TYPE)
    if request_type is not None:
        return d.TRACELOOP_OPERATIONS.get(request_type, request_type)
    if get(d.REQUEST_MODEL_KEYS[0]) is not None or get(d.RESPONSE_MODEL_KEYS[0]) is not None:
        return d.LEGACY_OPERATION
    return None


# Each column's names, unpacked once and named after the dialect they come from (dialects.py has the
# precedence); the loop below reads them as module constants, which keeps the per-span cost to dict lookups.
_OPERATION, _ERROR_TYPE, _RESPONSE_ID = d.OPERATION, d.ERROR_TYPE, d.RESPONSE_ID
_PROVIDER, _SYSTEM_DEPRECATED, _LLM_PROVIDER, _LLM_SYSTEM = d.PROVIDER_KEYS
_REQUEST_MODEL, _LLM_REQUEST_MODEL = d.REQUEST_MODEL_KEYS
_RESPONSE_MODEL, _LLM_RESPONSE_MODEL = d.RESPONSE_MODEL_KEYS
_LLM_MODEL_NAME, _EMBEDDING_MODEL_NAME = d.OPENINFERENCE_MODEL_KEYS
_FINISH_REASONS, _LLM_FINISH_REASON, _FIRST_COMPLETION_FINISH_REASON = d.FINISH_REASONS_KEYS
_INPUT_TOKENS, _PROMPT_TOKENS, _LLM_PROMPT_TOKENS = d.INPUT_TOKENS_KEYS
_OUTPUT_TOKENS, _COMPLETION_TOKENS, _LLM_COMPLETION_TOKENS = d.OUTPUT_TOKENS_KEYS
_CACHE_READ, _CACHE_READ_OPENLLMETRY, _LLM_CACHE_READ = d.CACHE_READ_TOKENS_KEYS
(_CACHE_WRITE, _CACHE_WRITE_ANTHROPIC_SDK, _CACHE_CREATION_OPENLLMETRY,
 _LLM_CACHE_WRITE) = d.CACHE_WRITE_TOKENS_KEYS
_REASONING, _REASONING_OPENLLMETRY, _REASONING_OPENLLMETRY_OLD, _LLM_REASONING = d.REASONING_TOKENS_KEYS
(_TTFT,) = d.TIME_TO_FIRST_CHUNK_KEYS
_TOOL_NAME, _LLM_TOOL_NAME = d.TOOL_NAME_KEYS
_TOOL_CALL_ID, _LLM_TOOL_CALL_ID = d.TOOL_CALL_ID_KEYS
_AGENT_NAME, _LLM_AGENT_NAME = d.AGENT_NAME_KEYS
(_AGENT_ID,) = d.AGENT_ID_KEYS
_CONVERSATION_ID, _SESSION_ID = d.CONVERSATION_ID_KEYS
_USER_ID, _USER_HASH = d.USER_ID_KEYS
_AGENT_VERSION, _AGENT_VERSION_OURS = d.AGENT_VERSION_KEYS
_PROMPT_NAME, _PROMPT_NAME_OURS = d.PROMPT_NAME_KEYS
(_PROMPT_VERSION,) = d.PROMPT_VERSION_KEYS
(_OUTCOME,) = d.OUTCOME_KEYS
(_OUTCOME_REASON,) = d.OUTCOME_REASON_KEYS
_OUTCOMES = d.OUTCOMES
# Every name of a task column: a span carrying none of them (most calls) skips their lookups in one C call.
_TASK_KEYS = frozenset(d.USER_ID_KEYS + d.AGENT_VERSION_KEYS + d.PROMPT_NAME_KEYS + d.PROMPT_VERSION_KEYS
                       + d.OUTCOME_KEYS + d.OUTCOME_REASON_KEYS)
_DIALECT_KEYS = d.DIALECT_KEYS
_OI_PARAMETERS = d.OPENINFERENCE_INVOCATION_PARAMETERS
_OI_EMBEDDING_PARAMETERS = d.OPENINFERENCE_EMBEDDING_INVOCATION_PARAMETERS
_OPENLIT_SDK_NAME, _OPENLIT_STREAM, _OPENLIT_TTFT = (
    d.OPENLIT_SDK_NAME, d.OPENLIT_REQUEST_STREAM, d.OPENLIT_TIME_TO_FIRST_TOKEN)
_PROVIDERS = d.PROVIDERS

# The columns normalize fills: every GenAI column read from an attribute (batch.GENAI_TABLE).
_FILLED: tuple[GenAIColumn, ...] = tuple(column for column in GENAI_TABLE if column.source is not None)
# And those read from the resource attributes, for every span (GenAI or not).
_FROM_RESOURCE: tuple[GenAIColumn, ...] = tuple(column for column in GENAI_TABLE if column.resource_sources)


def _resource_values(resources: list[dict[str, str]], keys: tuple[str, ...]) -> list[str]:
    """Per span, the first of `keys` present in its resource attributes ('' when none is).

    The spans of one resource share one dict (decode), so each resource is read once."""
    values: list[str] = []
    last: dict[str, str] | None = None
    value = ""
    for attrs in resources:
        if attrs is not last:
            last = attrs
            value = next((found for key in keys if (found := attrs.get(key))), "")
        values.append(value)
    return values


class NormalizeProcessor:
    """Fills Operation, Provider, models, tokens, tool/agent/conversation ids and ErrorType, and every
    span's ServiceVersion and DeploymentEnvironment from its resource."""

    name = "normalize"

    def __init__(self) -> None:
        self.genai_spans_total = 0
        self.dialect_spans_total = 0
        # spanhouse.outcome values outside the four outcomes: stored as '' (the attribute keeps the value).
        self.outcomes_refused_total = 0

    def counters(self) -> dict[str, int]:
        return {"genai_spans_total": self.genai_spans_total, "dialect_spans_total": self.dialect_spans_total,
                "outcomes_refused_total": self.outcomes_refused_total}

    def process(self, batch: SpanBatch) -> SpanBatch:
        n = batch.size
        filled = {column.name: [column.default] * n for column in _FILLED}
        operation, provider = filled["Operation"], filled["Provider"]
        request_model, response_model = filled["RequestModel"], filled["ResponseModel"]
        response_id, finish = filled["ResponseId"], filled["FinishReasons"]
        input_tokens, output_tokens = filled["InputTokens"], filled["OutputTokens"]
        cache_read, cache_write = filled["CacheReadTokens"], filled["CacheWriteTokens"]
        reasoning, ttft = filled["ReasoningTokens"], filled["TimeToFirstToken"]
        tool_name, tool_call = filled["ToolName"], filled["ToolCallId"]
        agent_name, agent_id = filled["AgentName"], filled["AgentId"]
        conversation, error_type = filled["ConversationId"], filled["ErrorType"]
        user_id, agent_version = filled["UserId"], filled["AgentVersion"]
        prompt_name, prompt_version = filled["PromptName"], filled["PromptVersion"]
        outcome, outcome_reason = filled["Outcome"], filled["OutcomeReason"]
        isdisjoint = _DIALECT_KEYS.isdisjoint
        no_task_keys = _TASK_KEYS.isdisjoint
        genai = dialect = refused = 0
        for i, attrs in enumerate(batch["SpanAttributes"]):
            get = attrs.get
            error = get(_ERROR_TYPE)
            if error:
                error_type[i] = _error_type(error)
            op = get(_OPERATION)
            legacy = op is None
            if legacy:
                op = _operation(get)
                if op is None:
                    continue
            genai += 1
            if not no_task_keys(attrs):
                # Task columns, whatever the dialect: set by our helpers (or anyone) on agent runs and calls.
                user_id[i] = get(_USER_ID) or get(_USER_HASH) or ""
                agent_version[i] = get(_AGENT_VERSION) or get(_AGENT_VERSION_OURS) or ""
                prompt_name[i] = get(_PROMPT_NAME) or get(_PROMPT_NAME_OURS) or ""
                prompt_version[i] = get(_PROMPT_VERSION, "")
                outcome_reason[i] = get(_OUTCOME_REASON, "")
                if value := get(_OUTCOME):
                    status_text = _outcome(value)
                    if status_text is None:
                        refused += 1
                    else:
                        outcome[i] = status_text
            if isdisjoint(attrs):
                # The current conventions (or their deprecated names' absence): one lookup per column.
                operation[i] = op
                provider[i] = get(_PROVIDER, "")
                request_model[i] = get(_REQUEST_MODEL, "")
                response_model[i] = get(_RESPONSE_MODEL, "")
                response_id[i] = get(_RESPONSE_ID, "")
                # A missing attribute keeps the column's default without a call (most spans lack most).
                if (value := get(_FINISH_REASONS)) is not None:
                    finish[i] = _reasons(value)
                if (value := get(_INPUT_TOKENS)) is not None:
                    input_tokens[i] = _count(value)
                if (value := get(_OUTPUT_TOKENS)) is not None:
                    output_tokens[i] = _count(value)
                if (value := get(_CACHE_READ)) is not None:
                    cache_read[i] = _count(value)
                if (value := get(_CACHE_WRITE)) is not None:
                    cache_write[i] = _count(value)
                if (value := get(_REASONING)) is not None:
                    reasoning[i] = _count(value)
                if (value := get(_TTFT)) is not None:
                    ttft[i] = _seconds(value)
                tool_name[i] = get(_TOOL_NAME, "")
                tool_call[i] = get(_TOOL_CALL_ID, "")
                agent_name[i] = get(_AGENT_NAME, "")
                agent_id[i] = get(_AGENT_ID, "")
                conversation[i] = get(_CONVERSATION_ID, "")
            else:
                # Another dialect's names somewhere on the span: each column takes its first name present.
                dialect += 1
                system = (get(_PROVIDER) or get(_SYSTEM_DEPRECATED) or get(_LLM_PROVIDER)
                          or get(_LLM_SYSTEM) or "")
                system = provider[i] = _PROVIDERS.get(system, system)
                if legacy and op == "text_completion" and system == "anthropic":
                    op = "chat"  # OpenLLMetry called Anthropic's Messages API "completion"
                operation[i] = op
                model = get(_REQUEST_MODEL) or get(_LLM_REQUEST_MODEL)
                answered = get(_RESPONSE_MODEL) or get(_LLM_RESPONSE_MODEL)
                if model is None or answered is None:
                    named = get(_LLM_MODEL_NAME) or get(_EMBEDDING_MODEL_NAME)
                    if model is None:
                        parameters = get(_OI_PARAMETERS) or get(_OI_EMBEDDING_PARAMETERS)
                        model = (_invocation_model(parameters) if parameters else "") or named
                    if answered is None:
                        answered = named
                request_model[i] = model or ""
                response_model[i] = answered or ""
                response_id[i] = get(_RESPONSE_ID, "")
                finish[i] = _reasons(get(_FINISH_REASONS) or get(_LLM_FINISH_REASON)
                                     or get(_FIRST_COMPLETION_FINISH_REASON))
                tokens = _count(get(_INPUT_TOKENS) or get(_PROMPT_TOKENS) or get(_LLM_PROMPT_TOKENS))
                read = cache_read[i] = _count(get(_CACHE_READ) or get(_CACHE_READ_OPENLLMETRY)
                                              or get(_LLM_CACHE_READ))
                write = cache_write[i] = _count(get(_CACHE_WRITE) or get(_CACHE_WRITE_ANTHROPIC_SDK)
                                                or get(_CACHE_CREATION_OPENLLMETRY) or get(_LLM_CACHE_WRITE))
                if system == "anthropic" and tokens is not None and get(_OPENLIT_SDK_NAME) == "openlit":
                    # OpenLIT passes on Anthropic's input_tokens, which leave out cached tokens; the
                    # conventions' input count includes them (priced once, at their own rate, later on).
                    tokens += (read or 0) + (write or 0)
                input_tokens[i] = tokens
                output_tokens[i] = _count(get(_OUTPUT_TOKENS) or get(_COMPLETION_TOKENS)
                                          or get(_LLM_COMPLETION_TOKENS))
                reasoning[i] = _count(get(_REASONING) or get(_REASONING_OPENLLMETRY)
                                      or get(_REASONING_OPENLLMETRY_OLD) or get(_LLM_REASONING))
                first = get(_TTFT)
                if first is None and get(_OPENLIT_STREAM) == "true":
                    first = get(_OPENLIT_TTFT)  # only a stream's: otherwise OpenLIT records the whole call
                ttft[i] = _seconds(first)
                tool_name[i] = get(_TOOL_NAME) or get(_LLM_TOOL_NAME) or ""
                tool_call[i] = get(_TOOL_CALL_ID) or get(_LLM_TOOL_CALL_ID) or ""
                agent_name[i] = get(_AGENT_NAME) or get(_LLM_AGENT_NAME) or ""
                agent_id[i] = get(_AGENT_ID, "")
                conversation[i] = get(_CONVERSATION_ID) or get(_SESSION_ID) or ""
        status = batch.columns.get("StatusCode")
        if status is not None and "Error" in status:
            event_names = batch.columns.get("Events.Name")
            event_attributes = batch.columns.get("Events.Attributes")
            # A failed call that names no error.type (OpenInference, some SDKs): its exception event's.
            for i in _positions(status, "Error"):
                if operation[i] and not error_type[i]:
                    error_type[i] = _exception_type(event_names[i] if event_names else None,
                                                    event_attributes[i] if event_attributes else None)
        self.genai_spans_total += genai
        self.dialect_spans_total += dialect
        self.outcomes_refused_total += refused
        for name, values in filled.items():
            batch.set_column(name, values)
        resources = batch.columns.get("ResourceAttributes")
        if resources is not None:
            for column in _FROM_RESOURCE:
                batch.set_column(column.name, _resource_values(resources, column.resource_sources))
        return batch
