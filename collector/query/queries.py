"""The packaged queries in schemas/queries/, with their `{name:Type}` parameters filled in as SQL literals.

The CLI sends finished SQL (through the collector's query endpoint or to the
store directly), so parameters are rendered here, typed and escaped, rather
than bound by the server.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from spanhouse.collector.store import sql_file

_PARAM = re.compile(r"\{(\w+):([A-Za-z0-9]+(?:\([^{}]*\))?)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QueryParameterError(ValueError):
    pass


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(name: str, kind: str, value: Any) -> str:
    base = kind.split("(", 1)[0]
    if base == "String":
        return quote(str(value))
    if base == "Identifier":
        if not isinstance(value, str) or not _IDENTIFIER.match(value):
            raise QueryParameterError(f"{name}: not a column name: {value!r}")
        return f"`{value}`"
    if base.startswith(("UInt", "Int")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise QueryParameterError(f"{name}: expected an integer, got {value!r}")
        if base.startswith("UInt") and value < 0:
            raise QueryParameterError(f"{name}: must not be negative, got {value}")
        return str(value)
    if base.startswith("Float"):
        number = float(value)
        if not math.isfinite(number):
            raise QueryParameterError(f"{name}: must be a finite number, got {value!r}")
        return repr(number)
    if kind == "Array(String)":
        if isinstance(value, str) or not all(isinstance(item, str) for item in value):
            raise QueryParameterError(f"{name}: expected a list of strings, got {value!r}")
        return "[" + ", ".join(quote(item) for item in value) + "]"
    if base in ("DateTime64", "DateTime"):
        if not isinstance(value, dt.datetime):
            raise QueryParameterError(f"{name}: expected a datetime, got {value!r}")
        moment = value.astimezone(dt.UTC) if value.tzinfo else value
        return f"toDateTime64('{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"
    raise QueryParameterError(f"{name}: unsupported parameter type {kind}")


def render(name: str, **params: Any) -> str:
    """schemas/queries/`name`.sql with every `{param:Type}` replaced by the literal of `params[param]`."""
    text = sql_file(f"queries/{name}.sql")
    missing = sorted({m.group(1) for m in _PARAM.finditer(text)} - set(params))
    if missing:
        raise QueryParameterError(f"query {name} needs parameter(s): {', '.join(missing)}")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return _PARAM.sub(lambda m: _literal(m.group(1), m.group(2), params[m.group(1)]), body).strip().rstrip(";")
