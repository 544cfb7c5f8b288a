"""Any language: the OpenTelemetry JS SDK's OTLP exporters (from npm), gRPC and HTTP/JSON -> collector -> ClickHouse."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_sender() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are needed for the any-language test (install them, e.g. apt-get install nodejs npm)")
    installed = NODE_DIR / "node_modules" / "@opentelemetry"
    if not all((installed / name).exists() for name in ("exporter-trace-otlp-grpc", "exporter-trace-otlp-http")):
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True,
                       timeout=300)
    return NODE_DIR / "send.js"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_spans_from_node_sdk_are_stored(running_collector, node_sender, protocol):
    endpoint = (running_collector.grpc_endpoint if protocol == "grpc"
                else running_collector.collector.http_url.split("/")[2])
    done = subprocess.run(["node", str(node_sender), endpoint, protocol], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    trace_id = json.loads(done.stdout.strip().splitlines()[-1])["traceId"]
    spans = running_collector.query(
        "SELECT SpanName, SpanKind, ServiceName, ScopeName, StatusCode, StatusMessage, ParentSpanId != '',"
        " ResourceAttributes['telemetry.sdk.language'] FROM spans WHERE TraceId = {t:String} ORDER BY SpanName",
        {"t": trace_id})
    assert spans == [
        ("chat claude-sonnet-4-5", "Client", "node-app", "node-genai", "Unset", "", 1, "nodejs"),
        ("execute_tool weather", "Internal", "node-app", "node-genai", "Error", "upstream 503", 1, "nodejs"),
        ("invoke_agent planner", "Internal", "node-app", "node-genai", "Unset", "", 0, "nodejs"),
    ]
    calls = running_collector.query(
        "SELECT Operation, Provider, Model, InputTokens, OutputTokens, CacheWriteTokens, FinishReasons,"
        " SpanAttributes['gen_ai.request.temperature'] FROM genai_calls"
        " LEFT JOIN spans USING (TraceId, SpanId) WHERE TraceId = {t:String} AND Operation = 'chat'",
        {"t": trace_id})
    assert calls == [("chat", "anthropic", "claude-sonnet-4-5-20250929", 321, 54, 100, ["end_turn"], "0.5")]
