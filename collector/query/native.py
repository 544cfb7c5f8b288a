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

Column data is copied as it is; native_types.py finds where each column's data ends.

What each revision changes in this output (DBMS_MIN_REVISION_WITH_* in ClickHouse's ProtocolDefines.h):

- 1 and later: BlockInfo before each block.
- 54337: a top-level `DateTime('tz')` keeps its time zone in the type name. The engine writes revision
  0, where it is already dropped, so a column of `DateTime('Asia/Tokyo')` reaches every client as bare
  `DateTime` (same instants, shown in the server's time zone). Below 54337 a `DateTime(...)` name is cut.
- 54405: LowCardinality is sent as such. Below it each LowCardinality(T) is sent as T: the type name
  without it and each row's key written out in full (up to native_types.MAX_EXPANDED_BYTES per column).
- 54452: versioned aggregate function states carry their version; the only states walked here
  (t-digest, count) are not versioned, so nothing changes.
- 54454: the has_custom byte after each column's type. It is always 0: dense serialization is valid at
  every revision (sparse from 54465, replicated from 54482 and sparse Nullable from 54483 are options a
  server may take, never required).
- 54473: Dynamic and JSON switch to their V2 form; those types are refused, so nothing changes.
- 54480: BlockInfo field 3 (out-of-order buckets), written as an empty list.

A revision above HIGHEST_REVISION is served as HIGHEST_REVISION, as a server serves a newer client in
its own latest form. Every failure is a ValueError (NativeFormatError) that names the block, column and
type.
"""

from __future__ import annotations

from dataclasses import dataclass

from spanhouse.collector.query.native_type_names import compile_type, plain_type_name
from spanhouse.collector.query.native_types import Cursor, NativeFormatError

__all__ = ["HIGHEST_REVISION", "NativeBlock", "NativeColumn", "NativeFormatError", "adapt_native",
           "compile_type", "negotiated_revision", "parse_client_revision", "walk_native"]

REVISION_WITH_TIME_ZONE_IN_DATETIME = 54337
REVISION_WITH_LOW_CARDINALITY = 54405
REVISION_WITH_AGGREGATE_FUNCTIONS_VERSIONING = 54452
REVISION_WITH_CUSTOM_SERIALIZATION = 54454
REVISION_WITH_V2_DYNAMIC_AND_JSON = 54473
REVISION_WITH_OUT_OF_ORDER_BUCKETS = 54480
# The newest revision written here: ClickHouse's DBMS_TCP_PROTOCOL_VERSION when its newest change to
# Native output (54483, sparse Nullable: an option, never required) was made.
HIGHEST_REVISION = 54486

_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff"  # is_overflows = false, bucket_num = -1
_OUT_OF_ORDER_BUCKETS = b"\x03\x00"  # field 3, an empty list


@dataclass(frozen=True)
class NativeColumn:
    """One column of a block: offsets into the stream of its name, its type and its data."""

    name: str
    type: str
    header_start: int
    type_start: int
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
                _append_plain(out, view, buf, block, column, revision)
                continue
            if revision < REVISION_WITH_TIME_ZONE_IN_DATETIME and column.type.startswith("DateTime("):
                out.append(view[column.header_start:column.type_start])
                out.append(_string(b"DateTime"))
            else:
                out.append(view[column.header_start:column.data_start])
            out.append(custom_flag)
            out.append(view[column.data_start:column.end])
    return b"".join(out)


def _append_plain(out: list[bytes | memoryview], view: memoryview, buf: bytes, block: NativeBlock,
                  column: NativeColumn, revision: int) -> None:
    """`column` as a server writes it for a client older than LowCardinality: each LowCardinality(T) in
    its type as T, and its data with every row's key in full (revisions below 54405 have no has_custom)."""
    type_name = plain_type_name(column.type)
    if revision < REVISION_WITH_TIME_ZONE_IN_DATETIME and type_name.startswith("DateTime("):
        type_name = "DateTime"
    out.append(view[column.header_start:column.type_start])
    out.append(_string(type_name.encode()))
    if not block.num_rows:
        return
    walker = compile_type(column.type)
    cur = Cursor(buf)
    cur.pos = column.data_start
    try:
        walker.prefix(cur)  # LowCardinality's key version: a plain type has no prefix
        walker.plain(cur, block.num_rows, out)
    except NativeFormatError as exc:
        raise NativeFormatError(f"column {column.name!r} of type {column.type}: {exc}") from None
    if cur.pos != column.end:
        raise NativeFormatError(f"column {column.name!r} of type {column.type}: written out in full, its "
                                f"data ended at byte {cur.pos}, not {column.end}")


def walk_native(data: bytes) -> list[NativeBlock]:
    """Every block of a revision-0 Native stream with the byte ranges of its columns; the last block's
    `end` is len(data). Raises NativeFormatError when the bytes do not walk to their end exactly."""
    buf = data if isinstance(data, bytes) else bytes(data)
    cur = Cursor(buf)
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
            type_start = cur.pos
            type_name = cur.text(f"{where}: type of column {index + 1} ({name!r})")
            data_start = cur.pos
            if num_rows:  # a block without rows has no data at all, not even state prefixes
                try:
                    walker = compile_type(type_name)
                    walker.prefix(cur)
                    walker.data(cur, num_rows)
                except NativeFormatError as exc:
                    raise NativeFormatError(f"{where}, column {name!r} of type {type_name}: {exc}") from None
            columns.append(NativeColumn(name, type_name, header_start, type_start, data_start, cur.pos))
        blocks.append(NativeBlock(start, num_rows, tuple(columns), columns_start, cur.pos))
    return blocks


def _string(raw: bytes) -> bytes:
    """`raw` as a Native String: VarUInt length, then the bytes."""
    out = bytearray()
    length = len(raw)
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out) + raw
