"""What every component's configuration is built with: the error type and the value coercion.

Each component keeps its own config dataclass and `validate()` beside it (receiver/config.py,
writer/config.py, auth.py, pricing.py, processors/redaction/config.py,
processors/sampling/config.py, ...); config.py assembles them into one tree and loads it.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the key and the fix."""


def check_endpoint(key: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: expected HOST:PORT (for example 127.0.0.1:4317), got {value!r}")


def require_positive(values: dict[str, float]) -> None:
    """Raise naming the first key whose value is not greater than 0."""
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be greater than 0, got {value}")


def coerce(key: str, raw: Any, kind: Any) -> Any:
    """Convert a YAML or environment value to the field's type, or say what is wrong.

    Besides str/int/float/bool: `list[X]`, `dict[str, X]` and `X | None`, where X
    is one of those or a config dataclass (built from a mapping, validated the same way).
    """
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if raw is None and len(options) < len(typing.get_args(kind)):
            return None
        return coerce(key, raw, options[0])
    if origin is list:
        (item,) = typing.get_args(kind)
        if isinstance(raw, str) and not dataclasses.is_dataclass(item):
            raw = [part.strip() for part in raw.split(",") if part.strip()]  # environment: comma-separated
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected a list, got {raw!r}")
        return [coerce(f"{key}[{i}]", value, item) for i, value in enumerate(raw)]
    if origin is dict:
        _, item = typing.get_args(kind)
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}: expected a mapping, got {raw!r}")
        return {str(k): coerce(f"{key}.{k}", value, item) for k, value in raw.items()}
    if dataclasses.is_dataclass(kind):
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}: expected a mapping of options, got {raw!r}")
        built = kind()
        apply(built, raw, f"{key}.")
        return built
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
    elif kind is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            return str(raw)
        if isinstance(raw, datetime.date):  # YAML reads an unquoted 2025-01-31 as a date
            return raw.isoformat()
        if isinstance(raw, bool):  # YAML reads unquoted off/on/no/yes as booleans
            raise ConfigError(f"{key}: expected a string, got the YAML boolean {raw!r}: YAML reads unquoted "
                              "off, on, no and yes as booleans; quote the value, e.g. \"off\"")
    raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {raw!r}")


def apply(target: Any, data: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(target))
    names = [f.name for f in dataclasses.fields(target)]
    for key, raw in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known keys: {', '.join(names)})"
            raise ConfigError(f"{path}: unknown option{hint}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of options, got {raw!r}")
            apply(getattr(target, key), raw, f"{path}.")
        else:
            setattr(target, key, coerce(path, raw, kind))

