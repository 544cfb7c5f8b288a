"""ClickHouse `Native` output re-encoded for the protocol revision a client asks for.

The embedded engine writes `FORMAT Native` as a ClickHouse server does for `client_revision` 0, the
form `SELECT ... FORMAT Native` has over HTTP by default. A client may ask for a later form with the URL
parameter `client_protocol_version=<N>`; clickhouse-go v2 in HTTP mode (Grafana's ClickHouse data source)
always sends its TCP protocol version, 54460, and reads every block in that form.
`adapt_native(data, client_revision)` turns the engine's bytes into the bytes a server would have written
for that revision. Values are never decoded: the walker only finds where each column's data ends and the
bytes are copied through.

The stream is a sequence of blocks, each::

    [BlockInfo]              revision > 0 only: field 1 is_overflows UInt8 (0), field 2 bucket_num Int32 (-1),
                             field 3 out_of_order_buckets (VarUInt count 0) from 54480, then field number 0
    VarUInt num_columns, VarUInt num_rows
    per column: String name, String type, [UInt8 has_custom (0)] from 54454, data (none when num_rows is 0)

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
  and count() is a VarUInt. Other aggregate states, Dynamic, Variant, JSON and Object are refused.

What each revision changes in this output (DBMS_MIN_REVISION_WITH_* in ClickHouse's ProtocolDefines.h):

- 1 and later: BlockInfo before each block.
- 54337: a top-level `DateTime('tz')` keeps its time zone in the type name. The engine writes revision
  0, where it is already dropped, so a column of `DateTime('Asia/Tokyo')` reaches every client as bare
  `DateTime` (same instants, shown in the server's time zone). Below 54337 a `DateTime(...)` name is cut.
- 54405: LowCardinality is sent as such; below it a server would send plain T. That conversion is not
  implemented: a result with a LowCardinality column is refused for revisions 1-54404.
- 54452: versioned aggregate function states carry their version; the only states walked here
  (t-digest, count) are not versioned, so nothing changes.
- 54454: the has_custom byte after each column's type. It is always 0: dense serialization is valid at
  every revision (sparse from 54465, replicated from 54482 and sparse Nullable from 54483 are options a
  server may take, never required).
- 54473: Dynamic and JSON switch to their V2 form; those types are refused, so nothing changes.
- 54480: BlockInfo field 3 (out-of-order buckets), written as an empty list.

A revision above HIGHEST_REVISION is served as HIGHEST_REVISION, as a server serves a newer client in
its own latest form. Every failure is a ValueError (NativeFormatError) that names the block, column and
type; hostile input fails fast: each length is checked against the bytes left before anything is
skipped, so no input allocates more than the output or loops longer than its own length.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

REVISION_WITH_TIME_ZONE_IN_DATETIME = 54337
REVISION_WITH_LOW_CARDINALITY = 54405
REVISION_WITH_AGGREGATE_FUNCTIONS_VERSIONING = 54452
REVISION_WITH_CUSTOM_SERIALIZATION = 54454
REVISION_WITH_V2_DYNAMIC_AND_JSON = 54473
REVISION_WITH_OUT_OF_ORDER_BUCKETS = 54480
# The newest protocol revision whose Native output this module writes (ClickHouse's
# DBMS_TCP_PROTOCOL_VERSION when 54483, the last revision to change Native output, was the newest).
HIGHEST_REVISION = 54486

MAX_NAME_BYTES = 1 << 20  # a column name or type name longer than this is not a real result
MAX_TYPE_DEPTH = 32
_COMPILED_CACHE_SIZE = 512

_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff"  # is_overflows = false, bucket_num = -1
_OUT_OF_ORDER_BUCKETS = b"\x03\x00"  # field 3, an empty list
_LC_KEY_VERSION = 1  # SharedDictionariesWithAdditionalKeys, the only one ClickHouse writes
_LC_INDEX_WIDTHS = (1, 2, 4, 8)
_LC_NEEDS_GLOBAL_DICTIONARY = 1 << 8
_LC_HAS_ADDITIONAL_KEYS = 1 << 9
_LC_KNOWN_FLAGS = 0xFF | _LC_NEEDS_GLOBAL_DICTIONARY | _LC_HAS_ADDITIONAL_KEYS | 1 << 10
_UINT64 = struct.Struct("<Q")


class NativeFormatError(ValueError):
    """The Native bytes cannot be walked: truncated, malformed, or a column type this module cannot size."""


@dataclass(frozen=True)
class NativeColumn:
    """One column of a block: offsets into the stream of its header (name, type) and of its data."""

    name: str
    type: str
    header_start: int
    data_start: int
    end: int


@dataclass(frozen=True)
class NativeBlock:
    """One block: where it starts, its row count and its columns; `end` is where the next block starts."""

    start: int
    num_rows: int
    columns: tuple[NativeColumn, ...]
    columns_start: int
    end: int


def negotiated_revision(client_revision: int) -> int:
    """The revision the output is written in: the client's, capped at HIGHEST_REVISION."""
    if client_revision < 0:
        raise NativeFormatError(f"client_protocol_version must be 0 or more, not {client_revision}")
    return min(client_revision, HIGHEST_REVISION)


