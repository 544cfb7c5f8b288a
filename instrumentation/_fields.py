"""Tolerant readers for request kwargs and SDK responses.

Requests arrive as dicts or typed params, responses as pydantic models (or,
under `with_raw_response`, something else entirely). These helpers read a
field from either and return None instead of raising, so an unexpected shape
costs an attribute, never the user's call.
"""

from __future__ import annotations

from typing import Any


def field(obj: Any, key: str) -> Any:
    """`obj[key]` for mappings, `obj.key` otherwise; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def path(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = field(obj, key)
        if obj is None:
            return None
    return obj


def integer(value: Any) -> int | None:
    # bool is an int subclass; a flag is never a count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, (int, float)) else None


def string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def strings(value: Any) -> list[str] | None:
    """A stop-sequence style value: one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def items(value: Any) -> list[Any]:
    """A list from any iterable request field (users pass generators too); [] for anything else."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return []
