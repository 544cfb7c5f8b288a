"""ClickHouse type names as Native column walkers (native_types.py), and their LowCardinality-free form.

A type name is `Name` or `Name(arg, ...)`; arguments may be types, numbers, quoted strings (Enum
values, time zones) or `name Type` pairs (named Tuple and Nested elements, names possibly in
backquotes), so names are split at top-level commas outside quotes and parentheses. Nesting is
limited to MAX_TYPE_DEPTH levels and a name that cannot be sized is a NativeFormatError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from spanhouse.collector.query.native_types import (
    ArrayColumn,
    CountStates,
    FixedColumn,
    LowCardinalityColumn,
    NativeFormatError,
    NothingColumn,
    NullableColumn,
    StringColumn,
    TDigestStates,
    TupleColumn,
    Walker,
)

MAX_TYPE_DEPTH = 32
_COMPILED_CACHE_SIZE = 512
_LOW_CARDINALITY = "LowCardinality("

_FIXED_WIDTHS = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1,
    "UInt16": 2, "Int16": 2, "Date": 2, "BFloat16": 2, "Enum16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "Date32": 4, "DateTime": 4, "IPv4": 4, "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
}
_INTERVALS = ("Nanosecond", "Microsecond", "Millisecond", "Second", "Minute", "Hour", "Day", "Week", "Month",
              "Quarter", "Year")
_FIXED_WIDTHS.update({f"Interval{unit}": 8 for unit in _INTERVALS})
_GEO = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)", "LineString": "Array(Point)",
    "Polygon": "Array(Ring)", "MultiLineString": "Array(LineString)",
    "MultiPolygon": "Array(Polygon)",
}
_REFUSED = {
    "Dynamic": "its layout depends on the values' own types",
    "Variant": "its layout depends on per-row discriminators",
    "JSON": "its layout depends on the paths in the data",
    "Object": "its layout depends on the paths in the data",
}
_AGGREGATE_STATES: tuple[tuple[re.Pattern[str], Callable[[], Walker]], ...] = (
    (re.compile(r"quantiles?TDigest(?:Weighted)?(?:If)?(?:\([^()]*\))?"), TDigestStates),
    (re.compile(r"count(?:If)?"), CountStates),
)
_compiled: dict[str, Walker] = {}


def compile_type(type_name: str) -> Walker:
    """The walker for a ClickHouse type name; NativeFormatError naming the type when it cannot be sized."""
    walker = _compiled.get(type_name)
    if walker is None:
        walker = _compile(type_name, 0)
        if len(_compiled) >= _COMPILED_CACHE_SIZE:
            _compiled.clear()  # hostile type names must not grow the cache without bound
        _compiled[type_name] = walker
    return walker


def _compile(type_name: str, depth: int) -> Walker:
    if depth > MAX_TYPE_DEPTH:
        raise NativeFormatError(f"type nested deeper than {MAX_TYPE_DEPTH} levels: {type_name[:200]}")
    text = type_name.strip()
    paren = text.find("(")
    if paren < 0:
        name, args = text, []
    else:
        if not text.endswith(")"):
            raise NativeFormatError(f"cannot parse column type {text[:200]!r}")
        name, args = text[:paren].strip(), _split_top_level(text[paren + 1:-1], ",", text)
    try:
        return _walker_for(name, args, text, depth)
    except NativeFormatError:
        raise
    except (ValueError, IndexError):
        raise NativeFormatError(f"cannot parse column type {text[:200]!r}") from None


def _walker_for(name: str, args: list[str], text: str, depth: int) -> Walker:
    if name == "String":
        return StringColumn()
    if name in _FIXED_WIDTHS and (not args or name in ("DateTime", "DateTime64", "Enum8", "Enum16", "Time64")
                                  or name.startswith("Decimal")):
        return FixedColumn(_FIXED_WIDTHS[name])
    if name == "Decimal":
        precision = int(args[0])
        for width, most in ((4, 9), (8, 18), (16, 38), (32, 76)):
            if 0 < precision <= most:
                return FixedColumn(width)
    if name == "FixedString" and len(args) == 1:
        return FixedColumn(int(args[0]))
    if name == "Nothing" and not args:
        return NothingColumn()
    if name == "Nullable" and len(args) == 1:
        return NullableColumn(_compile(args[0], depth + 1))
    if name == "Array" and len(args) == 1:
        return ArrayColumn(_compile(args[0], depth + 1))
    if name == "Map" and len(args) == 2:
        return ArrayColumn(TupleColumn([_compile(args[0], depth + 1), _compile(args[1], depth + 1)]))
    if name == "Tuple" and args:
        return TupleColumn([_compile(_element_type(arg, text), depth + 1) for arg in args])
    if name == "Nested" and args:
        return ArrayColumn(TupleColumn([_compile(_element_type(arg, text), depth + 1) for arg in args]))
    if name == "LowCardinality" and len(args) == 1:
        inner = args[0].strip()
        nullable = inner.startswith("Nullable(") and inner.endswith(")")
        if nullable:
            inner = inner[len("Nullable("):-1]  # keys are stored without Nullable; index 0 means NULL
        return LowCardinalityColumn(_compile(inner, depth + 1), nullable)
    if name == "SimpleAggregateFunction" and len(args) >= 2:
        return _compile(args[-1], depth + 1)
    if name == "AggregateFunction" and args:
        function = args[0].strip()
        for pattern, walker in _AGGREGATE_STATES:
            if pattern.fullmatch(function):
                return walker()
        raise NativeFormatError(f"cannot size the states of {text[:200]}: only quantile(s)TDigest and count "
                                "states are known; select finalizeAggregation() or the -Merge of it instead")
    if name in _GEO and not args:
        return _compile(_GEO[name], depth + 1)
    if name in _REFUSED:
        raise NativeFormatError(f"cannot size column type {text[:200]}: {_REFUSED[name]}; "
                                "select toString() or CAST it to a plain type")
    raise NativeFormatError(f"cannot size column type {text[:200]!r} (not a type this endpoint knows); "
                            "select toString() or CAST it to a plain type")


def _element_type(arg: str, text: str) -> str:
    """A tuple or Nested element's type: `name Type`, `` `a name` Type `` or just `Type`."""
    arg = arg.strip()
    if arg.startswith("`"):
        close = arg.find("`", 1)
        while close > 0 and arg[close - 1] == "\\":
            close = arg.find("`", close + 1)
        if close < 0:
            raise NativeFormatError(f"cannot parse column type {text[:200]!r}")
        return arg[close + 1:]
    parts = _split_top_level(arg, " ", text)
    return " ".join(parts[1:]) if len(parts) > 1 else arg


