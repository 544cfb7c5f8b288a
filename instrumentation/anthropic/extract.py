"""Pure functions from Anthropic Messages requests and responses to GenAI attributes.

Anthropic reports cached tokens beside `input_tokens`, not inside it; the
conventions count them inside, so input_tokens = input + cache read + cache
creation here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _semconv as sc
from .._fields import field, integer, items, number, string, strings

Attributes = dict[str, Any]

# Anthropic stop reasons -> the conventions' output-message finish_reason values.
FINISH_REASON = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_call",
                 "refusal": "content_filter"}


def messages_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.REQUEST_MAX_TOKENS: integer(kwargs.get("max_tokens")),
        sc.REQUEST_TEMPERATURE: number(kwargs.get("temperature")),
        sc.REQUEST_TOP_P: number(kwargs.get("top_p")),
        sc.REQUEST_TOP_K: integer(kwargs.get("top_k")),
        sc.REQUEST_STOP_SEQUENCES: strings(kwargs.get("stop_sequences")),
        sc.REQUEST_STREAM: True if kwargs.get("stream") is True else None,
    }


def stream_helper_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    """`messages.stream()` always streams, though its kwargs say nothing about it."""
    return {**messages_request_attributes(kwargs), sc.REQUEST_STREAM: True}


def usage_attributes(usage: Any) -> Attributes:
    if usage is None:
        return {}
    uncached = integer(field(usage, "input_tokens"))
    cache_read = integer(field(usage, "cache_read_input_tokens"))
    cache_creation = integer(field(usage, "cache_creation_input_tokens"))
    total = None if uncached is None else uncached + (cache_read or 0) + (cache_creation or 0)
    return {
        sc.USAGE_INPUT_TOKENS: total,
        sc.USAGE_OUTPUT_TOKENS: integer(field(usage, "output_tokens")),
        sc.USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
        sc.USAGE_CACHE_CREATION_INPUT_TOKENS: cache_creation,
    }


def messages_response_attributes(message: Any) -> Attributes:
    reason = string(field(message, "stop_reason"))
    return {
        sc.RESPONSE_ID: string(field(message, "id")),
        sc.RESPONSE_MODEL: string(field(message, "model")),
        sc.RESPONSE_FINISH_REASONS: [reason] if reason else None,
        **usage_attributes(field(message, "usage")),
    }


def block_part(block: Any) -> dict[str, Any]:
    """One content block (request or response) as a parts-schema part."""
    kind = field(block, "type")
    if kind == "text":
        return {"type": "text", "content": field(block, "text")}
    if kind == "tool_use":
        return {"type": "tool_call", "id": field(block, "id"), "name": field(block, "name"),
                "arguments": field(block, "input")}
    if kind == "tool_result":
        content = field(block, "content")
        if not isinstance(content, str):
            content = [block_part(b) for b in items(content)]
        return {"type": "tool_call_response", "id": field(block, "tool_use_id"), "response": content}
    if kind == "thinking":
        return {"type": "reasoning", "content": field(block, "thinking")}
    if kind == "image":
        source = field(block, "source")
        if field(source, "type") == "url":
            return {"type": "uri", "modality": "image", "uri": field(source, "url")}
        # Inline base64 images are elided: they would only ever be truncated away.
        return {"type": "blob", "modality": "image", "mime_type": field(source, "media_type")}
    return {"type": str(kind)}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [block_part(block) for block in items(content)]


def messages_request_content(kwargs: Mapping[str, Any]) -> Attributes:
    system = kwargs.get("system")
    tools = [{"type": "function", "name": field(tool, "name"), "description": field(tool, "description"),
              "parameters": field(tool, "input_schema")} for tool in items(kwargs.get("tools"))]
    return {
        sc.INPUT_MESSAGES: [{"role": field(m, "role"), "parts": _parts(field(m, "content"))}
                            for m in items(kwargs.get("messages"))],
        sc.SYSTEM_INSTRUCTIONS: _parts(system) if system else None,
        sc.TOOL_DEFINITIONS: tools,
    }


def messages_output_messages(message: Any) -> list[dict[str, Any]]:
    reason = field(message, "stop_reason")
    return [{"role": field(message, "role") or "assistant", "parts": _parts(field(message, "content")),
             "finish_reason": FINISH_REASON.get(reason, reason)}]
