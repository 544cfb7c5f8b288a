"""Pure functions from Bedrock Runtime requests and responses to GenAI attributes.

botocore hands every operation its parameters as one dict (`api_params`) and
returns one dict. Converse and ConverseStream share one request shape across
model families; InvokeModel takes the model's own JSON body, so its family is
read from the model id (Anthropic `anthropic.claude-*`, Amazon `amazon.nova-*`,
`amazon.titan-text-*`, `amazon.titan-embed-*`; cross-region profiles such as
`us.anthropic.claude-*` and ARNs included) and, for responses, from the body's
shape.

Usage: Converse's `inputTokens` does not include `cacheReadInputTokens` and
`cacheWriteInputTokens`; the conventions count them inside, so input_tokens =
inputTokens + cache read + cache write here. The same holds for Nova's
InvokeModel body (`cacheReadInputTokenCount` / `cacheWriteInputTokenCount`) and
Anthropic's (`cache_read_input_tokens` / `cache_creation_input_tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .. import _semconv as sc
from .._fields import field, integer, items, number, path, string, strings
from ..anthropic import extract as anthropic_extract

Attributes = dict[str, Any]

# Converse stop reasons -> the conventions' output-message finish_reason values.
FINISH_REASON = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_call",
                 "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
                 "model_context_window_exceeded": "length", "FINISH": "stop", "LENGTH": "length",
                 "CONTENT_FILTERED": "content_filter"}

ANTHROPIC, NOVA, TITAN_TEXT, TITAN_EMBED, OTHER = "anthropic", "nova", "titan-text", "titan-embed", "other"


def family(model_id: Any) -> str:
    """The request/response dialect of an InvokeModel model id."""
    if not isinstance(model_id, str):
        return OTHER
    name = model_id.rsplit("/", 1)[-1]  # an ARN or a profile id ends with the model id
    if "anthropic.claude" in name:
        return ANTHROPIC
    if "amazon.nova" in name:
        return NOVA
    if "amazon.titan-embed" in name:
        return TITAN_EMBED
    if "amazon.titan-text" in name or "amazon.titan-tg" in name:
        return TITAN_TEXT
    return OTHER


# --- Client --------------------------------------------------------------------------------------

_last_endpoint: tuple[Any, Attributes] = (None, {})


def client_attributes(client: Any) -> Attributes:
    """server.address/port from the client's endpoint URL.

    The dict returned may be shared between calls: read it, never change it.
    """
    global _last_endpoint
    url = getattr(getattr(client, "meta", None), "endpoint_url", None)
    last_url, last = _last_endpoint
    if url == last_url and url is not None:
        return last
    attributes: Attributes = {}
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is not None and parts.hostname:
            default_port = 80 if parts.scheme == "http" else 443
            attributes = {sc.SERVER_ADDRESS: parts.hostname,
                          sc.SERVER_PORT: port if port is not None else default_port}
    _last_endpoint = (url, attributes)
    return attributes


def error_type(error: BaseException) -> str | None:
    """botocore's ClientError names the service's error code (ThrottlingException, ValidationException...)."""
    return string(path(getattr(error, "response", None), "Error", "Code"))


# --- Usage ---------------------------------------------------------------------------------------

def _usage(uncached: int | None, output: int | None, cache_read: int | None,
           cache_write: int | None) -> Attributes:
    total = None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0)
    return {
        sc.USAGE_INPUT_TOKENS: total,
        sc.USAGE_OUTPUT_TOKENS: output,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
        sc.USAGE_CACHE_CREATION_INPUT_TOKENS: cache_write,
    }


def converse_usage(usage: Any) -> Attributes:
    if usage is None:
        return {}
    return _usage(integer(field(usage, "inputTokens")), integer(field(usage, "outputTokens")),
                  integer(field(usage, "cacheReadInputTokens")) or integer(field(usage,
                                                                                 "cacheReadInputTokenCount")),
                  integer(field(usage, "cacheWriteInputTokens"))
                  or integer(field(usage, "cacheWriteInputTokenCount")))


def invocation_metrics_usage(metrics: Any) -> Attributes:
    """Token counts Bedrock adds to the last chunk of an InvokeModel stream (no cache detail)."""
    if metrics is None:
        return {}
    return {sc.USAGE_INPUT_TOKENS: integer(field(metrics, "inputTokenCount")),
            sc.USAGE_OUTPUT_TOKENS: integer(field(metrics, "outputTokenCount"))}


def finish_reasons(reason: Any) -> list[str] | None:
    return [reason] if isinstance(reason, str) and reason else None


# --- Converse ------------------------------------------------------------------------------------

def converse_request_attributes(params: Mapping[str, Any]) -> Attributes:
    config = params.get("inferenceConfig")
    extra = params.get("additionalModelRequestFields")
    return {
        sc.REQUEST_MODEL: string(params.get("modelId")),
        sc.REQUEST_MAX_TOKENS: integer(field(config, "maxTokens")),
        sc.REQUEST_TEMPERATURE: number(field(config, "temperature")),
        sc.REQUEST_TOP_P: number(field(config, "topP")),
        sc.REQUEST_TOP_K: number(field(extra, "top_k")) if isinstance(extra, dict) else None,
        sc.REQUEST_STOP_SEQUENCES: strings(field(config, "stopSequences")),
    }


def converse_stream_request_attributes(params: Mapping[str, Any]) -> Attributes:
    return {**converse_request_attributes(params), sc.REQUEST_STREAM: True}


def converse_response_attributes(response: Any) -> Attributes:
    return {
        sc.RESPONSE_FINISH_REASONS: finish_reasons(field(response, "stopReason")),
        **converse_usage(field(response, "usage")),
    }


def block_part(block: Any) -> dict[str, Any]:
    """One Converse content block as a parts-schema part."""
    if not isinstance(block, dict):
        return {"type": "unknown"}
    if "text" in block:
        return {"type": "text", "content": block["text"]}
    if "toolUse" in block:
        use = block["toolUse"]
        return {"type": "tool_call", "id": field(use, "toolUseId"), "name": field(use, "name"),
                "arguments": field(use, "input")}
    if "toolResult" in block:
        result = block["toolResult"]
        response = [field(c, "text") if field(c, "text") is not None else field(c, "json")
                    for c in items(field(result, "content"))]
        return {"type": "tool_call_response", "id": field(result, "toolUseId"),
                "response": response[0] if len(response) == 1 else response}
    if "reasoningContent" in block:
        return {"type": "reasoning", "content": path(block["reasoningContent"], "reasoningText", "text")}
    for kind in ("image", "document", "video", "audio"):
        if kind in block:
            # Inline bytes are elided: they would only ever be truncated away.
            return {"type": "blob", "modality": kind, "format": field(block[kind], "format")}
    return {"type": next(iter(block), "unknown")}


def _messages(messages: Any) -> list[dict[str, Any]]:
    return [{"role": field(m, "role"), "parts": [block_part(b) for b in items(field(m, "content"))]}
            for m in items(messages)]


def converse_request_content(params: Mapping[str, Any]) -> Attributes:
    tools = []
    for tool in items(path(params.get("toolConfig"), "tools")):
        spec = field(tool, "toolSpec")
        if spec is not None:
            tools.append({"type": "function", "name": field(spec, "name"),
                          "description": field(spec, "description"),
                          "parameters": path(spec, "inputSchema", "json")})
    system = [block_part(b) for b in items(params.get("system")) if isinstance(b, dict) and "text" in b]
    return {
        sc.INPUT_MESSAGES: _messages(params.get("messages")),
        sc.SYSTEM_INSTRUCTIONS: system or None,
        sc.TOOL_DEFINITIONS: tools,
    }


def output_message(parts: list[dict[str, Any]], reason: str | None) -> dict[str, Any]:
    return {"role": "assistant", "parts": parts, "finish_reason": FINISH_REASON.get(reason or "", reason)}


def converse_output_messages(response: Any) -> list[dict[str, Any]]:
    message = path(response, "output", "message")
    return [output_message([block_part(b) for b in items(field(message, "content"))],
                           string(field(response, "stopReason")))]


# --- InvokeModel ---------------------------------------------------------------------------------

def request_body(params: Mapping[str, Any]) -> Any:
    """The JSON body of an InvokeModel request (bytes, str or a file-like object), or None."""
    body = params.get("body")
    if isinstance(body, (bytes, bytearray, str)):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None  # a stream the SDK will read: reading it here would consume the user's request


def invoke_request_attributes(params: Mapping[str, Any]) -> Attributes:
    model = string(params.get("modelId"))
    body = request_body(params)
    kind = family(model)
    attributes: Attributes = {sc.REQUEST_MODEL: model}
    if not isinstance(body, dict):
        return attributes
    if kind == ANTHROPIC:
        attributes.update(anthropic_extract.messages_request_attributes(body))
        attributes[sc.REQUEST_MODEL] = model  # the body has no model; the id is the model
        attributes[sc.REQUEST_STREAM] = None
    elif kind == NOVA:
        config = body.get("inferenceConfig")
        attributes.update({
            sc.REQUEST_MAX_TOKENS: integer(field(config, "maxTokens")) or integer(field(config,
                                                                                        "max_new_tokens")),
            sc.REQUEST_TEMPERATURE: number(field(config, "temperature")),
            sc.REQUEST_TOP_P: number(field(config, "topP")),
            sc.REQUEST_TOP_K: number(field(config, "topK")),
            sc.REQUEST_STOP_SEQUENCES: strings(field(config, "stopSequences")),
        })
    elif kind == TITAN_TEXT:
        config = body.get("textGenerationConfig")
        attributes.update({
            sc.REQUEST_MAX_TOKENS: integer(field(config, "maxTokenCount")),
            sc.REQUEST_TEMPERATURE: number(field(config, "temperature")),
            sc.REQUEST_TOP_P: number(field(config, "topP")),
            sc.REQUEST_STOP_SEQUENCES: strings(field(config, "stopSequences")),
        })
    elif kind == TITAN_EMBED:
        attributes[sc.EMBEDDINGS_DIMENSION_COUNT] = integer(body.get("dimensions"))
    return attributes


def invoke_stream_request_attributes(params: Mapping[str, Any]) -> Attributes:
    return {**invoke_request_attributes(params), sc.REQUEST_STREAM: True}


def invoke_body_attributes(body: Any, headers: Any = None) -> Attributes:
    """Response attributes from a parsed InvokeModel body, by its shape; token-count headers fill gaps."""
    attributes: Attributes = {}
    if isinstance(body, dict):
        usage = body.get("usage")
        if body.get("type") == "message" or integer(field(usage, "input_tokens")) is not None:
            attributes = anthropic_extract.messages_response_attributes(body)
        elif integer(field(usage, "inputTokens")) is not None or "output" in body:  # Nova
            attributes = {sc.RESPONSE_FINISH_REASONS: finish_reasons(body.get("stopReason")),
                          **converse_usage(usage)}
        elif "inputTextTokenCount" in body:  # Titan text and embeddings
            results = items(body.get("results"))
            reasons = [r for r in (string(field(x, "completionReason")) for x in results) if r]
            outputs = [integer(field(x, "tokenCount")) for x in results]
            embedding = body.get("embedding")
            attributes = {
                sc.USAGE_INPUT_TOKENS: integer(body.get("inputTextTokenCount")),
                sc.USAGE_OUTPUT_TOKENS: sum(o for o in outputs if o is not None) if results else None,
                sc.RESPONSE_FINISH_REASONS: reasons or None,
                sc.EMBEDDINGS_DIMENSION_COUNT: len(embedding) if isinstance(embedding, list) else None,
            }
    if attributes.get(sc.USAGE_INPUT_TOKENS) is None and isinstance(headers, Mapping):
        # Every InvokeModel answer carries the counts in headers too (without the cache breakdown).
        for key, header in ((sc.USAGE_INPUT_TOKENS, "x-amzn-bedrock-input-token-count"),
                            (sc.USAGE_OUTPUT_TOKENS, "x-amzn-bedrock-output-token-count")):
            raw = headers.get(header)
            if isinstance(raw, str) and raw.isdigit() and attributes.get(key) is None:
                attributes[key] = int(raw)
    return attributes


def invoke_request_content(params: Mapping[str, Any]) -> Attributes:
    body = request_body(params)
    if not isinstance(body, dict):
        return {}
    kind = family(params.get("modelId"))
    if kind == ANTHROPIC:
        return anthropic_extract.messages_request_content(body)
    if kind == NOVA:
        system = [block_part(b) for b in items(body.get("system")) if isinstance(b, dict) and "text" in b]
        return {sc.INPUT_MESSAGES: _messages(body.get("messages")), sc.SYSTEM_INSTRUCTIONS: system or None}
    if isinstance(body.get("inputText"), str):
        return {sc.INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text",
                                                                "content": body["inputText"]}]}]}
    return {}


def invoke_output_messages(body: Any) -> list[dict[str, Any]] | None:
    if not isinstance(body, dict):
        return None
    if body.get("type") == "message":
        return anthropic_extract.messages_output_messages(body)
    if "output" in body:
        return converse_output_messages(body)
    results = items(body.get("results"))
    if results:
        return [output_message([{"type": "text", "content": field(r, "outputText")}],
                               string(field(r, "completionReason"))) for r in results]
    return None
