"""The last check before an insert: rows whose time values the store cannot hold.

The decoder refuses such spans already; this guards what reaches the writer by other ways (a
spool written by an older version, a worker's hand-off, a dead-letter replay). It matters most for
`Timestamp + Duration`: the tables take those rows and then a materialized view that adds the two
fails with a decimal overflow, after the base tables already stored them. Checked here, before any
insert, such rows never reach a table.

The decoder refuses more (receiver/decode.py MAX_TIME_NS: past 2106 the tables' 32-bit DateTime
keys wrap); here the bounds are those past which an insert fails (a Duration of 2^64-1 is stored, as
the UInt64 it is). One pass per column in C (`max`, `min`, `map(add, ...)`); rows are looked at one
by one only when a bound is crossed.
"""

from __future__ import annotations

from itertools import chain
from operator import add
from typing import Any

from spanhouse.collector.batch import SpanBatch

# DateTime64(9) holds 1900-01-01 00:00:00 .. 2262-04-11 23:47:16.854775807 (Unix nanoseconds, Int64).
DATETIME64_MIN_NS = -2_208_988_800 * 10**9
DATETIME64_MAX_NS = 2**63 - 1
MAX_UINT64 = 2**64 - 1


def unstorable_rows(batch: SpanBatch) -> dict[int, str]:
    """Row index -> why its time values cannot be stored; empty when every row can be."""
    if not batch.size:
        return {}
    starts = batch.columns.get("Timestamp")
    durations = batch.columns.get("Duration")
    events = batch.columns.get("Events.Timestamp")
    try:
        if _fine(starts, durations, events):
            return {}
    except TypeError:  # a value of another type than int: the rows say which
        pass
    problems: dict[int, str] = {}
    for row in range(batch.size):
        problem = _row_problem(starts[row] if starts is not None else 0,
                               durations[row] if durations is not None else 0,
                               events[row] if events is not None else ())
        if problem is not None:
            problems[row] = problem
    return problems


def _fine(starts: list[Any] | None, durations: list[Any] | None, events: list[Any] | None) -> bool:
    """True when every row is within bounds (raises TypeError on values that are not numbers)."""
    if starts is not None and not (min(starts) >= DATETIME64_MIN_NS and max(starts) <= DATETIME64_MAX_NS):
        return False
    if starts is not None and durations is not None and (
            min(durations) < 0 or max(map(add, starts, durations)) > DATETIME64_MAX_NS):
        return False
    if events is not None:
        times = list(chain.from_iterable(events))
        if times and not (min(times) >= DATETIME64_MIN_NS and max(times) <= DATETIME64_MAX_NS):
            return False
    return True


def _row_problem(start: object, duration: object, events: object) -> str | None:
    if type(start) is not int:
        return f"Timestamp {start!r} is not an integer number of nanoseconds"
    if not DATETIME64_MIN_NS <= start <= DATETIME64_MAX_NS:
        return f"Timestamp {start} ns is outside what DateTime64(9) holds (years 1900-2262)"
    if type(duration) is not int or not 0 <= duration <= MAX_UINT64:
        return f"Duration {duration!r} ns is not a UInt64"
    # The views add the two as Int64 nanoseconds (a Duration of 2^63 or more counts as negative).
    if not -2**63 <= start + (duration if duration < 2**63 else duration - 2**64) <= DATETIME64_MAX_NS:
        return f"Timestamp {start} ns + Duration {duration} ns ends after what DateTime64(9) holds (2262-04-11)"
    for time in events if isinstance(events, (list, tuple)) else ():
        if type(time) is not int or not DATETIME64_MIN_NS <= time <= DATETIME64_MAX_NS:
            return f"an event's timestamp {time!r} ns is outside what DateTime64(9) holds (years 1900-2262)"
    return None
