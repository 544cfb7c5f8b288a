"""Serialising captured content: JSON, capped in size, with a truncation marker.

Content is only captured when the user opted in; this module does not check
that, its callers do, so the cost of building messages is never paid otherwise.
"""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_MARKER = "...[truncated]"


def _default(value: Any) -> Any:
    # SDK objects (pydantic models) and anything else JSON cannot encode.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def cap(text: str, max_bytes: int) -> str:
    """`text` if it fits in `max_bytes` UTF-8 bytes, else a prefix plus the marker, within the cap."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    # errors="ignore" drops a multi-byte character cut in half at the boundary.
    if max_bytes <= len(TRUNCATION_MARKER):
        return encoded[:max_bytes].decode("utf-8", errors="ignore")  # no room for the marker as well
    room = max_bytes - len(TRUNCATION_MARKER)
    return encoded[:room].decode("utf-8", errors="ignore") + TRUNCATION_MARKER


def to_json(value: Any, max_bytes: int) -> str:
    """Compact JSON of `value`, capped. Strings that are already text pass through unencoded."""
    text = value if isinstance(value, str) else json.dumps(value, default=_default, ensure_ascii=False,
                                                           separators=(",", ":"))
    return cap(text, max_bytes)


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments arrive as a JSON string; keep them structured when they parse."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