def parse_client_revision(text: str | None) -> int:
    """The `client_protocol_version` URL parameter as an int (0 when absent); ValueError when not a number."""
    if text is None or text == "":
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise NativeFormatError(f"client_protocol_version must be a non-negative integer, not {text[:40]!r}")
    return int(text)


def adapt_native(data: bytes, client_revision: int) -> bytes:
    """`data` (Native as written for revision 0, any number of blocks) re-encoded for `client_revision`.

    Revision 0 returns `data` itself. Revisions above HIGHEST_REVISION are written as HIGHEST_REVISION.
    Raises NativeFormatError (a ValueError) for bytes that cannot be walked or a type that cannot be sized.
    """
    revision = negotiated_revision(client_revision)
    if revision == 0:
        return data
    buf = data if isinstance(data, bytes) else bytes(data)
    block_info = _BLOCK_INFO
    if revision >= REVISION_WITH_OUT_OF_ORDER_BUCKETS:
        block_info += _OUT_OF_ORDER_BUCKETS
    block_info += b"\x00"
    custom_flag = b"\x00" if revision >= REVISION_WITH_CUSTOM_SERIALIZATION else b""
    view = memoryview(buf)
    out: list[bytes | memoryview] = []
    for block in walk_native(buf):
        out.append(block_info)
        out.append(view[block.start:block.columns_start])
        for column in block.columns:
            if revision < REVISION_WITH_LOW_CARDINALITY and "LowCardinality" in column.type:
                raise NativeFormatError(
                    f"column {column.name!r} is {column.type}, and client_protocol_version {client_revision} "
                    f"predates LowCardinality ({REVISION_WITH_LOW_CARDINALITY}); send "
                    f"client_protocol_version={REVISION_WITH_LOW_CARDINALITY} or more, or select "
                    "toString()/CAST(... AS T) of it")
            if revision < REVISION_WITH_TIME_ZONE_IN_DATETIME and column.type.startswith("DateTime("):
                out.append(_string(column.name.encode()) + _string(b"DateTime"))
            else:
                out.append(view[column.header_start:column.data_start])
            out.append(custom_flag)
            out.append(view[column.data_start:column.end])
    return b"".join(out)


def walk_native(data: bytes) -> list[NativeBlock]:
    """Every block of a revision-0 Native stream with the byte ranges of its columns; the last block's
    `end` is len(data). Raises NativeFormatError when the bytes do not walk to their end exactly."""
    buf = data if isinstance(data, bytes) else bytes(data)
    cur = _Cursor(buf)
    blocks: list[NativeBlock] = []
    while cur.pos < len(buf):
        start = cur.pos
        where = f"block {len(blocks) + 1} at byte {start}"
        num_columns = cur.varuint(where + ": column count")
        num_rows = cur.varuint(where + ": row count")
        if num_columns > (len(buf) - cur.pos) // 2:  # a name and a type take a byte each at least
            raise NativeFormatError(f"{where}: {num_columns} columns cannot fit in the {len(buf) - cur.pos} "
                                    "bytes left (truncated or not Native)")
        columns_start = cur.pos
        columns = []
        for index in range(num_columns):
            header_start = cur.pos
            name = cur.text(f"{where}: name of column {index + 1}")
            type_name = cur.text(f"{where}: type of column {index + 1} ({name!r})")
            data_start = cur.pos
            if num_rows:  # a block without rows has no data at all, not even state prefixes
                try:
                    walker = compile_type(type_name)
                    walker.prefix(cur)
                    walker.data(cur, num_rows)
                except NativeFormatError as exc:
                    raise NativeFormatError(f"{where}, column {name!r} of type {type_name}: {exc}") from None
            columns.append(NativeColumn(name, type_name, header_start, data_start, cur.pos))
        blocks.append(NativeBlock(start, num_rows, tuple(columns), columns_start, cur.pos))
    return blocks


