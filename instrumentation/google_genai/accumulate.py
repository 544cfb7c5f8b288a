"""Stream accumulator for `generate_content_stream`: every chunk is a partial `GenerateContentResponse`.

Ids, model version and usage repeat on the chunks (usage is cumulative, so the
last one seen wins); finish reasons arrive on the last chunk of each
candidate; text arrives in pieces, joined here only when content is captured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import _config
from .. import _semconv as sc
from .._fields import field, integer, items, string
from . import extract


class GenerateContentStreamAccumulator:
    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.capture = _config.SETTINGS.capture_content
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.reasons: dict[int, str] = {}
        self.parts: dict[int, list[dict[str, Any]]] = {}

    def observe(self, chunk: Any) -> None:
        self.response_id = string(field(chunk, "response_id")) or self.response_id
        self.model = string(field(chunk, "model_version")) or self.model
        usage = field(chunk, "usage_metadata")
        if usage is not None:
            self.usage = usage
        for position, candidate in enumerate(items(field(chunk, "candidates"))):
            index = integer(field(candidate, "index")) or position
            reason = extract.finish_reason(field(candidate, "finish_reason"))
            if reason:
                self.reasons[index] = reason
            if self.capture:
                parts = self.parts.setdefault(index, [])
                for raw in items(extract.path_parts(candidate)):
                    piece = extract.part(raw)
                    last = parts[-1] if parts else None
                    # Text pieces of one kind (answer or thought) join into one part.
                    if (last is not None and piece.get("type") in ("text", "reasoning")
                            and last.get("type") == piece["type"]):
                        last["content"] = (last.get("content") or "") + (piece.get("content") or "")
                    else:
                        parts.append(piece)

    def attributes(self) -> dict[str, Any]:
        reasons = [reason for _, reason in sorted(self.reasons.items())]
        return {
            sc.RESPONSE_ID: self.response_id,
            sc.RESPONSE_MODEL: self.model,
            sc.RESPONSE_FINISH_REASONS: reasons or None,
            **extract.usage_attributes(self.usage),
        }

    def output_messages(self) -> list[Any] | None:
        return [extract.candidate_message(parts, self.reasons.get(index))
                for index, parts in sorted(self.parts.items())]
