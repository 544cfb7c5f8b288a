"""Stream accumulators for ConverseStream and InvokeModelWithResponseStream events.

botocore yields each event as a one-key dict (`{"contentBlockDelta": {...}}`).
ConverseStream's usage arrives in the last event, `metadata`. An
InvokeModelWithResponseStream event is `{"chunk": {"bytes": b"<model JSON>"}}`:
Anthropic models stream Anthropic Messages events (read by the Anthropic
instrumentor's accumulator), Nova streams Converse-shaped events, and every
model's last chunk carries `amazon-bedrock-invocationMetrics` token counts,
used when the model's own events had none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import _config
from .. import _semconv as sc
from .._content import parse_arguments
from .._fields import field, integer, string
from ..anthropic.accumulate import MessagesStreamAccumulator
from . import extract


class ConverseStreamAccumulator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.capture = _config.SETTINGS.capture_content
        self.stop_reason: str | None = None
        self.usage: Any = None
        self.blocks: dict[int, dict[str, Any]] = {}

    def _block(self, body: Any) -> dict[str, Any]:
        index = integer(field(body, "contentBlockIndex")) or 0
        return self.blocks.setdefault(index, {"type": "text", "id": None, "name": None, "pieces": []})

    def observe(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        if "messageStop" in event:
            self.stop_reason = string(field(event["messageStop"], "stopReason")) or self.stop_reason
        elif "metadata" in event:
            self.usage = field(event["metadata"], "usage") or self.usage
        elif not self.capture:
            return
        elif "contentBlockStart" in event:
            use = field(field(event["contentBlockStart"], "start"), "toolUse")
            if use is not None:
                block = self._block(event["contentBlockStart"])
                block.update(type="tool_call", id=field(use, "toolUseId"), name=field(use, "name"))
        elif "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            delta = field(body, "delta")
            block = self._block(body)
            if isinstance(field(delta, "text"), str):
                block["pieces"].append(delta["text"])
            elif field(delta, "toolUse") is not None:
                block["type"] = "tool_call"
                piece = field(delta["toolUse"], "input")
                if isinstance(piece, str):
                    block["pieces"].append(piece)
            elif field(delta, "reasoningContent") is not None:
                block["type"] = "reasoning"
                piece = field(delta["reasoningContent"], "text")
                if isinstance(piece, str):
                    block["pieces"].append(piece)

    def attributes(self) -> dict[str, Any]:
        return {sc.RESPONSE_FINISH_REASONS: extract.finish_reasons(self.stop_reason),
                **extract.converse_usage(self.usage)}

    def output_messages(self) -> list[Any] | None:
        parts = []
        for _, block in sorted(self.blocks.items()):
            joined = "".join(block["pieces"])
            if block["type"] == "tool_call":
                parts.append({"type": "tool_call", "id": block["id"], "name": block["name"],
                              "arguments": parse_arguments(joined) if joined else {}})
            else:
                parts.append({"type": block["type"], "content": joined})
        return [extract.output_message(parts, self.stop_reason)]


class InvokeStreamAccumulator:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.inner: Any = None  # chosen from the first chunk's shape
        self.metrics: Any = None
        self.titan_reason: str | None = None
        self.titan_text: list[str] = []
        self.titan_output: int | None = None
        self.titan_input: int | None = None

    def observe(self, event: Any) -> None:
        raw = field(field(event, "chunk"), "bytes")
        if not isinstance(raw, (bytes, bytearray, str)):
            return
        chunk = json.loads(raw)
        if not isinstance(chunk, dict):
            return
        metrics = chunk.get("amazon-bedrock-invocationMetrics")
        if metrics is not None:
            self.metrics = metrics
        if self.inner is None:
            if "type" in chunk:
                self.inner = MessagesStreamAccumulator(self.params)
            elif any(key in chunk for key in ("messageStart", "contentBlockDelta", "messageStop",
                                              "metadata")):
                self.inner = ConverseStreamAccumulator(self.params)
        if self.inner is not None:
            self.inner.observe(chunk)
        elif "outputText" in chunk:  # Titan text
            self.titan_text.append(chunk["outputText"] if isinstance(chunk["outputText"], str) else "")
            self.titan_reason = string(chunk.get("completionReason")) or self.titan_reason
            self.titan_output = integer(chunk.get("totalOutputTextTokenCount")) or self.titan_output
            self.titan_input = integer(chunk.get("inputTextTokenCount")) or self.titan_input

    def attributes(self) -> dict[str, Any]:
        if self.inner is not None:
            attributes = self.inner.attributes()
        else:
            attributes = {sc.USAGE_INPUT_TOKENS: self.titan_input, sc.USAGE_OUTPUT_TOKENS: self.titan_output,
                          sc.RESPONSE_FINISH_REASONS: extract.finish_reasons(self.titan_reason)}
        for key, value in extract.invocation_metrics_usage(self.metrics).items():
            if attributes.get(key) is None:
                attributes[key] = value
        return attributes

    def output_messages(self) -> list[Any] | None:
        if self.inner is not None:
            return self.inner.output_messages()
        if self.titan_text:
            return [extract.output_message([{"type": "text", "content": "".join(self.titan_text)}],
                                           self.titan_reason)]
        return None
