"""A store made by a release at migration 010, holding rows, upgraded by a collector that adds the task columns
(migration 012): the old rows keep their values and read '' in the new columns, new rows fill them, and the
sessions report counts both."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from spanhouse.collector.query import reports
from spanhouse.collector.query.render import parse_json_compact
from spanhouse.collector.store import available_migrations, split_statements

from access_harness import export, span_request
from collector_harness import start_collector
from collector_process import clean_env

TASK_COLUMNS = ("UserId", "AgentVersion", "PromptName", "PromptVersion", "Outcome", "OutcomeReason")

# Run in a process of its own (one embedded store per process): migrations up to 010 only, then rows written
# with the columns that release had, in the tenant the collector gives spans sent without a key ("default").
OLD_RELEASE = """
import sys, time
from spanhouse.collector.store import Store, client
shipped = client.available_migrations
client.available_migrations = lambda: [m for m in shipped() if m[0] <= 10]
store = Store.open(sys.argv[1])
store.migrate()
now = time.time_ns() - 60 * 10**9
store.insert("genai_calls", [["default"] * 2, [now, now + 10**6], ["old-app"] * 2, ["a" * 32] * 2, ["b" * 16, "c" * 16],
                             ["", "b" * 16], ["invoke_agent planner", "chat gpt-4o-mini"], ["invoke_agent", "chat"],
                             ["", "openai"], ["", "gpt-4o-mini"], [None, 1000], [None, 100], [5 * 10**6, 10**6],
                             ["old-conv"] * 2, ["Ok"] * 2],
             ["TenantId", "Timestamp", "ServiceName", "TraceId", "SpanId", "ParentSpanId", "SpanName", "Operation",
              "Provider", "RequestModel", "InputTokens", "OutputTokens", "Duration", "ConversationId", "StatusCode"])
store.insert("spans", [["default"], [now], ["a" * 32], ["b" * 16], ["invoke_agent planner"], ["old-conv"],
                       [{"gen_ai.operation.name": "invoke_agent", "spanhouse.outcome": "completed"}]],
             ["TenantId", "Timestamp", "TraceId", "SpanId", "SpanName", "ConversationId", "SpanAttributes"])
store.close()
"""


def test_a_store_at_migration_010_with_rows_is_upgraded(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    subprocess.run([sys.executable, "-c", OLD_RELEASE, url], check=True, timeout=300, env=clean_env())

    running = start_collector(tmp_path / "store")
    try:
        store = running.collector.store
        recorded = [v for (v,) in running.query("SELECT Version FROM spanhouse_migrations FINAL ORDER BY Version")]
        assert recorded == [v for v, _, _ in available_migrations()] and 12 in recorded
        # The migration's statements are idempotent: applying them again changes nothing and fails nothing.
        (text,) = [t for v, _, t in available_migrations() if v == 12]
        for statement in split_statements(text):
            store.command(statement)

        # Old rows: their values as written, '' in every new column (the spans row's attributes are not re-read).
        old = running.query(f"SELECT SpanName, InputTokens, {', '.join(TASK_COLUMNS)} FROM genai_calls "
                            "ORDER BY Timestamp")
        assert old == [("invoke_agent planner", None, *[""] * 6), ("chat gpt-4o-mini", 1000, *[""] * 6)]
        assert running.query(f"SELECT {', '.join(TASK_COLUMNS)} FROM spans") == [tuple([""] * 6)]

        # New rows in the same conversation fill them.
        response = export(running.grpc_endpoint, span_request("new-app", 1, {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "old-conv",
            "gen_ai.agent.version": "2.0", "spanhouse.prompt.version": "v9", "spanhouse.user.id_hash": "f00d",
            "spanhouse.outcome": "surfaced", "spanhouse.outcome.reason": "asked for a refund"}))
        assert not response.HasField("partial_success")
        for table in ("spans", "genai_calls"):
            assert running.query(f"SELECT {', '.join(TASK_COLUMNS)} FROM {table} WHERE ServiceName = 'new-app'") \
                == [("f00d", "2.0", "", "v9", "surfaced", "asked for a refund")], table

        # The sessions report counts old and new rows together (the old agent run: a task without an outcome).
        def run_sql(sql: str) -> tuple[list[str], list[list[object]]]:
            running.flush()
            return parse_json_compact(store.raw_query(sql, "JSONCompact"))

        now = dt.datetime.now(dt.UTC)
        (row,) = reports.sessions(run_sql, now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1),
                                  conversation="old-conv")
        assert (row["turns"], row["llm_calls"], row["tokens"], row["tasks"]) == (2, 1, 1100, 2)
        assert (row["surfaced"], row["no_outcome"], row["user_id"]) == (1, 1, "f00d")
    finally:
        running.collector.stop()
