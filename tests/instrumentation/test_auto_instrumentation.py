"""Zero-code path: `opentelemetry-instrument python app.py` with no tracing code in the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


from fake_providers import ANTHROPIC_USAGE, OPENAI_USAGE

APP = Path(__file__).parent / "apps" / "genai_app.py"
EXPECTED_SPANS = {"chat gpt-4o": 2, "embeddings text-embedding-3-small": 1, "chat claude-x": 2, "chat gpt-4.1": 1,
                  "chat error-429": 1}
SERVICE = "genai-e2e-app"


def _run_app(fake_server: Any, **env: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("opentelemetry-instrument", path=os.path.dirname(sys.executable))
    assert command, "opentelemetry-instrument (a dependency of spanhouse) is missing from this environment"
    full_env = {
        **os.environ,
        "OPENAI_BASE_URL": fake_server.openai_base_url, "OPENAI_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake_server.anthropic_base_url, "ANTHROPIC_API_KEY": "test-key",
        # Only our instrumentors: the other OpenAI and Anthropic ones (test and bench extras) would double spans;
        # the Anthropic SDK's own spans would too.
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic",
        "ANTHROPIC_OPEN_TELEMETRY": "false",
        "OTEL_SERVICE_NAME": SERVICE,
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
        **env,
    }
    result = subprocess.run([command, sys.executable, str(APP)], env=full_env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "app done" in result.stdout
    return result


def _console_spans(stdout: str) -> list[dict[str, Any]]:
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def test_console_exporter_shows_every_call(fake_server: Any) -> None:
    result = _run_app(fake_server, OTEL_TRACES_EXPORTER="console")
    spans = [s for s in _console_spans(result.stdout) if "gen_ai.operation.name" in s.get("attributes", {})]
    names: dict[str, int] = {}
    for span in spans:
        names[span["name"]] = names.get(span["name"], 0) + 1
        assert span["kind"] == "SpanKind.CLIENT"
    assert names == EXPECTED_SPANS


def test_spans_land_in_the_collector(fake_server: Any, running_collector: Any) -> None:
    _run_app(fake_server, OTEL_TRACES_EXPORTER="otlp_proto_grpc", OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
             OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{running_collector.grpc_endpoint}",
             OTEL_EXPORTER_OTLP_INSECURE="true")
    rows = running_collector.query(
        f"SELECT SpanName, SpanAttributes['gen_ai.provider.name'] FROM spans WHERE ServiceName = '{SERVICE}'")
    names: dict[str, int] = {}
    for name, _provider in rows:
        names[name] = names.get(name, 0) + 1
    assert {n: c for n, c in names.items() if n in EXPECTED_SPANS} == EXPECTED_SPANS

    calls = running_collector.query(
        "SELECT Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens, CacheReadTokens,"
        " CacheWriteTokens FROM genai_calls ORDER BY Provider, RequestModel, Operation")
    assert len(calls) == sum(EXPECTED_SPANS.values())  # nothing lost, nothing doubled
    by_model: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in calls:
        by_model.setdefault((row[1], row[2]), []).append(row)
    anthropic_input = (ANTHROPIC_USAGE["input_tokens"] + ANTHROPIC_USAGE["cache_read_input_tokens"]
                       + ANTHROPIC_USAGE["cache_creation_input_tokens"])
    for row in by_model[("anthropic", "claude-x")]:
        assert row[0] == "chat" and row[3] == "claude-x-2025-01-01"
        assert tuple(row[4:8]) == (anthropic_input, ANTHROPIC_USAGE["output_tokens"],
                                   ANTHROPIC_USAGE["cache_read_input_tokens"],
                                   ANTHROPIC_USAGE["cache_creation_input_tokens"])
    for row in by_model[("openai", "gpt-4o")]:
        assert tuple(row[4:7]) == (OPENAI_USAGE["prompt_tokens"], OPENAI_USAGE["completion_tokens"], 100)
    (embedding,) = by_model[("openai", "text-embedding-3-small")]
    assert embedding[0] == "embeddings" and embedding[4] == 5
