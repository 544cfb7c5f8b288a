"""`spanhouse usage`, `spanhouse traces` and `spanhouse trace ID` as a user runs them, with and without a collector."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from spanhouse.collector import cli, demo
from spanhouse.collector.query import reports

from collector_harness import start_collector

LLM_OPS = ("chat", "text_completion", "generate_content", "embeddings")


def spanhouse(*args: str, query_endpoint: str = "", api_key: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANHOUSE_")}
    env["SPANHOUSE_QUERY__ENDPOINT"] = query_endpoint
    if api_key:
        env["SPANHOUSE_API_KEY"] = api_key
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def json_rows(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The rows of `--format json` (one JSON array)."""
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_reports_through_a_running_collector_and_then_from_the_store(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store")
    store = running.store_url
    try:
        demo.send(running.grpc_endpoint, traces=40)
        calls = running.query(
            "SELECT Model, Operation, StatusCode, ErrorType, CostTotal, Duration, ifNull(InputTokens, 0), TraceId, "
            "SpanId, ToolName FROM genai_calls")
        endpoint = running.query_endpoint

        # usage --by model: every number computed here from the raw calls.
        rows = {r["model"]: r for r in json_rows(spanhouse("usage", "--store", store, "--since", "2h", "--format",
                                                           "json", query_endpoint=endpoint))}
        by_model: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for call in calls:
            if call[1] in LLM_OPS:
                by_model[call[0]].append(call)
        assert rows.keys() == by_model.keys()
        for model, mine in by_model.items():
            row = rows[model]
            assert row["calls"] == len(mine)
            assert row["errors"] == sum(c[2] == "Error" or c[3] != "" for c in mine)
            assert row["input_tokens"] == sum(c[6] for c in mine)
            if all(c[4] is None for c in mine):
                assert row["cost_usd"] is None  # nothing priced: unknown, not $0
            else:
                assert row["cost_usd"] == pytest.approx(sum(c[4] or 0 for c in mine), abs=2e-6)
            assert row["unpriced"] == sum(c[4] is None for c in mine)
            durations = [c[5] / 1e6 for c in mine]
            if len(durations) > 1:
                q = statistics.quantiles(durations, n=100, method="inclusive")
                assert [row["p50_ms"], row["p95_ms"], row["p99_ms"]] == pytest.approx([q[49], q[94], q[98]], abs=0.06)

        # usage --by tool
        tools = {r["tool"]: r["calls"] for r in json_rows(spanhouse(
            "usage", "--store", store, "--by", "tool", "--format", "json", query_endpoint=endpoint))}
        expected_tools: dict[str, int] = defaultdict(int)
        for call in calls:
            if call[1] == "execute_tool":
                expected_tools[call[9]] += 1
        assert tools == expected_tools

        # traces --min-cost: the traces whose LLM calls cost at least the median trace's.
        cost: dict[str, float] = defaultdict(float)
        for call in calls:
            cost[call[7]] += call[4] or 0.0
        threshold = statistics.median(cost.values())
        listed = json_rows(spanhouse("traces", "--store", store, "--min-cost", str(threshold), "--limit", "1000",
                                     "--format", "json", query_endpoint=endpoint))
        assert {r["trace_id"] for r in listed} == {t for t, c in cost.items() if round(c, 9) >= round(threshold, 9)}
        assert [r["cost_usd"] for r in listed] == sorted((r["cost_usd"] for r in listed), reverse=True)

        # The trace_costs example in docs/queries.md.
        doc = (Path(__file__).resolve().parents[1] / "docs" / "queries.md").read_text()
        sql = doc.split("```sql\n", 1)[1].split("```", 1)[0]
        assert {r[0] for r in running.query(sql)} == {t for t, c in cost.items() if c > 0.05}

        # trace ID: one line per span, costs per span and the total in the header.
        top = listed[0]["trace_id"]
        mine = [c for c in calls if c[7] == top]
        result = spanhouse("trace", "--store", store, top, query_endpoint=endpoint)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"trace {top}: {len(mine)} spans")
        assert f"cost ${sum(c[4] or 0 for c in mine):.6f}" in lines[0]
        assert len(lines) == 1 + len(mine)
        assert lines[1].startswith("invoke_agent") and all(line.startswith(("├─ ", "└─ ")) for line in lines[2:])
        for call in mine:
            if call[4] is not None:
                assert any(f"${call[4]:.6f}" in line for line in lines[1:])
    finally:
        running.collector.stop()

    # No collector now: the commands open the store themselves.
    errors_only = json_rows(spanhouse("traces", "--store", store, "--errors", "--limit", "1000", "--format", "json"))
    failed = {c[7] for c in calls if c[2] == "Error" or c[3] != ""}
    assert {r["trace_id"] for r in errors_only} == failed and failed
    usage = spanhouse("usage", "--store", store, "--by", "service")
    assert usage.returncode == 0, usage.stderr
    assert all(service in usage.stdout for service in demo.SERVICES)


