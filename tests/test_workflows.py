"""docs/workflows.md end to end, as a user runs it: a production collector takes an agent's traffic from the
real OpenTelemetry SDK (a stable version and a slower canary); `spanhouse traces` finds the expensive failing
trace, `spanhouse export` saves it as dataset records and as OTLP/JSON, `spanhouse replay` sends it to a
staging collector (its own process and store), and `spanhouse compare` judges the canary. Every command is the
real CLI in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_harness import RunningCollector, start_collector
from collector_process import CollectorProcess, clean_env
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

TURNS = 120  # per version
MS = 1_000_000
BAD_PROMPT = "My order 4417 never arrived and the refund failed twice"


def send_turns(running: RunningCollector, version: str) -> None:
    """TURNS agent turns of support-bot at `version`: invoke_agent -> chat; the canary (1.1) answers 40%
    slower. Turn 7 of the stable version is the one a user complains about: a huge prompt, a failed call."""
    resource = Resource.create({"service.name": "support-bot", "service.version": version})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("workflow.tests")
    t0 = time.time_ns() - 20 * 60 * 1000 * MS
    for i in range(TURNS):
        start = t0 + i * 50 * MS
        chat_ms = (300 + (i * 37) % 200) * (1.4 if version == "1.1" else 1.0)
        bad = version == "1.0" and i == 7
        agent = tracer.start_span("invoke_agent support", start_time=start, attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
        prompt = BAD_PROMPT if bad else f"question {i}"
        chat = tracer.start_span("chat gpt-4o", context=set_span_in_context(agent), kind=SpanKind.CLIENT,
                                 start_time=start + MS, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.request.temperature": 0.2,
            "gen_ai.usage.input_tokens": 400_000 if bad else 800, "gen_ai.usage.output_tokens": 120,
            "gen_ai.input.messages": json.dumps([{"role": "user",
                                                  "parts": [{"type": "text", "content": prompt}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                                   "parts": [{"type": "text", "content": f"answer {i}"}]}])})
        if bad:
            chat.set_attribute("error.type", "openai.APITimeoutError")
            chat.set_status(Status(StatusCode.ERROR))
        chat.end(end_time=start + MS + int(chat_ms * MS))
        agent.end(end_time=start + int(chat_ms * MS) + 3 * MS)
    assert provider.force_flush(30_000)
    provider.shutdown()


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = start_collector(tmp_path_factory.mktemp("production") / "store")
    try:
        send_turns(collector, "1.0")
        send_turns(collector, "1.1")
        collector.flush()
        yield collector
    finally:
        collector.collector.stop()


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    process = CollectorProcess(tmp_path_factory.mktemp("staging") / "store", query_endpoint="127.0.0.1:0")
    try:
        yield process
    finally:
        process.stop()


def spanhouse(*args: str, query_endpoint: str = "", store: str = "") -> str:
    """`spanhouse ARGS` in its own process, as a user types it; its standard output."""
    extra = [*(["--query-endpoint", query_endpoint] if query_endpoint else []),
             *(["--store", store] if store else [])]
    result = subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args, *extra],
                            capture_output=True, text=True, env=clean_env(), timeout=300, check=False)
    assert result.returncode == 0, f"spanhouse {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_find_export_replay_and_compare(production: RunningCollector, staging: CollectorProcess,
                                        tmp_path: Path) -> None:
    read = {"query_endpoint": production.query_endpoint, "store": production.store_url}

    # 1. Find the expensive failing trace.
    found = json.loads(spanhouse("traces", "--errors", "--min-cost", "0.5", "--since", "1h",
                                 "--format", "json", "--quiet", **read))
    assert len(found) == 1
    trace_id, cost = found[0]["trace_id"], found[0]["cost_usd"]
    assert found[0]["errors"] == 1 and cost > 0.5

    # 2. Save it: a dataset record of its call, and the whole trace as OTLP/JSON.
    dataset, otlp = tmp_path / "bug-4417.jsonl", tmp_path / "bug-4417.otlp.jsonl"
    spanhouse("export", "--trace-id", trace_id, "--output", str(dataset), "--quiet", **read)
    records = [json.loads(line) for line in dataset.read_text().splitlines()]
    (record,) = [r for r in records if r["operation"] == "chat"]  # and the agent span's record
    assert BAD_PROMPT in json.dumps(record)
    assert record["trace_id"] == trace_id and record["cost_usd"]["total"] == pytest.approx(cost)
    spanhouse("export", "--trace-id", trace_id, "--format", "otlp-json", "--output", str(otlp), "--quiet",
              **read)

    # 3. Replay it to staging, now, with fresh ids.
    before = time.time_ns()
    spanhouse("replay", str(otlp), "--endpoint", staging.grpc_endpoint, "--shift-to-now", "--new-ids",
              "--quiet")
    staged = {"query_endpoint": staging.query_endpoint, "store": staging.store_url}
    spanhouse("query", "SELECT 1", **staged)  # the staging collector answers
    urlopen_flush(staging.query_endpoint)
    replayed = json.loads(spanhouse("traces", "--since", "1h", "--format", "json", "--quiet", **staged))
    assert len(replayed) == 1 and replayed[0]["trace_id"] != trace_id
    assert replayed[0]["cost_usd"] == pytest.approx(cost) and replayed[0]["errors"] == 1
    tree = json.loads(spanhouse("query", "--format", "json",
                                "SELECT SpanName, ParentSpanId = '' AS root, "
                                "toUnixTimestamp64Nano(Timestamp) AS t FROM spans ORDER BY SpanName",
                                "--quiet", **staged))
    assert [(r["SpanName"], r["root"]) for r in tree] == [("chat gpt-4o", 0), ("invoke_agent support", 1)]
    assert all(int(r["t"]) >= before - 10_000 * MS for r in tree)  # shifted to now

    # 4. Judge the canary against the stable version on production.
    report = json.loads(spanhouse("compare", "--by", "service.version", "1.0", "1.1", "--since", "1h",
                                  "--operation", "chat", "--format", "json", "--quiet", **read))
    assert report["groups"]["a"]["calls"] == TURNS and report["groups"]["b"]["calls"] == TURNS
    verdicts = {m["metric"]: m.get("verdict") for m in report["metrics"]}
    assert verdicts["latency p50"] == "worse", report["metrics"]
    assert report["verdict"] == "worse"


def urlopen_flush(endpoint: str) -> None:
    """POST /flush: everything the staging collector took is written before it is read."""
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"http://{endpoint}/flush", data=b"", method="POST"),
                                timeout=120) as response:
        assert response.status == 200

