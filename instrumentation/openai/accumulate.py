"""Stream accumulators: rebuild response attributes from OpenAI stream items.

Text and tool-call arguments are only kept when content capture is on, so a
plain streaming call pays for a few field reads per chunk and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _config
from .. import _semconv as sc
from .._content import parse_arguments
from .._fields import field, integer, items, string
from . import extract


class _Choice:
    __slots__ = ("text", "tool_calls", "finish_reason", "role")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.role = "assistant"


class ChatStreamAccumulator:
    """Chat Completions chunks: id/model from any chunk, usage from the last one (stream_options)."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.capture = _config.SETTINGS.capture_content
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.choices: dict[int, _Choice] = {}

    def observe(self, chunk: Any) -> None:
        if self.response_id is None:
            self.response_id = string(field(chunk, "id"))
        if self.model is None:
            self.model = string(field(chunk, "model"))
        usage = field(chunk, "usage")
        if usage is not None:
            self.usage = usage
        choices = field(chunk, "choices")
        if not isinstance(choices, list):  # what the SDK gives; anything else has no choices to read
            return
        for delta_choice in choices:
            index = field(delta_choice, "index")
            if type(index) is not int:
                index = 0
            choice = self.choices.get(index)
            if choice is None:
                choice = self.choices[index] = _Choice()
            reason = string(field(delta_choice, "finish_reason"))
            if reason:
                choice.finish_reason = reason
            if self.capture:
                self._capture(choice, field(delta_choice, "delta"))

    @staticmethod
    def _capture(choice: _Choice, delta: Any) -> None:
        text = field(delta, "content")
        if isinstance(text, str):
            choice.text.append(text)
        for call in items(field(delta, "tool_calls")):
            slot = choice.tool_calls.setdefault(integer(field(call, "index")) or 0,
                                                {"id": None, "name": None, "arguments": []})
            function = field(call, "function")
            slot["id"] = slot["id"] or field(call, "id")
            slot["name"] = slot["name"] or field(function, "name")
            if isinstance(field(function, "arguments"), str):
                slot["arguments"].append(field(function, "arguments"))

    def attributes(self) -> dict[str, Any]:
        reasons = [c.finish_reason for _, c in sorted(self.choices.items()) if c.finish_reason]
        return {
            sc.RESPONSE_ID: self.response_id,
            sc.RESPONSE_MODEL: self.model,
            sc.RESPONSE_FINISH_REASONS: reasons or None,
            **extract.usage_attributes(self.usage),
        }

    def output_messages(self) -> list[Any] | None:
        messages = []
        for _, choice in sorted(self.choices.items()):
            parts: list[dict[str, Any]] = []
            if choice.text:
                parts.append({"type": "text", "content": "".join(choice.text)})
            for _, call in sorted(choice.tool_calls.items()):
                parts.append({"type": "tool_call", "id": call["id"], "name": call["name"],
                              "arguments": parse_arguments("".join(call["arguments"]))})
            reason = choice.finish_reason
            messages.append({"role": choice.role, "parts": parts,
                             "finish_reason": {"tool_calls": "tool_call"}.get(reason or "", reason)})
        return messages


class ResponsesStreamAccumulator:
    """Responses API events: the terminal event (completed/incomplete/failed) carries the whole response."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.response: Any = None

    def observe(self, event: Any) -> None:
        response = field(event, "response")
        if response is not None:
            # Later events carry a more complete snapshot; the last one wins.
            self.response = response

    def attributes(self) -> dict[str, Any]:
        if self.response is None:
            return {}
        return extract.responses_response_attributes(self.response)

    def output_messages(self) -> list[Any] | None:
        if self.response is None:
            return None
        return extract.responses_output_messages(self.response)