@pytest.mark.parametrize("argv, message", [
    pytest.param(["usage", "--since", "yesterdayish"], "--since: expected a duration", id="bad-since"),
    pytest.param(["traces", "--since", "1h", "--until", "2h"], "must be before --until", id="since-after-until"),
    pytest.param(["traces", "--min-duration", "fast"], "--min-duration: expected a duration", id="bad-duration"),
    pytest.param(["traces", "--limit", "0"], "--limit: must be at least 1", id="bad-limit"),
    pytest.param(["trace", "not-a-trace-id"], "expected 32 hex digits", id="bad-trace-id"),
])
def test_bad_report_options_say_what_is_wrong(argv: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*argv, "--store", f"chdb://{tmp_path / 'unused'}"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()  # refused before any store was opened


def _span(span_id: str, parent: str, name: str, start: str, duration_ms: float, **extra: Any) -> list[Any]:
    row = {"SpanId": span_id, "ParentSpanId": parent, "SpanName": name, "ServiceName": "svc",
           "Timestamp": f"2025-11-01 10:00:{start}", "Duration": int(duration_ms * 1e6), "StatusCode": "Unset",
           "Operation": "", "Model": "", "InputTokens": None, "OutputTokens": None, "CacheReadTokens": None,
           "CostTotal": None, **extra}
    return list(row.values())


def test_trace_tree_nests_children_and_prints_orphans_and_cycles_once() -> None:
    names = ["SpanId", "ParentSpanId", "SpanName", "ServiceName", "Timestamp", "Duration", "StatusCode", "Operation",
             "Model", "InputTokens", "OutputTokens", "CacheReadTokens", "CostTotal"]
    rows = [
        _span("a", "", "invoke_agent root", "00.000000000", 1000, Operation="invoke_agent", InputTokens="900"),
        _span("b", "a", "chat gpt-4o", "00.100000000", 300, Operation="chat", Model="gpt-4o-2024-08-06",
              InputTokens="600", OutputTokens="50", CacheReadTokens="200", CostTotal=0.0025),
        _span("c", "b", "http POST", "00.110000000", 250, StatusCode="Error"),
        _span("d", "a", "chat in-house", "00.500000000", 100, Operation="chat", Model="in-house",
              InputTokens="10", OutputTokens="2"),
        _span("e", "missing", "orphan", "00.900000000", 5),
        _span("x", "y", "loop-1", "01.000000000", 1),
        _span("y", "x", "loop-2", "01.000000001", 1),
    ]
    text = reports.trace_tree(lambda sql: (names, rows), "0" * 32)
    lines = text.splitlines()
    assert lines[0] == (f"trace {'0' * 32}: 7 spans, 1001.0 ms, 662 tokens, cost $0.002500 "
                        "(1 call without a price)")
    assert lines[1].startswith("invoke_agent root  [svc]  1000.0 ms")
    assert lines[2].startswith("├─ chat gpt-4o  [svc]  gpt-4o-2024-08-06  300.0 ms  600 in (200 cached) / 50 out")
    assert lines[2].endswith("$0.002500")
    assert lines[3].startswith("│  └─ http POST") and lines[3].endswith("ERROR")
    assert lines[4].startswith("└─ chat in-house") and lines[4].endswith("cost unknown")
    assert lines[5].startswith("orphan")
    # Two spans that are each other's parent: both printed, once.
    assert lines[6].startswith("loop-1") and lines[7].startswith("└─ loop-2") and len(lines) == 8


def test_reports_with_a_tenant_key_see_only_that_tenant(tmp_path: Path) -> None:
    import datetime as dt

    from access_harness import Key, auth_overrides, export, http, span_request

    acme, globex = Key.new("acme"), Key.new("globex")
    running = start_collector(tmp_path / "store", **auth_overrides(acme, globex))
    try:
        chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": "1000", "gen_ai.usage.output_tokens": "100"}
        export(running.grpc_endpoint, span_request("acme-app", 3, chat), metadata=acme.metadata)
        export(running.grpc_endpoint, span_request("globex-app", 5, chat), metadata=globex.metadata)
        running.flush()
        globex_trace = running.query("SELECT any(TraceId) FROM genai_calls WHERE TenantId = 'globex'")[0][0]

        def as_acme(sql: str) -> tuple[list[str], list[list[Any]]]:
            status, body = http(running.query_endpoint, "/query?format=JSONCompact", sql, key=acme.key)
            assert status == 200, body
            doc = json.loads(body)
            return [m["name"] for m in doc["meta"]], doc["data"]

        now = dt.datetime.now(dt.UTC)
        since, until = now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1)
        _, by_service = reports.usage(as_acme, "service", since, until)
        assert [(r[0], r[1]) for r in by_service] == [("acme-app", 3)]
        assert by_service[0][6] == pytest.approx(3 * (1000 * 2.50 + 100 * 10.00) / 1e6)
        _, tools = reports.usage(as_acme, "tool", since, until)
        assert tools == []
        _, listed = reports.traces(as_acme, since, until, limit=100)
        assert len(listed) == 3 and {r[1] for r in listed} == {"acme"}
        assert reports.trace_tree(as_acme, listed[0][0]).startswith(f"trace {listed[0][0]}: 1 spans")
        assert reports.trace_tree(as_acme, globex_trace).endswith("no spans found")

        # The command itself, with the key in the environment.
        result = spanhouse("traces", "--store", running.store_url, "--format", "json",
                           query_endpoint=running.query_endpoint, api_key=globex.key)
        assert {r["tenant"] for r in json_rows(result)} == {"globex"} and len(json_rows(result)) == 5
    finally:
        running.collector.stop()