def _string(raw: bytes) -> bytes:
    out = bytearray()
    length = len(raw)
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out) + raw


class _Cursor:
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


class _Walker:
    """Sizes one type's data: `prefix` reads its state prefixes, `data` the data of `rows` values."""

    def prefix(self, cur: _Cursor) -> None:
        pass

    def data(self, cur: _Cursor, rows: int) -> None:
        raise NotImplementedError


class _Fixed(_Walker):
    def __init__(self, width: int) -> None:
        if width <= 0:
            raise ValueError(width)  # FixedString(0) or a negative width: not a real type
        self.width = width

    def data(self, cur: _Cursor, rows: int) -> None:
        cur.skip(rows * self.width, f"{rows} values of {self.width} bytes")


class _String(_Walker):
    def data(self, cur: _Cursor, rows: int) -> None:
        cur.strings(rows)


class _Nullable(_Walker):
    def __init__(self, inner: _Walker) -> None:
        self.inner = inner

    def prefix(self, cur: _Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: _Cursor, rows: int) -> None:
        cur.skip(rows, f"a null map of {rows} rows")
        self.inner.data(cur, rows)


class _Array(_Walker):
    def __init__(self, inner: _Walker) -> None:
        self.inner = inner

    def prefix(self, cur: _Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: _Cursor, rows: int) -> None:
        if not rows:
            return
        cur.skip(rows * 8, f"{rows} array offsets")
        (elements,) = _UINT64.unpack_from(cur.data, cur.pos - 8)  # the last end offset counts every element
        self.inner.data(cur, int(elements))


class _Tuple(_Walker):
    def __init__(self, elements: list[_Walker]) -> None:
        self.elements = elements

    def prefix(self, cur: _Cursor) -> None:
        for element in self.elements:
            element.prefix(cur)

    def data(self, cur: _Cursor, rows: int) -> None:
        for element in self.elements:
            element.data(cur, rows)


class _LowCardinality(_Walker):
    def __init__(self, keys: _Walker) -> None:
        self.keys = keys

    def prefix(self, cur: _Cursor) -> None:
        version = cur.uint64("the LowCardinality key version")
        if version != _LC_KEY_VERSION:
            raise NativeFormatError(f"LowCardinality key version {version}, expected {_LC_KEY_VERSION}")

    def data(self, cur: _Cursor, rows: int) -> None:
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
                raise NativeFormatError(f"LowCardinality granule of {count} indexes where {left} rows are left")
            cur.skip(count * _LC_INDEX_WIDTHS[flags & 0xFF], f"{count} LowCardinality indexes")
            left -= count


class _Nothing(_Walker):
    def data(self, cur: _Cursor, rows: int) -> None:
        cur.skip(rows, f"{rows} Nothing placeholders")


class _TDigestState(_Walker):
    # QuantileTDigest: VarUInt centroid count, then (mean Float32, count Float32) per centroid.
    def data(self, cur: _Cursor, rows: int) -> None:
        if rows > cur.end - cur.pos:
            raise cur.truncated(f"{rows} t-digest states", rows)
        for _ in range(rows):
            centroids = cur.varuint("a t-digest centroid count")
            cur.skip(centroids * 8, f"{centroids} t-digest centroids")


class _CountState(_Walker):
    def data(self, cur: _Cursor, rows: int) -> None:
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
_AGGREGATE_STATES: tuple[tuple[re.Pattern[str], Callable[[], _Walker]], ...] = (
    (re.compile(r"quantiles?TDigest(?:Weighted)?(?:If)?(?:\([^()]*\))?"), _TDigestState),
    (re.compile(r"count(?:If)?"), _CountState),
)
_compiled: dict[str, _Walker] = {}


def compile_type(type_name: str) -> _Walker:
    """The walker for a ClickHouse type name; NativeFormatError naming the type when it cannot be sized."""
    walker = _compiled.get(type_name)
    if walker is None:
        walker = _compile(type_name, 0)
        if len(_compiled) >= _COMPILED_CACHE_SIZE:
            _compiled.clear()  # hostile type names must not grow the cache without bound
        _compiled[type_name] = walker
    return walker


def _compile(type_name: str, depth: int) -> _Walker:
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


def _walker_for(name: str, args: list[str], text: str, depth: int) -> _Walker:
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
