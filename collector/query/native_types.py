"""Column sizes of ClickHouse `Native` data, per type, found without decoding values (used by native.py).

Strings are a VarUInt length and the bytes; integers are little-endian. A column's data is the state
prefixes of every versioned type in it (depth first), then the data of its streams in order:

- fixed width (ints, floats, Bool, Date, Date32, DateTime, DateTime64, Decimal, Enum, UUID, IPv4/6,
  Interval, Time): num_rows x width bytes; FixedString(N): num_rows x N; String: a String per row;
  Nothing: one byte per row.
- Nullable(T): a UInt8 null map, then T. Array(T): UInt64 end offsets, then T for the last offset's
  count. Map(K, V) is Array(Tuple(K, V)); Nested(...) is Array(Tuple(...)); Tuple: each element in turn.
  Point, Ring, LineString, Polygon, MultiLineString and MultiPolygon are the tuples and arrays they name.
- LowCardinality(T): prefix UInt64 key version 1; data per granule: UInt64 flags (low byte the index
  width 1/2/4/8 bytes, bit 9 keys follow, bit 10 dictionary update), UInt64 key count and the keys as T
  without Nullable (index 0 stands for NULL), UInt64 index count and the indexes. Nothing is written for
  a LowCardinality column with no rows (inside empty arrays) but its prefix.
- SimpleAggregateFunction(f, T) is T. AggregateFunction states are written by each function; the
  t-digest quantile family (the rollups' DurationMs) is VarUInt centroid count then 8 bytes per centroid,
  and count() is a VarUInt. Other aggregate states, Dynamic, Variant, JSON and Object are refused with a
  NativeFormatError naming the type.

Hostile input fails fast: every length is checked against the bytes left before anything is skipped,
and every walker consumes at least a byte per value, so no input loops longer than its own length or
allocates anything in proportion to the counts it claims.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

MAX_NAME_BYTES = 1 << 20  # a column name or type name longer than this is not a real result
MAX_TYPE_DEPTH = 32
_COMPILED_CACHE_SIZE = 512

_LC_KEY_VERSION = 1  # SharedDictionariesWithAdditionalKeys, the only one ClickHouse writes
_LC_INDEX_WIDTHS = (1, 2, 4, 8)
_LC_NEEDS_GLOBAL_DICTIONARY = 1 << 8
_LC_HAS_ADDITIONAL_KEYS = 1 << 9
_LC_KNOWN_FLAGS = 0xFF | _LC_NEEDS_GLOBAL_DICTIONARY | _LC_HAS_ADDITIONAL_KEYS | 1 << 10
_UINT64 = struct.Struct("<Q")


class NativeFormatError(ValueError):
    """The Native bytes cannot be walked: truncated, malformed, or a column type this module cannot size."""


class Cursor:
    """A read position over the stream; every read checks the bytes left first."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def truncated(self, what: str, need: int) -> NativeFormatError:
        return NativeFormatError(f"truncated at byte {self.pos}: {what} needs {need} bytes, "
                                 f"{self.end - self.pos} left")

    def skip(self, count: int, what: str) -> None:
        if count < 0 or count > self.end - self.pos:
            raise self.truncated(what, count)
        self.pos += count

    def varuint(self, what: str) -> int:
        data, pos, end = self.data, self.pos, self.end
        value = shift = 0
        for _ in range(10):  # a UInt64 takes at most 10 bytes of 7 bits
            if pos >= end:
                raise self.truncated(what, pos - self.pos + 1)
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value >> 64:
                    break
                self.pos = pos
                return value
            shift += 7
        raise NativeFormatError(f"byte {self.pos}: {what} is not a valid VarUInt (over 64 bits)")

    def uint64(self, what: str) -> int:
        if self.end - self.pos < 8:
            raise self.truncated(what, 8)
        (value,) = _UINT64.unpack_from(self.data, self.pos)
        self.pos += 8
        return int(value)

    def text(self, what: str) -> str:
        length = self.varuint(what)
        if length > MAX_NAME_BYTES:
            raise NativeFormatError(f"byte {self.pos}: {what} is {length} bytes long, over {MAX_NAME_BYTES}")
        start = self.pos
        self.skip(length, what)
        return self.data[start:self.pos].decode("utf-8", errors="replace")

    def strings(self, rows: int) -> None:
        # Each String takes a byte at least: a row count beyond the bytes left is refused before looping.
        if rows > self.end - self.pos:
            raise self.truncated(f"{rows} strings", rows)
        data, pos, end = self.data, self.pos, self.end
        for _ in range(rows):
            if pos >= end:
                self.pos = pos
                raise self.truncated("a string", 1)
            length = data[pos]
            if length < 0x80:  # the common case: a string shorter than 128 bytes
                pos += 1 + length
            else:
                self.pos = pos
                length = self.varuint("a string length")
                pos = self.pos + length
            if pos > end:
                raise self.truncated(f"a string of {length} bytes", length)
        self.pos = pos


class Walker:
    """Sizes one type's data: `prefix` reads its state prefixes, `data` the data of `rows` values."""

    def prefix(self, cur: Cursor) -> None:
        pass

    def data(self, cur: Cursor, rows: int) -> None:
        raise NotImplementedError


