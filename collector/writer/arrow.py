"""SpanBatch columns -> Arrow arrays typed after the ClickHouse columns they are inserted into.

The writer inserts Arrow record batches: pyarrow converts a column of Python
values in C++, where clickhouse-connect's Native encoder walks them in Python,
and the arrays are built once for both tables (genai_calls takes a filtered
view of the span columns it shares). The engine then reads the Arrow stream
without the GIL.

The Arrow type of each column comes from the table's ClickHouse type as the
store reports it, so a migration that changes a column needs no change here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from itertools import accumulate, chain
from typing import Any

import pyarrow as pa

log = logging.getLogger("spanhouse.writer")


class UnsupportedColumnType(ValueError):
    """A ClickHouse column type the Arrow insert path has no mapping for."""


_SCALARS: dict[str, pa.DataType] = {
    "String": pa.string(),
    "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64(),
    "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
    "Float32": pa.float32(), "Float64": pa.float64(),
    "Bool": pa.bool_(),
    "DateTime64(9)": pa.timestamp("ns"),  # values are Unix nanoseconds
}


def _inner(type_name: str, wrapper: str) -> str | None:
    if type_name.startswith(wrapper + "(") and type_name.endswith(")"):
        return type_name[len(wrapper) + 1:-1]
    return None


def arrow_type(type_name: str) -> pa.DataType:
    """The Arrow type a ClickHouse column of `type_name` is written from."""
    for wrapper in ("LowCardinality", "Nullable"):
        inner = _inner(type_name, wrapper)
        if inner is not None:
            return arrow_type(inner)
    inner = _inner(type_name, "Array")
    if inner is not None:
        return pa.list_(arrow_type(inner))
    inner = _inner(type_name, "Map")
    if inner is not None:
        key, value = _split_pair(inner)
        return pa.map_(arrow_type(key), arrow_type(value))
    if type_name in _SCALARS:
        return _SCALARS[type_name]
    raise UnsupportedColumnType(f"no Arrow type for ClickHouse type {type_name!r}")


def _split_pair(args: str) -> tuple[str, str]:
    """`K, V` of a Map type, splitting at the top-level comma."""
    depth = 0
    for i, ch in enumerate(args):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            return args[:i].strip(), args[i + 1:].strip()
    raise UnsupportedColumnType(f"cannot read Map arguments {args!r}")


def build_array(values: Sequence[Any], arrow_t: pa.DataType) -> pa.Array:
    """An Arrow array of `values` (Python objects as the pipeline holds them: dicts for maps, lists for arrays).

    Maps and lists of maps are flattened with C-level iteration (chain, accumulate) into one
    key array, one value array and offsets, which pyarrow converts much faster than a dict per row.
    """
    if pa.types.is_map(arrow_t):
        shared = _shared_objects(values)
        if shared is not None:
            distinct, rows = shared
            return build_array(distinct, arrow_t).take(pa.array(rows, pa.int32()))
        offsets = pa.array(list(accumulate(map(len, values), initial=0)), pa.int32())
        keys = build_array(list(chain.from_iterable(values)), arrow_t.key_type)
        items = build_array(list(chain.from_iterable(map(dict.values, values))), arrow_t.item_type)
        return pa.MapArray.from_arrays(offsets, keys, items, type=arrow_t)
    if pa.types.is_list(arrow_t) and pa.types.is_map(arrow_t.value_type):
        offsets = pa.array(list(accumulate(map(len, values), initial=0)), pa.int32())
        inner = build_array(list(chain.from_iterable(values)), arrow_t.value_type)
        return pa.ListArray.from_arrays(offsets, inner, type=arrow_t)
    return pa.array(values, type=arrow_t)


def _shared_objects(values: Sequence[Any]) -> tuple[list[Any], list[int]] | None:
    """(the distinct objects, each row's index into them) when rows share a few objects, else None.

    The spans of one resource hold the very same attributes dict: converting it once per
    resource instead of once per span saves most of that column's work. A sample decides.
    """
    sample = values[:64]
    if len(sample) < 8 or len(set(map(id, sample))) * 4 > len(sample):
        return None
    ids = list(map(id, values))
    firsts = dict(zip(ids, values))  # the rows hold every object, so an id names one object here
    position = {key: i for i, key in enumerate(firsts)}
    return list(firsts.values()), list(map(position.__getitem__, ids))


def choose_memory_pool() -> str:
    """Make pyarrow allocate from its jemalloc pool, unless ARROW_DEFAULT_MEMORY_POOL names one; the pool's name.

    A batch's columns grow in builders that double their buffers. With pyarrow's default pool on
    Linux (mimalloc) each doubling touched fresh pages, so converting a 20,000-span batch raised the
    process's peak RSS by ~90 MiB for ~40 MiB of columns; jemalloc grows most buffers in place: the
    same batch peaked ~35 MiB lower and converted ~15% faster (bench/insert_parts.py measures the
    conversion). A pyarrow built without jemalloc keeps its default.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):  # Arrow's own setting: the user chose
        return pa.default_memory_pool().backend_name
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError) as exc:
        log.debug("pyarrow has no jemalloc pool (%s); keeping %s", exc, pa.default_memory_pool().backend_name)
    return pa.default_memory_pool().backend_name
