"""Stream accumulator for Anthropic's raw Messages stream events.

Both `messages.create(stream=True)` and the `messages.stream()` helper read
the same raw events, so one accumulator serves both. Usage in `message_start`
is the starting point; `message_delta` usage is cumulative and overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _config
from .. import _semconv as sc
from .._content import parse_arguments
from .._fields import field, integer, string
from . import extract

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class MessagesStreamAccumulator:
    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.capture = _config.SETTINGS.capture_content
        self.message_id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.blocks: dict[int, dict[str, Any]] = {}

    def _merge_usage(self, usage: Any) -> None:
        for name in _USAGE_FIELDS:
            value = integer(field(usage, name))
            if value is not None:
                self.usage[name] = value

    def observe(self, event: Any) -> None:
        kind = field(event, "type")
        if kind == "message_start":
            message = field(event, "message")
            self.message_id = string(field(message, "id"))
            self.model = string(field(message, "model"))
            self._merge_usage(field(message, "usage"))
        elif kind == "message_delta":
            reason = string(field(field(event, "delta"), "stop_reason"))
            if reason:
                self.stop_reason = reason
            self._merge_usage(field(event, "usage"))
        elif self.capture and kind == "content_block_start":
            block = field(event, "content_block")
            self.blocks[integer(field(event, "index")) or 0] = {
                "type": field(block, "type"), "id": field(block, "id"), "name": field(block, "name"),
                "text": [field(block, "text") or ""], "json": [],
            }
        elif self.capture and kind == "content_block_delta":
            slot = self.blocks.get(integer(field(event, "index")) or 0)
            delta = field(event, "delta")
            if slot is not None:
                for key, target in (("text", "text"), ("thinking", "text"), ("partial_json", "json")):
                    piece = field(delta, key)
                    if isinstance(piece, str):
                        slot[target].append(piece)

    def attributes(self) -> dict[str, Any]:
        return {
            sc.RESPONSE_ID: self.message_id,
            sc.RESPONSE_MODEL: self.model,
            sc.RESPONSE_FINISH_REASONS: [self.stop_reason] if self.stop_reason else None,
            **extract.usage_attributes(self.usage or None),
        }

    def output_messages(self) -> list[Any] | None:
        parts = []
        for _, block in sorted(self.blocks.items()):
            if block["type"] == "tool_use":
                raw = "".join(block["json"])
                parts.append({"type": "tool_call", "id": block["id"], "name": block["name"],
                              "arguments": parse_arguments(raw) if raw else {}})
            elif block["type"] == "thinking":
                parts.append({"type": "reasoning", "content": "".join(block["text"])})
            else:
                parts.append({"type": "text", "content": "".join(block["text"])})
        reason = self.stop_reason
        return [{"role": "assistant", "parts": parts,
                 "finish_reason": extract.FINISH_REASON.get(reason or "", reason)}]