class _Fixed(Walker):
    def __init__(self, width: int) -> None:
        if width <= 0:
            raise ValueError(width)  # FixedString(0) or a negative width: not a real type
        self.width = width

    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows * self.width, f"{rows} values of {self.width} bytes")


class _String(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        cur.strings(rows)


class _Nullable(Walker):
    def __init__(self, inner: Walker) -> None:
        self.inner = inner

    def prefix(self, cur: Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows, f"a null map of {rows} rows")
        self.inner.data(cur, rows)


class _Array(Walker):
    def __init__(self, inner: Walker) -> None:
        self.inner = inner

    def prefix(self, cur: Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        if not rows:
            return
        cur.skip(rows * 8, f"{rows} array offsets")
        (elements,) = _UINT64.unpack_from(cur.data, cur.pos - 8)  # the last end offset counts every element
        self.inner.data(cur, int(elements))


class _Tuple(Walker):
    def __init__(self, elements: list[Walker]) -> None:
        self.elements = elements

    def prefix(self, cur: Cursor) -> None:
        for element in self.elements:
            element.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        for element in self.elements:
            element.data(cur, rows)


class _LowCardinality(Walker):
    def __init__(self, keys: Walker) -> None:
        self.keys = keys

    def prefix(self, cur: Cursor) -> None:
        version = cur.uint64("the LowCardinality key version")
        if version != _LC_KEY_VERSION:
            raise NativeFormatError(f"LowCardinality key version {version}, expected {_LC_KEY_VERSION}")

    def data(self, cur: Cursor, rows: int) -> None:
        left = rows
        while left:
            flags = cur.uint64("LowCardinality index flags")
            if flags & ~_LC_KNOWN_FLAGS or flags & 0xFF >= len(_LC_INDEX_WIDTHS):
                raise NativeFormatError(f"unknown LowCardinality index flags {flags:#x}")
            if flags & _LC_NEEDS_GLOBAL_DICTIONARY:
                raise NativeFormatError("LowCardinality with a global dictionary (not written in Native)")
            if flags & _LC_HAS_ADDITIONAL_KEYS:
                self.keys.data(cur, cur.uint64("LowCardinality key count"))
            count = cur.uint64("LowCardinality index count")
            if not 0 < count <= left:
                raise NativeFormatError(f"LowCardinality granule of {count} indexes where {left} rows are "
                                        "left")
            cur.skip(count * _LC_INDEX_WIDTHS[flags & 0xFF], f"{count} LowCardinality indexes")
            left -= count


class _Nothing(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows, f"{rows} Nothing placeholders")


class _TDigestState(Walker):
    # QuantileTDigest: VarUInt centroid count, then (mean Float32, count Float32) per centroid.
    def data(self, cur: Cursor, rows: int) -> None:
        if rows > cur.end - cur.pos:
            raise cur.truncated(f"{rows} t-digest states", rows)
        for _ in range(rows):
            centroids = cur.varuint("a t-digest centroid count")
            cur.skip(centroids * 8, f"{centroids} t-digest centroids")


class _CountState(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        if rows > cur.end - cur.pos:
            raise cur.truncated(f"{rows} count states", rows)
        for _ in range(rows):
            cur.varuint("a count state")


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
    (re.compile(r"quantiles?TDigest(?:Weighted)?(?:If)?(?:\([^()]*\))?"), _TDigestState),
    (re.compile(r"count(?:If)?"), _CountState),
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
        return _String()
    if name in _FIXED_WIDTHS and (not args or name in ("DateTime", "DateTime64", "Enum8", "Enum16", "Time64")
                                  or name.startswith("Decimal")):
        return _Fixed(_FIXED_WIDTHS[name])
    if name == "Decimal":
        precision = int(args[0])
        for width, most in ((4, 9), (8, 18), (16, 38), (32, 76)):
            if 0 < precision <= most:
                return _Fixed(width)
    if name == "FixedString" and len(args) == 1:
        return _Fixed(int(args[0]))
    if name == "Nothing" and not args:
        return _Nothing()
    if name == "Nullable" and len(args) == 1:
        return _Nullable(_compile(args[0], depth + 1))
    if name == "Array" and len(args) == 1:
        return _Array(_compile(args[0], depth + 1))
    if name == "Map" and len(args) == 2:
        return _Array(_Tuple([_compile(args[0], depth + 1), _compile(args[1], depth + 1)]))
    if name == "Tuple" and args:
        return _Tuple([_compile(_element_type(arg, text), depth + 1) for arg in args])
    if name == "Nested" and args:
        return _Array(_Tuple([_compile(_element_type(arg, text), depth + 1) for arg in args]))
    if name == "LowCardinality" and len(args) == 1:
        inner = args[0].strip()
        if inner.startswith("Nullable(") and inner.endswith(")"):
            inner = inner[len("Nullable("):-1]  # keys are stored without Nullable; index 0 means NULL
        return _LowCardinality(_compile(inner, depth + 1))
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
