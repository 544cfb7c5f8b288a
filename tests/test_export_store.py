"""`spanhouse export` and `replay` as a user runs them, each a process of its own: a collector takes a trace,
is stopped, and `spanhouse export` reads the store itself (no collector to ask, so every tenant and --where);
the export replayed into a second collector on a fresh store comes back as the same trace."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from access_harness import export, span_request
from collector_process import CollectorProcess, clean_env
from test_cli import http_post


def spanhouse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], check=False, capture_output=True,
                          text=True, cwd=cwd, env=clean_env(), timeout=120)


def test_export_reads_a_stopped_store_and_replay_fills_a_fresh_one(tmp_path: Path) -> None:
    request = span_request("direct", 3, attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                                    "gen_ai.usage.input_tokens": "12"})
    trace_ids = {span.trace_id.hex() for span in request.resource_spans[0].scope_spans[0].spans}
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = CollectorProcess(tmp_path / "first" / "store", "127.0.0.1:0")
    try:
        assert not export(first.grpc_endpoint, request).HasField("partial_success")
        http_post(first.query_endpoint, "/flush", b"")
    finally:
        assert first.terminate() == 0
    store = f"chdb://{tmp_path / 'first' / 'store'}"

    records = spanhouse("export", "--store", store, "--query-endpoint", "", "--since", "1h", cwd=tmp_path)
    assert records.returncode == 0, records.stderr
    rows = [json.loads(line) for line in records.stdout.splitlines()]
    assert {r["trace_id"] for r in rows} == trace_ids
    assert {r["usage"]["input_tokens"] for r in rows} == {12}
    assert f"answered by the embedded store {tmp_path / 'first' / 'store'}" in records.stderr

    out = tmp_path / "all.otlp.jsonl"
    where = spanhouse("export", "--store", store, "--query-endpoint", "", "--since", "1h", "--format", "otlp-json",
                      "--where", "SpanName LIKE 'direct-span-%'", "--output", str(out), cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert len(out.read_text().splitlines()) == 3

    second = CollectorProcess(tmp_path / "second" / "store", "127.0.0.1:0")
    try:
        replayed = spanhouse("replay", str(out), "--endpoint", second.grpc_endpoint, "--shift-to-now", cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.startswith(f"replayed 3 traces, 3 spans to {second.grpc_endpoint}")
        http_post(second.query_endpoint, "/flush", b"")
        query = spanhouse("query", "--query-endpoint", second.query_endpoint, "--format", "jsonl",
                          "SELECT TraceId, SpanName, Duration, toUnixTimestamp64Nano(Timestamp) AS t FROM spans",
                          cwd=tmp_path)
        assert query.returncode == 0, query.stderr
        stored = [json.loads(line) for line in query.stdout.splitlines()]
        assert {s["TraceId"] for s in stored} == trace_ids  # without --new-ids the ids are kept
        assert {int(s["Duration"]) for s in stored} == {1000}
        assert max(int(s["t"]) + 1000 for s in stored) >= time.time_ns() - 120 * 10**9
    finally:
        second.stop()
