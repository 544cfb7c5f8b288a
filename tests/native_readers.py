"""Readers of Native streams for tests: clickhouse-connect's own (revision 0 or its BlockInfo form), and one
for the has_custom form clickhouse-go reads, built from clickhouse-connect's column readers."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.datatypes import registry
from clickhouse_connect.driver.ctypes import RespBuffCls
from clickhouse_connect.driver.exceptions import StreamCompleteException
from clickhouse_connect.driver.query import QueryContext
from clickhouse_connect.driver.transform import NativeTransform

# clickhouse-go v2 sends its TCP protocol version as client_protocol_version in HTTP mode
# (lib/proto/const.go DBMS_TCP_PROTOCOL_VERSION, set by conn_http.go dialHttp).
CLICKHOUSE_GO_REVISION = 54460
# clickhouse-connect probes a server with client_protocol_version=54405 and then reads BlockInfo.
CLICKHOUSE_CONNECT_REVISION = 54405

BLOCK_INFO = bytes.fromhex("01 00 02 ff ff ff ff 00")  # is_overflows 0, bucket_num -1, end
BLOCK_INFO_WITH_BUCKETS = bytes.fromhex("01 00 02 ff ff ff ff 03 00 00")  # field 3: no out-of-order buckets


class _Chunks:
    """The transport shape clickhouse-connect's ResponseBuffer reads from: a generator of byte chunks."""

    exception_tag = None

    def __init__(self, data: bytes) -> None:
        self.gen = iter([data] if data else [])

    def close(self) -> None:
        pass


def reference_rows(data: bytes, block_info: bool = False) -> list[tuple[Any, ...]]:
    """The rows of a Native stream by clickhouse-connect's own reader (revision 0, or its BlockInfo form)."""
    context = QueryContext()
    context.block_info = block_info
    return list(NativeTransform.parse_response(RespBuffCls(_Chunks(data)), context).result_rows)


def rows_at_revision(data: bytes, revision: int) -> list[tuple[Any, ...]]:
    """The rows of a Native stream in the has_custom form (clickhouse-go's); see read_at_revision."""
    return read_at_revision(data, revision)[2]


def read_at_revision(data: bytes, revision: int) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """(names, types, rows) of a Native stream in the has_custom form (clickhouse-go's), read with
    clickhouse-connect's column readers: BlockInfo and the flag bytes are checked here against the format
    description, values read by them."""
    source = RespBuffCls(_Chunks(data))
    context = QueryContext()
    expected_info = BLOCK_INFO_WITH_BUCKETS if revision >= 54480 else BLOCK_INFO
    names: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    while True:
        try:
            info = source.read_bytes(len(expected_info))
        except StreamCompleteException:
            return names, types, rows
        assert info == expected_info
        num_columns, num_rows = source.read_leb128(), source.read_leb128()
        columns = []
        names, types = [], []
        for _ in range(num_columns):
            name, type_name = source.read_leb128_str(), source.read_leb128_str()
            names.append(name)
            types.append(type_name)
            assert source.read_byte() == 0, f"has_custom of {name}"
            context.start_column(name)
            columns.append(registry.get_from_name(type_name).read_column(source, num_rows, context))
        rows.extend(zip(*columns, strict=True))
