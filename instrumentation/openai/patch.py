"""Wrapper factories for the OpenAI client methods we trace, one per method.

Each factory takes the instrumentor's `Telemetry` and returns a wrapt wrapper;
what the method means in GenAI terms is the `Operation` beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _semconv as sc
from .._telemetry import Operation, Telemetry
from .._traced import async_traced, traced
from . import extract
from .accumulate import ChatStreamAccumulator, ResponsesStreamAccumulator

CHAT = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.chat_request_attributes,
    response_attributes=extract.chat_response_attributes,
    request_content=extract.chat_request_content,
    output_messages=extract.chat_output_messages,
    stream_accumulator=ChatStreamAccumulator,
)

RESPONSES = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.responses_request_attributes,
    response_attributes=extract.responses_response_attributes,
    request_content=extract.responses_request_content,
    output_messages=extract.responses_output_messages,
    stream_accumulator=ResponsesStreamAccumulator,
)

EMBEDDINGS = Operation(
    name=sc.OP_EMBEDDINGS,
    request_attributes=extract.embeddings_request_attributes,
    response_attributes=extract.embeddings_response_attributes,
)

Wrapper = Callable[..., Any]


def chat_completions_create(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, CHAT)


def async_chat_completions_create(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, CHAT)


def responses_create(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, RESPONSES)


def async_responses_create(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, RESPONSES)


def embeddings_create(telemetry: Telemetry) -> Wrapper:
    return traced(telemetry, EMBEDDINGS)


def async_embeddings_create(telemetry: Telemetry) -> Wrapper:
    return async_traced(telemetry, EMBEDDINGS)
