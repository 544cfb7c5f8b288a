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
    return value if value >= 0 else None


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


# Unpacked once: the loops below read module constants as locals.
_OPERATION, _ERROR_TYPE, _RESPONSE_ID = d.OPERATION, d.ERROR_TYPE, d.RESPONSE_ID
_P1, _P2, _P3, _P4 = d.PROVIDER_KEYS
_RQ1, _RQ2 = d.REQUEST_MODEL_KEYS
_RS1, _RS2 = d.RESPONSE_MODEL_KEYS
_OM1, _OM2 = d.OPENINFERENCE_MODEL_KEYS
_FR1, _FR2, _FR3 = d.FINISH_REASONS_KEYS
_IN1, _IN2, _IN3 = d.INPUT_TOKENS_KEYS
_OUT1, _OUT2, _OUT3 = d.OUTPUT_TOKENS_KEYS
_CR1, _CR2, _CR3 = d.CACHE_READ_TOKENS_KEYS
_CW1, _CW2, _CW3, _CW4 = d.CACHE_WRITE_TOKENS_KEYS
_RE1, _RE2, _RE3, _RE4 = d.REASONING_TOKENS_KEYS
(_TTFT,) = d.TIME_TO_FIRST_CHUNK_KEYS
_TN1, _TN2 = d.TOOL_NAME_KEYS
_TC1, _TC2 = d.TOOL_CALL_ID_KEYS
_AN1, _AN2 = d.AGENT_NAME_KEYS
(_AID,) = d.AGENT_ID_KEYS
_CV1, _CV2 = d.CONVERSATION_ID_KEYS
_DIALECT_KEYS = d.DIALECT_KEYS
_OI_PARAMETERS = d.OPENINFERENCE_INVOCATION_PARAMETERS
_OI_EMBEDDING_PARAMETERS = d.OPENINFERENCE_EMBEDDING_INVOCATION_PARAMETERS
_OPENLIT_SDK_NAME, _OPENLIT_STREAM, _OPENLIT_TTFT = (
    d.OPENLIT_SDK_NAME, d.OPENLIT_REQUEST_STREAM, d.OPENLIT_TIME_TO_FIRST_TOKEN)
_PROVIDERS = d.PROVIDERS

# The columns normalize fills: every GenAI column read from an attribute (batch.GENAI_TABLE).
_FILLED: tuple[GenAIColumn, ...] = tuple(column for column in GENAI_TABLE if column.source is not None)


class NormalizeProcessor:
    """Fills Operation, Provider, models, tokens, tool/agent/conversation ids and ErrorType."""

    name = "normalize"

    def __init__(self) -> None:
        self.genai_spans_total = 0
        self.dialect_spans_total = 0

    def counters(self) -> dict[str, int]:
        return {"genai_spans_total": self.genai_spans_total, "dialect_spans_total": self.dialect_spans_total}

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
        isdisjoint = _DIALECT_KEYS.isdisjoint
        genai = dialect = 0
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
            if isdisjoint(attrs):
                # The current conventions (or their deprecated names' absence): one lookup per column.
                operation[i] = op
                provider[i] = get(_P1, "")
                request_model[i] = get(_RQ1, "")
                response_model[i] = get(_RS1, "")
                response_id[i] = get(_RESPONSE_ID, "")
                # A missing attribute keeps the column's default without a call (most spans lack most).
                if (value := get(_FR1)) is not None:
                    finish[i] = _reasons(value)
                if (value := get(_IN1)) is not None:
                    input_tokens[i] = _count(value)
                if (value := get(_OUT1)) is not None:
                    output_tokens[i] = _count(value)
                if (value := get(_CR1)) is not None:
                    cache_read[i] = _count(value)
                if (value := get(_CW1)) is not None:
                    cache_write[i] = _count(value)
                if (value := get(_RE1)) is not None:
                    reasoning[i] = _count(value)
                if (value := get(_TTFT)) is not None:
                    ttft[i] = _seconds(value)
                tool_name[i] = get(_TN1, "")
                tool_call[i] = get(_TC1, "")
                agent_name[i] = get(_AN1, "")
                agent_id[i] = get(_AID, "")
                conversation[i] = get(_CV1, "")
            else:
                # Another dialect's names somewhere on the span: each column takes its first name present.
                dialect += 1
                system = get(_P1) or get(_P2) or get(_P3) or get(_P4) or ""
                system = provider[i] = _PROVIDERS.get(system, system)
                if legacy and op == "text_completion" and system == "anthropic":
                    op = "chat"  # OpenLLMetry called Anthropic's Messages API "completion"
                operation[i] = op
                model = get(_RQ1) or get(_RQ2)
                answered = get(_RS1) or get(_RS2)
                if model is None or answered is None:
                    named = get(_OM1) or get(_OM2)
                    if model is None:
                        parameters = get(_OI_PARAMETERS) or get(_OI_EMBEDDING_PARAMETERS)
                        model = (_invocation_model(parameters) if parameters else "") or named
                    if answered is None:
                        answered = named
                request_model[i] = model or ""
                response_model[i] = answered or ""
                response_id[i] = get(_RESPONSE_ID, "")
                finish[i] = _reasons(get(_FR1) or get(_FR2) or get(_FR3))
                tokens = _count(get(_IN1) or get(_IN2) or get(_IN3))
                read = cache_read[i] = _count(get(_CR1) or get(_CR2) or get(_CR3))
                write = cache_write[i] = _count(get(_CW1) or get(_CW2) or get(_CW3) or get(_CW4))
                if system == "anthropic" and tokens is not None and get(_OPENLIT_SDK_NAME) == "openlit":
                    # OpenLIT passes on Anthropic's input_tokens, which leave out cached tokens; the
                    # conventions' input count includes them (priced once, at their own rate, later on).
                    tokens += (read or 0) + (write or 0)
                input_tokens[i] = tokens
                output_tokens[i] = _count(get(_OUT1) or get(_OUT2) or get(_OUT3))
                reasoning[i] = _count(get(_RE1) or get(_RE2) or get(_RE3) or get(_RE4))
                first = get(_TTFT)
                if first is None and get(_OPENLIT_STREAM) == "true":
                    first = get(_OPENLIT_TTFT)  # only a stream's: otherwise OpenLIT records the whole call
                ttft[i] = _seconds(first)
                tool_name[i] = get(_TN1) or get(_TN2) or ""
                tool_call[i] = get(_TC1) or get(_TC2) or ""
                agent_name[i] = get(_AN1) or get(_AN2) or ""
                agent_id[i] = get(_AID, "")
                conversation[i] = get(_CV1) or get(_CV2) or ""
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
        for name, values in filled.items():
            batch.set_column(name, values)
        return batch
