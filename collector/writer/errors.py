"""Insert failures sorted where they arise: retrying helps (transient) or it cannot (permanent).

A transient failure (the store is down, slow, out of memory, has too many parts) is retried with
backoff for as long as it takes. A permanent one (a value the column type cannot hold, an overflow
in a materialized view, a parse error) fails the same way every time: the writer then splits the
batch, writes the rows that can be written and sets the others aside (see dead_letter.py), so one
bad row never blocks the rows behind it.

What neither list names is retried like a transient failure; if it keeps failing while the store
answers other queries, the writer treats it as permanent (`writer.unknown_error_attempts`).
"""

from __future__ import annotations

import re
from enum import Enum


class Kind(str, Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


class RowsNotStorable(ValueError):
    """Rows of a batch hold values the store's columns cannot take; nothing was inserted.

    `rows` maps a row's index in the batch to what is wrong with it.
    """

    def __init__(self, rows: dict[int, str]) -> None:
        first = next(iter(rows.values()), "")
        super().__init__(f"{len(rows)} row(s) hold values the store cannot take, e.g. {first}")
        self.rows = rows


# ClickHouse error codes (src/Common/ErrorCodes.cpp) for conditions that pass with time.
_TRANSIENT_CODES = frozenset({
    3,     # UNEXPECTED_END_OF_FILE (connection cut)
    159,   # TIMEOUT_EXCEEDED
    164,   # READONLY (a replica or disk temporarily read-only)
    202,   # TOO_MANY_SIMULTANEOUS_QUERIES
    203,   # NO_FREE_CONNECTION
    209,   # SOCKET_TIMEOUT
    210,   # NETWORK_ERROR
    236,   # ABORTED
    241,   # MEMORY_LIMIT_EXCEEDED
    242,   # TABLE_IS_READ_ONLY
    252,   # TOO_MANY_PARTS
    285,   # TOO_FEW_LIVE_REPLICAS
    319,   # UNKNOWN_STATUS_OF_INSERT
    394,   # QUERY_WAS_CANCELLED
    425,   # SYSTEM_ERROR
    439,   # CANNOT_SCHEDULE_TASK
    999,   # KEEPER_EXCEPTION
    1000,  # POCO_EXCEPTION
})
# ... and for a row's values that the table, or a view fed from it, will never take.
_PERMANENT_CODES = frozenset({
    6,    # CANNOT_PARSE_TEXT
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    43,   # ILLEGAL_TYPE_OF_ARGUMENT
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    131,  # TOO_LARGE_STRING_SIZE
    153,  # ILLEGAL_DIVISION
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    407,  # DECIMAL_OVERFLOW
})
_CODE = re.compile(r"\bCode: (\d+)\b")


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code in an exception's message, if it has one."""
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def classify(exc: BaseException) -> Kind:
    """Whether retrying the insert that raised `exc` can succeed."""
    if isinstance(exc, RowsNotStorable):
        return Kind.PERMANENT
    code = error_code(exc)
    if code in _PERMANENT_CODES:
        return Kind.PERMANENT
    if code in _TRANSIENT_CODES:
        return Kind.TRANSIENT
    # Converting Python values to the columns' Arrow types: the values are wrong, not the store.
    if isinstance(exc, (OverflowError, TypeError, UnicodeError)) or type(exc).__name__ in (
            "ArrowInvalid", "ArrowTypeError", "ArrowNotImplementedError"):
        return Kind.PERMANENT
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return Kind.TRANSIENT
    from spanhouse.collector.store import StoreError  # a store that is closed, missing or not migrated yet

    if isinstance(exc, StoreError):
        return Kind.TRANSIENT
    return Kind.UNKNOWN


_VOLATILE = re.compile(r"\d+|'[^']*'")


def cause(exc: BaseException) -> str:
    """A short key for what went wrong, the same for every row that failed the same way (for logging once)."""
    code = error_code(exc)
    if code is not None:
        return f"ClickHouse error {code}"
    if isinstance(exc, RowsNotStorable):
        first = next(iter(exc.rows.values()), "")
        return _VOLATILE.sub("#", first)[:120]
    return f"{type(exc).__name__}: {_VOLATILE.sub('#', str(exc))[:100]}"
