"""What `spanhouse sessions` prints: the sessions in a time range, or one session's turns.

The numbers come from reports.sessions and reports.session_turns (schemas/queries/sessions.sql and
session_turns.sql), the same rows the web UI's Sessions tab shows; this module only lays them out.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from spanhouse.collector.query import reports
from spanhouse.collector.query.render import format_objects, format_table

LIST_COLUMNS = ("conversation_id", "tenant", "user_id", "last_seen", "turns", "llm_calls", "tokens", "cost_usd",
                "duration_ms", "errors", "tasks", *reports.OUTCOME_COLUMNS)
TURN_COLUMNS = ("start", "trace_id", "tenant", "duration_ms", "llm_calls", "tokens", "cost_usd", "errors", "tasks",
                "outcomes", "agents")


@dataclass(frozen=True)
class SessionsRequest:
    """The command line of `spanhouse sessions`, checked."""

    conversation_id: str  # '' lists sessions; else that session's turns
    tenant: str = ""
    service: str = ""
    user: str = ""
    conversation: str = ""  # the list's filter (--conversation)
    limit: int = 50
    fmt: str = "table"

    def check(self) -> None:
        if self.conversation_id:
            given = [name for name, value in (("--service", self.service), ("--user", self.user),
                                              ("--conversation", self.conversation)) if value]
            if given:
                raise reports.ReportError(f"{', '.join(given)}: filter the list of sessions; with a "
                                          "CONVERSATION_ID the turns of that session are shown (drop the filter)")


def print_sessions(run_sql: reports.RunSql, request: SessionsRequest, since: dt.datetime, until: dt.datetime,
                   out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the answer; the exit status: 0, or 1 when a named session has no calls in the range."""
    request.check()
    if request.conversation_id:
        return _print_turns(run_sql, request, since, until, out, err)
    rows = reports.sessions(run_sql, since, until, tenant=request.tenant, service=request.service,
                            user=request.user, conversation=request.conversation, limit=request.limit)
    if request.fmt == "table":
        out.write(format_table(list(LIST_COLUMNS), [[_cell(row, name) for name in LIST_COLUMNS] for row in rows])
                  + "\n")
    else:
        out.write(_objects(rows, request.fmt))
    return 0


def _print_turns(run_sql: reports.RunSql, request: SessionsRequest, since: dt.datetime, until: dt.datetime,
                 out: TextIO, err: TextIO) -> int:
    turns = reports.session_turns(run_sql, request.conversation_id, since, until, tenant=request.tenant,
                                  limit=request.limit)
    if not turns:
        err.write(f"spanhouse sessions: no calls of conversation {request.conversation_id!r} between "
                  f"{since:%Y-%m-%d %H:%M:%S} and {until:%Y-%m-%d %H:%M:%S} UTC that this key may read; "
                  "widen the range (--since 30d)\n")
        return 1
    if request.fmt != "table":
        out.write(_objects(turns, request.fmt))
        return 0
    outcomes = [o or "no_outcome" for turn in turns for o in turn["outcomes"]]
    counted = ", ".join(f"{outcomes.count(name)} {name}" for name in reports.OUTCOME_COLUMNS if name in outcomes)
    out.write(f"conversation {request.conversation_id}: {_count(len(turns), 'turn')}, "
              f"{_count(sum(t['llm_calls'] for t in turns), 'LLM call')}, "
              f"{_count(sum(t['tokens'] for t in turns), 'token')}, cost ${sum(t['cost_usd'] for t in turns):.6f}, "
              f"{_count(sum(t['errors'] for t in turns), 'error')}, {_count(len(outcomes), 'task')}"
              + (f" ({counted})" if counted else "") + "\n")
    out.write(format_table(list(TURN_COLUMNS), [[_cell(turn, name) for name in TURN_COLUMNS] for turn in turns])
              + "\n")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cell(row: dict[str, Any], name: str) -> Any:
    value = row[name]
    if name == "user_id":  # a 64-digit hash: enough of it to tell users apart on a screen
        return value[:12] + (f" +{row['users'] - 1}" if row.get("users", 0) > 1 else "")
    if name in ("outcomes", "agents"):
        return ",".join(v or "-" for v in value)
    return value


def _objects(rows: list[dict[str, Any]], fmt: str) -> str:
    names = list(rows[0]) if rows else []
    return format_objects(names, [[row[name] for name in names] for row in rows], fmt)
