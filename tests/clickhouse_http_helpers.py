"""Raw calls to the query endpoint's ClickHouse HTTP interface, and decoders for its binary formats."""

from __future__ import annotations

import base64
import http.client
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def call(endpoint: str, sql: str | None = None, *, params: dict[str, str] | None = None,
         key: str | None = None, user: str = "default", headers: dict[str, str] | None = None,
         method: str = "POST", body: bytes | None = None, connection: http.client.HTTPConnection | None = None) -> Reply:
    """One request to `/`: `sql` as the body (POST) unless `body` is given; `key` as HTTP Basic's password."""
    query = urlencode(params or {})
    all_headers = dict(headers or {})
    if key is not None:
        all_headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()
    data = body if body is not None else (sql.encode() if sql is not None and method == "POST" else None)
    host, port = endpoint.rsplit(":", 1)
    conn = connection or http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, "/" + (f"?{query}" if query else ""), body=data, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        if connection is None:
            conn.close()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _string(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _varint(data, pos)
    return data[pos:pos + length].decode(), pos + length


_FIXED = {"UInt8": "<B", "UInt32": "<I", "UInt64": "<Q", "Int64": "<q"}


def _value(data: bytes, pos: int, ch_type: str) -> tuple[Any, int]:
    if ch_type == "String":
        return _string(data, pos)
    fmt = _FIXED[ch_type]
    (value,) = struct.unpack_from(fmt, data, pos)
    return value, pos + struct.calcsize(fmt)


def decode_native(data: bytes) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """(names, types, rows) of one Native block as chDB writes it (no block info: client revision 0)."""
    columns, pos = _varint(data, 0)
    rows, pos = _varint(data, pos)
    names, types, values = [], [], []
    for _ in range(columns):
        name, pos = _string(data, pos)
        ch_type, pos = _string(data, pos)
        column = []
        for _ in range(rows):
            value, pos = _value(data, pos, ch_type)
            column.append(value)
        names.append(name)
        types.append(ch_type)
        values.append(column)
    assert pos == len(data), "bytes left after one block"
    return names, types, list(zip(*values))


def decode_row_binary_with_names_and_types(data: bytes) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    columns, pos = _varint(data, 0)
    names, types = [], []
    for _ in range(columns):
        name, pos = _string(data, pos)
        names.append(name)
    for _ in range(columns):
        ch_type, pos = _string(data, pos)
        types.append(ch_type)
    rows = []
    while pos < len(data):
        row = []
        for ch_type in types:
            value, pos = _value(data, pos, ch_type)
            row.append(value)
        rows.append(tuple(row))
    return names, types, rows
