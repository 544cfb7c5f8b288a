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

For a client older than LowCardinality a walker can also write its data with every LowCardinality(T)
as plain T: each row's key in full (a null map first for Nullable keys).

Hostile input fails fast: every length is checked against the bytes left before anything is skipped,
and every walker consumes at least a byte per value, so no input loops longer than its own length or
allocates in proportion to the counts it claims (writing LowCardinality out in full allocates what it
writes, at most MAX_EXPANDED_BYTES per column).
"""

from __future__ import annotations

import struct

MAX_NAME_BYTES = 1 << 20  # a column name or type name longer than this is not a real result
MAX_EXPANDED_BYTES = 1 << 30  # a LowCardinality column written out in full for an old client, at most

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
    """Sizes one type's data: `prefix` reads its state prefixes, `data` the data of `rows` values.

    For clients older than LowCardinality, `plain` appends the data of `rows` values with every
    LowCardinality(T) in it written as plain T (after `prefix` has consumed the prefixes, which plain
    types do not have), and `values` returns `count` values one by one (the keys of a dictionary).
    """

    has_low_cardinality = False

    def prefix(self, cur: Cursor) -> None:
        pass

    def data(self, cur: Cursor, rows: int) -> None:
        raise NotImplementedError

    def plain(self, cur: Cursor, rows: int, out: list[bytes | memoryview]) -> None:
        start = cur.pos
        self.data(cur, rows)
        out.append(cur.data[start:cur.pos])

    def values(self, cur: Cursor, count: int) -> list[bytes]:
        raise NativeFormatError("a LowCardinality of this type cannot be written out for an old client")


class FixedColumn(Walker):
    def __init__(self, width: int) -> None:
        if width <= 0:
            raise ValueError(width)  # FixedString(0) or a negative width: not a real type
        self.width = width

    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows * self.width, f"{rows} values of {self.width} bytes")

    def values(self, cur: Cursor, count: int) -> list[bytes]:
        start, width = cur.pos, self.width
        self.data(cur, count)
        return [cur.data[at:at + width] for at in range(start, cur.pos, width)]


class StringColumn(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        cur.strings(rows)

    def values(self, cur: Cursor, count: int) -> list[bytes]:
        if count > cur.end - cur.pos:  # a String takes a byte at least
            raise cur.truncated(f"{count} strings", count)
        found = []
        for _ in range(count):
            start = cur.pos
            cur.strings(1)
            found.append(cur.data[start:cur.pos])  # with its length: a String as written
        return found


class NullableColumn(Walker):
    def __init__(self, inner: Walker) -> None:
        self.inner = inner
        self.has_low_cardinality = inner.has_low_cardinality

    def prefix(self, cur: Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows, f"a null map of {rows} rows")
        self.inner.data(cur, rows)

    def plain(self, cur: Cursor, rows: int, out: list[bytes | memoryview]) -> None:
        start = cur.pos
        cur.skip(rows, f"a null map of {rows} rows")
        out.append(cur.data[start:cur.pos])
        self.inner.plain(cur, rows, out)


class ArrayColumn(Walker):
    def __init__(self, inner: Walker) -> None:
        self.inner = inner
        self.has_low_cardinality = inner.has_low_cardinality

    def prefix(self, cur: Cursor) -> None:
        self.inner.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        if not rows:
            return
        cur.skip(rows * 8, f"{rows} array offsets")
        (elements,) = _UINT64.unpack_from(cur.data, cur.pos - 8)  # the last end offset counts every element
        self.inner.data(cur, int(elements))

    def plain(self, cur: Cursor, rows: int, out: list[bytes | memoryview]) -> None:
        if not rows:
            return
        start = cur.pos
        cur.skip(rows * 8, f"{rows} array offsets")
        out.append(cur.data[start:cur.pos])
        (elements,) = _UINT64.unpack_from(cur.data, cur.pos - 8)
        self.inner.plain(cur, int(elements), out)


class TupleColumn(Walker):
    def __init__(self, elements: list[Walker]) -> None:
        self.elements = elements
        self.has_low_cardinality = any(element.has_low_cardinality for element in elements)

    def prefix(self, cur: Cursor) -> None:
        for element in self.elements:
            element.prefix(cur)

    def data(self, cur: Cursor, rows: int) -> None:
        for element in self.elements:
            element.data(cur, rows)

    def plain(self, cur: Cursor, rows: int, out: list[bytes | memoryview]) -> None:
        for element in self.elements:
            element.plain(cur, rows, out)


class LowCardinalityColumn(Walker):
    has_low_cardinality = True

    def __init__(self, keys: Walker, nullable: bool) -> None:
        self.keys = keys
        self.nullable = nullable  # LowCardinality(Nullable(T)): key 0 stands for NULL

    def prefix(self, cur: Cursor) -> None:
        version = cur.uint64("the LowCardinality key version")
        if version != _LC_KEY_VERSION:
            raise NativeFormatError(f"LowCardinality key version {version}, expected {_LC_KEY_VERSION}")

    def data(self, cur: Cursor, rows: int) -> None:
        left = rows
        while left:
            flags = self._flags(cur)
            if flags & _LC_HAS_ADDITIONAL_KEYS:
                self.keys.data(cur, cur.uint64("LowCardinality key count"))
            count = self._index_count(cur, left)
            cur.skip(count * _LC_INDEX_WIDTHS[flags & 0xFF], f"{count} LowCardinality indexes")
            left -= count

    @staticmethod
    def _flags(cur: Cursor) -> int:
        flags = cur.uint64("LowCardinality index flags")
        if flags & ~_LC_KNOWN_FLAGS or flags & 0xFF >= len(_LC_INDEX_WIDTHS):
            raise NativeFormatError(f"unknown LowCardinality index flags {flags:#x}")
        if flags & _LC_NEEDS_GLOBAL_DICTIONARY:
            raise NativeFormatError("LowCardinality with a global dictionary (not written in Native)")
        return flags

    @staticmethod
    def _index_count(cur: Cursor, left: int) -> int:
        # A granule holds one row at least, so the loop over granules ends within `left` rounds.
        count = cur.uint64("LowCardinality index count")
        if not 0 < count <= left:
            raise NativeFormatError(f"LowCardinality granule of {count} indexes where {left} rows are left")
        return count

    def plain(self, cur: Cursor, rows: int, out: list[bytes | memoryview]) -> None:
        # Each row's key written out in full: T's data (after a null map for Nullable(T)).
        keys: list[bytes] | None = None
        key_sizes: list[int] = []
        null_map = bytearray()
        found: list[bytes] = []
        size = 0
        left = rows
        while left:
            flags = self._flags(cur)
            if flags & _LC_HAS_ADDITIONAL_KEYS:
                keys = self.keys.values(cur, cur.uint64("LowCardinality key count"))
                key_sizes = [len(key) for key in keys]
            if keys is None:
                raise NativeFormatError("LowCardinality indexes before any keys")
            count = self._index_count(cur, left)
            start = cur.pos
            cur.skip(count * _LC_INDEX_WIDTHS[flags & 0xFF], f"{count} LowCardinality indexes")
            indexes = struct.unpack_from(f"<{count}{'BHIQ'[flags & 0xFF]}", cur.data, start)
            if max(indexes) >= len(keys):
                raise NativeFormatError(f"LowCardinality index {max(indexes)} past its {len(keys)} keys")
            size += sum(key_sizes[index] for index in indexes)
            if size > MAX_EXPANDED_BYTES:
                raise NativeFormatError(f"written out in full, a LowCardinality column passes "
                                        f"{MAX_EXPANDED_BYTES >> 20} MiB; select fewer rows")
            found.extend(keys[index] for index in indexes)
            if self.nullable:
                null_map.extend(index == 0 for index in indexes)
            left -= count
        if self.nullable:
            out.append(bytes(null_map))
        out.append(b"".join(found))


class NothingColumn(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        cur.skip(rows, f"{rows} Nothing placeholders")


class TDigestStates(Walker):
    # QuantileTDigest: VarUInt centroid count, then (mean Float32, count Float32) per centroid.
    def data(self, cur: Cursor, rows: int) -> None:
        if rows > cur.end - cur.pos:
            raise cur.truncated(f"{rows} t-digest states", rows)
        for _ in range(rows):
            centroids = cur.varuint("a t-digest centroid count")
            cur.skip(centroids * 8, f"{centroids} t-digest centroids")


class CountStates(Walker):
    def data(self, cur: Cursor, rows: int) -> None:
        if rows > cur.end - cur.pos:
            raise cur.truncated(f"{rows} count states", rows)
        for _ in range(rows):
            cur.varuint("a count state")
