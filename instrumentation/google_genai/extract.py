"""Pure functions from google-genai requests and responses to GenAI attributes.

Requests: the SDK's methods take keyword arguments `model`, `contents` and
`config`, where `config` is a `GenerateContentConfig` or a plain dict.

Usage: Gemini's `prompt_token_count` already includes `cached_content_token_count`
(as the conventions' input_tokens does), and tokens of a tool-use prompt are
billed as input too, so input_tokens = prompt + tool_use_prompt. Gemini reports
thinking tokens (`thoughts_token_count`) beside `candidates_token_count`; the
conventions count reasoning inside output, so output_tokens = candidates +
thoughts, and the thoughts alone are reasoning_output_tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .. import _semconv as sc
from .._fields import field, integer, items, number, string, strings

Attributes = dict[str, Any]

# Gemini finish reasons (lowercased) -> the conventions' output-message finish_reason values.
FINISH_REASON = {"stop": "stop", "max_tokens": "length", "safety": "content_filter",
                 "recitation": "content_filter", "blocklist": "content_filter",
                 "prohibited_content": "content_filter", "spii": "content_filter",
                 "image_safety": "content_filter", "malformed_function_call": "error"}
_MIME_OUTPUT_TYPE = {"application/json": "json", "text/plain": "text", "text/x.enum": "text"}


def finish_reason(value: Any) -> str | None:
    """`FinishReason.STOP` (an enum whose value is "STOP") or a plain string, lowercased."""
    value = getattr(value, "value", value)
    if not isinstance(value, str) or not value or value == "FINISH_REASON_UNSPECIFIED":
        return None
    return value.lower()


# --- Client --------------------------------------------------------------------------------------

# The last base URL seen and its attributes: most apps hold one client.
_last_client: tuple[Any, bool, Attributes] = (None, False, {})


def client_attributes(instance: Any) -> Attributes:
    """Provider (Gemini API or Vertex AI) and server address/port, from the `Models` resource's client.

    The dict returned may be shared between calls: read it, never change it.
    """
    global _last_client
    api_client = getattr(instance, "_api_client", None)
    vertex = bool(getattr(api_client, "vertexai", False))
    # An HttpOptions model in recent SDKs, a plain dict in early 1.x ones.
    url = field(getattr(api_client, "_http_options", None), "base_url")
    last_url, last_vertex, last = _last_client
    if url == last_url and vertex == last_vertex and url is not None:
        return last
    provider = sc.PROVIDER_GCP_VERTEX_AI if vertex else sc.PROVIDER_GCP_GEMINI
    attributes: Attributes = {sc.PROVIDER_NAME: provider}
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:  # a malformed base URL costs the server attributes, nothing else
            parts, port = None, None
        if parts is not None and parts.hostname:
            attributes[sc.SERVER_ADDRESS] = parts.hostname
            attributes[sc.SERVER_PORT] = port if port is not None else (80 if parts.scheme == "http" else 443)
    _last_client = (url, vertex, attributes)
    return attributes


def error_type(error: BaseException) -> str | None:
    """google.genai.errors.APIError carries the HTTP status code; it says more than `ClientError`."""
    code = getattr(error, "code", None)
    if type(error).__module__.startswith("google.genai") and isinstance(code, int) and not isinstance(code,
                                                                                                      bool):
        return str(code)
    return None


# --- generate_content ----------------------------------------------------------------------------

def _output_type(mime_type: Any) -> str | None:
    if not isinstance(mime_type, str):
        return None
    if mime_type.startswith("image/"):
        return "image"
    if mime_type.startswith("audio/"):
        return "speech"
    return _MIME_OUTPUT_TYPE.get(mime_type)


def generate_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    config = kwargs.get("config")
    choices = integer(field(config, "candidate_count"))
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.REQUEST_MAX_TOKENS: integer(field(config, "max_output_tokens")),
        sc.REQUEST_TEMPERATURE: number(field(config, "temperature")),
        sc.REQUEST_TOP_P: number(field(config, "top_p")),
        sc.REQUEST_TOP_K: number(field(config, "top_k")),
        sc.REQUEST_FREQUENCY_PENALTY: number(field(config, "frequency_penalty")),
        sc.REQUEST_PRESENCE_PENALTY: number(field(config, "presence_penalty")),
        sc.REQUEST_STOP_SEQUENCES: strings(field(config, "stop_sequences")),
        sc.REQUEST_SEED: integer(field(config, "seed")),
        sc.REQUEST_CHOICE_COUNT: choices if choices is not None and choices != 1 else None,
        sc.OUTPUT_TYPE: _output_type(field(config, "response_mime_type")),
    }


def stream_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    """`generate_content_stream` always streams, though its kwargs say nothing about it."""
    return {**generate_request_attributes(kwargs), sc.REQUEST_STREAM: True}


def usage_attributes(usage: Any) -> Attributes:
    if usage is None:
        return {}
    prompt = integer(field(usage, "prompt_token_count"))
    tool_prompt = integer(field(usage, "tool_use_prompt_token_count"))
    candidates = integer(field(usage, "candidates_token_count"))
    if candidates is None:  # the embeddings / Live API spelling
        candidates = integer(field(usage, "response_token_count"))
    thoughts = integer(field(usage, "thoughts_token_count"))
    input_tokens = None if prompt is None and tool_prompt is None else (prompt or 0) + (tool_prompt or 0)
    output_tokens = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return {
        sc.USAGE_INPUT_TOKENS: input_tokens,
        sc.USAGE_OUTPUT_TOKENS: output_tokens,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: integer(field(usage, "cached_content_token_count")),
        sc.USAGE_REASONING_OUTPUT_TOKENS: thoughts,
    }


def generate_response_attributes(response: Any) -> Attributes:
    reasons = [r for r in (finish_reason(field(c, "finish_reason")) for c in items(field(response,
                                                                                         "candidates")))
               if r]
    return {
        sc.RESPONSE_ID: string(field(response, "response_id")),
        sc.RESPONSE_MODEL: string(field(response, "model_version")),
        sc.RESPONSE_FINISH_REASONS: reasons or None,
        **usage_attributes(field(response, "usage_metadata")),
    }


# --- Content (opt-in) ----------------------------------------------------------------------------

def part(value: Any) -> dict[str, Any]:
    """One google-genai Part (or a plain string) as a parts-schema part, without empty fields."""
    return {k: v for k, v in _part(value).items() if v is not None}


def _part(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"type": "text", "content": value}
    text = field(value, "text")
    if isinstance(text, str):
        return {"type": "reasoning" if field(value, "thought") is True else "text", "content": text}
    call = field(value, "function_call")
    if call is not None:
        return {"type": "tool_call", "id": field(call, "id"), "name": field(call, "name"),
                "arguments": field(call, "args")}
    result = field(value, "function_response")
    if result is not None:
        return {"type": "tool_call_response", "id": field(result, "id") or field(result, "name"),
                "response": field(result, "response")}
    blob = field(value, "inline_data")
    if blob is not None:
        # Inline bytes are elided: they would only ever be truncated away.
        return {"type": "blob", "mime_type": field(blob, "mime_type")}
    file_data = field(value, "file_data")
    if file_data is not None:
        return {"type": "uri", "uri": field(file_data, "file_uri"), "mime_type": field(file_data,
                                                                                       "mime_type")}
    return {"type": "unknown"}


def _is_content(value: Any) -> bool:
    return not isinstance(value, str) and field(value, "parts") is not None


def _role(value: Any) -> str:
    role = field(value, "role")
    return "assistant" if role == "model" else (role if isinstance(role, str) else "user")


def messages(contents: Any) -> list[dict[str, Any]]:
    """`contents` as input messages: a string, a Part, a Content, or a list of either (as the SDK reads it,
    consecutive loose parts form one user message)."""
    if contents is None:
        return []
    if isinstance(contents, str) or not isinstance(contents, (list, tuple)):
        contents = [contents]
    out: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for item in contents:
        if _is_content(item):
            if loose:
                out.append({"role": "user", "parts": loose})
                loose = []
            out.append({"role": _role(item), "parts": [part(p) for p in items(field(item, "parts"))]})
        else:
            loose.append(part(item))
    if loose:
        out.append({"role": "user", "parts": loose})
    return out


def _tool_definitions(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in items(tools):
        if callable(tool):  # automatic function calling with a Python function
            out.append({"type": "function", "name": getattr(tool, "__name__", None),
                        "description": getattr(tool, "__doc__", None)})
            continue
        for declaration in items(field(tool, "function_declarations")):
            out.append({"type": "function", "name": field(declaration, "name"),
                        "description": field(declaration, "description"),
                        "parameters": field(declaration, "parameters") or field(declaration,
                                                                                "parameters_json_schema")})
    return out


def generate_request_content(kwargs: Mapping[str, Any]) -> Attributes:
    config = kwargs.get("config")
    system = field(config, "system_instruction")
    system_parts = None
    if system is not None:
        system_parts = [p for message in messages(system) for p in message["parts"]]
    return {
        sc.INPUT_MESSAGES: messages(kwargs.get("contents")),
        sc.SYSTEM_INSTRUCTIONS: system_parts,
        sc.TOOL_DEFINITIONS: _tool_definitions(field(config, "tools")),
    }


def candidate_message(parts: list[dict[str, Any]], reason: str | None) -> dict[str, Any]:
    finish = FINISH_REASON.get(reason or "", reason)
    if reason == "stop" and any(p.get("type") == "tool_call" for p in parts):
        finish = "tool_call"  # Gemini says STOP after a function call
    return {"role": "assistant", "parts": parts, "finish_reason": finish}


def generate_output_messages(response: Any) -> list[dict[str, Any]]:
    return [candidate_message([part(p) for p in items(path_parts(c))], finish_reason(field(c,
                                                                                           "finish_reason")))
            for c in items(field(response, "candidates"))]


def path_parts(candidate: Any) -> Any:
    return field(field(candidate, "content"), "parts")


# --- embed_content -------------------------------------------------------------------------------

def embed_request_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    return {
        sc.REQUEST_MODEL: string(kwargs.get("model")),
        sc.EMBEDDINGS_DIMENSION_COUNT: integer(field(kwargs.get("config"), "output_dimensionality")),
    }


def embed_response_attributes(response: Any) -> Attributes:
    embeddings = items(field(response, "embeddings"))
    values = field(embeddings[0], "values") if embeddings else None
    tokens = integer(field(field(response, "usage_metadata"), "prompt_token_count"))
    if tokens is None:
        # Vertex AI reports a count per embedding instead.
        counts = [number(field(field(e, "statistics"), "token_count")) for e in embeddings]
        if counts and all(c is not None for c in counts):
            tokens = int(sum(counts))  # type: ignore[arg-type]
    return {
        sc.USAGE_INPUT_TOKENS: tokens,
        sc.EMBEDDINGS_DIMENSION_COUNT: len(values) if isinstance(values, list) else None,
    }