def _split_top_level(text: str, separator: str, whole: str) -> list[str]:
    """`text` split at `separator` outside quotes and parentheses; an empty text is no parts."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise NativeFormatError(f"unbalanced parentheses in column type {whole[:200]!r}")
        elif char == separator and depth == 0:
            if text[start:i].strip():
                parts.append(text[start:i].strip())
            elif separator == ",":
                raise NativeFormatError(f"empty argument in column type {whole[:200]!r}")
            start = i + 1
        i += 1
    if quote or depth:
        raise NativeFormatError(f"unbalanced quotes or parentheses in column type {whole[:200]!r}")
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def plain_type_name(type_name: str) -> str:
    """`type_name` with every LowCardinality(T) written as T, as a server names a column for a client
    older than LowCardinality (ClickHouse's recursiveRemoveLowCardinality); quoted text is left alone."""
    out: list[str] = []
    dropped: list[bool] = []  # per open parenthesis: whether it opened a LowCardinality( to drop
    quote = ""
    i = 0
    while i < len(type_name):
        char = type_name[i]
        if quote:
            if char == "\\" and i + 1 < len(type_name):
                out.append(type_name[i:i + 2])
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'`\"":
            quote = char
        elif type_name.startswith(_LOW_CARDINALITY, i) and (i == 0 or not type_name[i - 1].isalnum()):
            dropped.append(True)
            i += len(_LOW_CARDINALITY)
            continue
        elif char == "(":
            dropped.append(False)
        elif char == ")" and dropped and dropped.pop():
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)
