"""Pure functions from OpenAI request kwargs and responses to GenAI attributes.

Chat Completions, Responses and Embeddings each get a request, a response and
(for the opt-in content capture) a messages extractor. Messages follow the
conventions' parts-based schema: {"role", "parts": [{"type": ...}], ...}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _semconv as sc
from .._content import parse_arguments
from .._fields import field, integer, items, number, path, string, strings

Attributes = dict[str, Any]

# OpenAI finish reasons -> the conventions' output-message finish_reason values.
_FINISH_REASON = {"tool_calls": "tool_call", "function_call": "tool_call"}
_JSON_FORMATS = frozenset({"json_object", "json_schema"})


def _output_type(response_format: Any) -> str | None:
    kind = string(field(response_format, "type"))
    if kind is None:
        return None
    return "json" if kind in _JSON_FORMATS else kind


def chat_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    choices = integer(kwargs.get("n"))
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.REQUEST_MAX_TOKENS: integer(kwargs.get("max_completion_tokens")) or integer(kwargs.get("max_tokens")),
        sc.REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        sc.REQUEST_TOP_P: number(kwargs.get("top_p")),
        sc.REQUEST_FREQUENCY_PENALTY: number(kwargs.get("frequency_penalty")),
        sc.REQUEST_PRESENCE_PENALTY: number(kwargs.get("presence_penalty")),
        sc.REQUEST_STOP_SEQUENCES: strings(kwargs.get("stop")),
        sc.REQUEST_SEED: integer(kwargs.get("seed")),
        # The conventions ask for the choice count only when it is not 1.
        sc.REQUEST_CHOICE_COUNT: choices if choices is not None and choices != 1 else None,
        sc.REQUEST_STREAM: True if kwargs.get("stream") is True else None,
        sc.OUTPUT_TYPE: _output_type(kwargs.get("response_format")),
    }


def usage_attributes(usage: Any) -> Attributes:
    """Chat usage (prompt_/completion_tokens) or Responses usage (input_/output_tokens)."""
    if usage is None:
        return {}
    input_tokens = integer(field(usage, "prompt_tokens"))
    if input_tokens is None:
        input_tokens = integer(field(usage, "input_tokens"))
    output_tokens = integer(field(usage, "completion_tokens"))
    if output_tokens is None:
        output_tokens = integer(field(usage, "output_tokens"))
    input_details = field(usage, "prompt_tokens_details") or field(usage, "input_tokens_details")
    output_details = field(usage, "completion_tokens_details") or field(usage, "output_tokens_details")
    # OpenAI's prompt_tokens already include the cached ones, as the conventions want.
    return {
        sc.USAGE_INPUT_TOKENS: input_tokens,
        sc.USAGE_OUTPUT_TOKENS: output_tokens,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: integer(field(input_details, "cached_tokens")),
        sc.USAGE_REASONING_OUTPUT_TOKENS: integer(field(output_details, "reasoning_tokens")),
    }


def chat_response_attributes(response: Any) -> Attributes:
    reasons = [r for r in (string(field(c, "finish_reason")) for c in items(field(response, "choices"))) if r]
    return {
        sc.RESPONSE_ID: string(field(response, "id")),
        sc.RESPONSE_MODEL: string(field(response, "model")),
        sc.RESPONSE_FINISH_REASONS: reasons or None,
        **usage_attributes(field(response, "usage")),
    }


def _text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text}


def _tool_call_part(call: Any) -> dict[str, Any]:
    function = field(call, "function")
    return {"type": "tool_call", "id": field(call, "id"), "name": field(function, "name"),
            "arguments": parse_arguments(field(function, "arguments"))}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(content)]
    parts = []
    for part in items(content):
        kind = field(part, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(_text_part(field(part, "text")))
        elif kind == "image_url":
            parts.append({"type": "uri", "modality": "image", "uri": path(part, "image_url", "url")})
        elif kind == "refusal":
            parts.append(_text_part(field(part, "refusal")))
        else:
            parts.append({"type": str(kind)})
    return parts


def chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    result = []
    for message in items(messages):
        role = field(message, "role")
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": field(message, "tool_call_id"),
                      "response": field(message, "content")}]
        else:
            parts = _content_parts(field(message, "content"))
            parts.extend(_tool_call_part(call) for call in items(field(message, "tool_calls")))
        result.append({"role": role, "parts": parts})
    return result


def tool_definitions(tools: Any) -> list[dict[str, Any]]:
    """Chat tools nest the function ({"function": {...}}); Responses tools are flat."""
    result = []
    for tool in items(tools):
        function = field(tool, "function") or tool
        result.append({"type": field(tool, "type") or "function", "name": field(function, "name"),
                       "description": field(function, "description"),
                       "parameters": field(function, "parameters")})
    return result


def chat_request_content(kwargs: Mapping[str, Any]) -> Attributes:
    return {
        sc.INPUT_MESSAGES: chat_input_messages(kwargs.get("messages")),
        sc.TOOL_DEFINITIONS: tool_definitions(kwargs.get("tools")),
    }


def chat_output_messages(response: Any) -> list[dict[str, Any]]:
    result = []
    for choice in items(field(response, "choices")):
        message = field(choice, "message")
        parts = _content_parts(field(message, "content"))
        parts.extend(_tool_call_part(call) for call in items(field(message, "tool_calls")))
        reason = field(choice, "finish_reason")
        result.append({"role": field(message, "role") or "assistant", "parts": parts,
                       "finish_reason": _FINISH_REASON.get(reason, reason)})
    return result


# --- Responses API -------------------------------------------------------------------------------

def responses_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    text_format = path(kwargs.get("text"), "format")
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.REQUEST_MAX_TOKENS: integer(kwargs.get("max_output_tokens")),
        sc.REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        sc.REQUEST_TOP_P: number(kwargs.get("top_p")),
        sc.REQUEST_STREAM: True if kwargs.get("stream") is True else None,
        sc.OUTPUT_TYPE: _output_type(text_format),
        sc.CONVERSATION_ID: string(kwargs.get("conversation")) or string(path(kwargs.get("conversation"), "id")),
    }


def _responses_finish_reason(response: Any) -> str | None:
    status = field(response, "status")
    if status == "completed":
        has_call = any(field(item, "type") == "function_call" for item in items(field(response, "output")))
        return "tool_call" if has_call else "stop"
    if status == "incomplete":
        reason = path(response, "incomplete_details", "reason")
        return "length" if reason == "max_output_tokens" else string(reason) or "incomplete"
    if status == "failed":
        return "error"
    return string(status)


def responses_response_attributes(response: Any) -> Attributes:
    reason = _responses_finish_reason(response)
    return {
        sc.RESPONSE_ID: string(field(response, "id")),
        sc.RESPONSE_MODEL: string(field(response, "model")),
        sc.RESPONSE_FINISH_REASONS: [reason] if reason else None,
        **usage_attributes(field(response, "usage")),
    }


def responses_input_messages(input_value: Any) -> list[dict[str, Any]]:
    if isinstance(input_value, str):
        return [{"role": "user", "parts": [_text_part(input_value)]}]
    result = []
    for item in items(input_value):
        kind = field(item, "type")
        if kind == "function_call":
            part = {"type": "tool_call", "id": field(item, "call_id"), "name": field(item, "name"),
                    "arguments": parse_arguments(field(item, "arguments"))}
            result.append({"role": "assistant", "parts": [part]})
        elif kind == "function_call_output":
            part = {"type": "tool_call_response", "id": field(item, "call_id"), "response": field(item, "output")}
            result.append({"role": "tool", "parts": [part]})
        elif field(item, "role") is not None:
            result.append({"role": field(item, "role"), "parts": _content_parts(field(item, "content"))})
        else:
            result.append({"role": "user", "parts": [{"type": str(kind)}]})
    return result


def responses_request_content(kwargs: Mapping[str, Any]) -> Attributes:
    instructions = string(kwargs.get("instructions"))
    return {
        sc.INPUT_MESSAGES: responses_input_messages(kwargs.get("input")),
        sc.SYSTEM_INSTRUCTIONS: [_text_part(instructions)] if instructions else None,
        sc.TOOL_DEFINITIONS: tool_definitions(kwargs.get("tools")),
    }


def responses_output_messages(response: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for item in items(field(response, "output")):
        kind = field(item, "type")
        if kind == "message":
            parts.extend(_content_parts(field(item, "content")))
        elif kind == "function_call":
            parts.append({"type": "tool_call", "id": field(item, "call_id"), "name": field(item, "name"),
                          "arguments": parse_arguments(field(item, "arguments"))})
        elif kind == "reasoning":
            summary = " ".join(str(field(s, "text")) for s in items(field(item, "summary")))
            if summary:
                parts.append({"type": "reasoning", "content": summary})
    if not parts:
        return []
    return [{"role": "assistant", "parts": parts, "finish_reason": _responses_finish_reason(response)}]


# --- Embeddings ----------------------------------------------------------------------------------

def embeddings_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    encoding = string(kwargs.get("encoding_format"))
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.REQUEST_ENCODING_FORMATS: [encoding] if encoding else None,
        sc.EMBEDDINGS_DIMENSION_COUNT: integer(kwargs.get("dimensions")),
    }


def embeddings_response_attributes(response: Any) -> Attributes:
    data = items(field(response, "data"))
    dimensions = None
    if data and isinstance(field(data[0], "embedding"), list):
        dimensions = len(field(data[0], "embedding"))
    return {
        sc.RESPONSE_MODEL: string(field(response, "model")),
        sc.USAGE_INPUT_TOKENS: integer(path(response, "usage", "prompt_tokens")),
        sc.EMBEDDINGS_DIMENSION_COUNT: dimensions,
    }
