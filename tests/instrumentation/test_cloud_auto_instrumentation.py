"""Zero-code path for Gemini and Bedrock: the entry points load under `opentelemetry-instrument` (its own
`run()`, as the console script calls it), each can be turned off by name or by the kill switch, and next to
OpenLLMetry's Bedrock instrumentor ours steps aside so each call is counted once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

from fake_cloud import FakeCloudServer

APP = Path(__file__).parent / "apps" / "cloud_app.py"
# opentelemetry-instrument's console script, run with this interpreter whichever venv holds the script.
AUTO_INSTRUMENT = ("import sys; from opentelemetry.instrumentation.auto_instrumentation import run; "
                   "sys.argv[0] = 'opentelemetry-instrument'; sys.exit(run())")
GEMINI_SPANS = {"generate_content gemini-2.5-flash": 2, "embeddings gemini-embedding-001": 1}
BEDROCK_SPANS = {"chat amazon.nova-pro-v1:0": 2, "chat anthropic.claude-3-5-haiku-20241022-v1:0": 1}
BEDROCK_INPUT = 12 + 1000 + 200  # uncached + cache read + cache write, as the fake answers
# OpenLLMetry's Bedrock instrumentor registers the entry point `boto3`; the other names keep this
# environment's OpenAI/Anthropic instrumentors out of the way.
OTHERS_OFF = "openai,anthropic,boto3,botocore"


def _installed(dist: str) -> bool:
    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeCloudServer]:
    with FakeCloudServer() as server:
        yield server


def _run(cloud: FakeCloudServer, **env: str) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The app under opentelemetry-instrument; its GenAI spans by name, and stderr."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SPANHOUSE_", "OTEL_"))}
    full_env.update({"FAKE_CLOUD_URL": cloud.url, "OTEL_TRACES_EXPORTER": "console",
                     "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", **env})
    result = subprocess.run([sys.executable, "-c", AUTO_INSTRUMENT, sys.executable, str(APP)], env=full_env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "app done" in result.stdout, result.stderr
    decoder, spans, index = json.JSONDecoder(), {}, 0
    while (start := result.stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(result.stdout, start)
        if "gen_ai.operation.name" in span.get("attributes", {}):
            spans.setdefault(span["name"], []).append(span)
    return spans, result.stderr


def _counts(spans: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {name: len(found) for name, found in spans.items()}


def test_both_load_with_no_code_change(cloud: FakeCloudServer) -> None:
    spans, stderr = _run(cloud, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=OTHERS_OFF)
    assert _counts(spans) == {**GEMINI_SPANS, **BEDROCK_SPANS}
    for span in spans["chat amazon.nova-pro-v1:0"]:
        assert span["attributes"]["gen_ai.provider.name"] == "aws.bedrock"
        assert span["attributes"]["gen_ai.usage.input_tokens"] == BEDROCK_INPUT
    for span in spans["generate_content gemini-2.5-flash"]:
        assert span["attributes"]["gen_ai.provider.name"] == "gcp.gemini"
        assert span["attributes"]["gen_ai.usage.reasoning.output_tokens"] == 30
    assert "spanhouse is not tracing" not in stderr


@pytest.mark.parametrize(("name", "left"), [("spanhouse_google_genai", BEDROCK_SPANS),
                                            ("spanhouse_bedrock", GEMINI_SPANS)])
def test_each_is_disabled_by_its_entry_point_name(cloud: FakeCloudServer, name: str, left: dict[str,
                                                                                                int]) -> None:
    spans, _ = _run(cloud, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=f"{OTHERS_OFF},{name}")
    assert _counts(spans) == left


@pytest.mark.parametrize("switch", [{"SPANHOUSE_INSTRUMENTATION_ENABLED": "false"},
                                    {"OTEL_SDK_DISABLED": "true"}])
def test_kill_switch_turns_both_off(cloud: FakeCloudServer, switch: dict[str, str]) -> None:
    spans, _ = _run(cloud, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=OTHERS_OFF, **switch)
    assert spans == {}


@pytest.mark.skipif(not _installed("opentelemetry-instrumentation-bedrock"),
                    reason="OpenLLMetry's Bedrock instrumentor is not installed")
def test_beside_openllmetry_bedrock_ours_steps_aside_and_each_call_counts_once(
        cloud: FakeCloudServer) -> None:
    spans, stderr = _run(cloud, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,anthropic,botocore")
    bedrock = [s for found in spans.values() for s in found
               if s["attributes"].get("gen_ai.provider.name") == "aws.bedrock"]
    assert len(bedrock) == sum(BEDROCK_SPANS.values())  # theirs, one per call
    (line,) = [line for line in stderr.splitlines() if "spanhouse is not tracing botocore" in line]
    assert "opentelemetry-instrumentation-bedrock" in line
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=boto3" in line
    # Gemini is still ours.
    assert _counts({k: v for k, v in spans.items() if k in GEMINI_SPANS}) == GEMINI_SPANS


def test_without_the_libraries_nothing_is_imported_or_said(tmp_path: Path) -> None:
    from site_view import SiteView

    # botocore and boto3 gone entirely; google-genai gone by its metadata (its module lives in the `google`
    # namespace package, shared with others), which is how the instrumentor decides.
    view = SiteView(tmp_path, hide_dists=("botocore", "boto3", "s3transfer", "google-genai",
                                          "opentelemetry-instrumentation-bedrock"),
                    hide_modules=("botocore", "boto3", "s3transfer"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPANHOUSE_", "OTEL_"))}
    result = view.run("-c", (
        "import logging, sys; logging.basicConfig(level=logging.INFO)\n"
        "from spanhouse.instrumentation.bedrock import BedrockInstrumentor\n"
        "from spanhouse.instrumentation.google_genai import GoogleGenAIInstrumentor\n"
        "BedrockInstrumentor().instrument(); GoogleGenAIInstrumentor().instrument()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('botocore', 'boto3') or"
        " m.startswith('google.genai')))"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert result.stderr == ""


def test_calls_land_in_the_collector_counted_and_priced(cloud: FakeCloudServer, running_collector: Any) -> None:
    _run(cloud, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=OTHERS_OFF, OTEL_TRACES_EXPORTER="otlp_proto_grpc",
         OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_INSECURE="true",
         OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{running_collector.grpc_endpoint}")
    rows = running_collector.query(
        "SELECT Operation, Provider, RequestModel, InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens,"
        " ReasoningTokens, CostTotal IS NOT NULL FROM genai_calls ORDER BY Provider, RequestModel, Operation")
    assert len(rows) == sum(GEMINI_SPANS.values()) + sum(BEDROCK_SPANS.values())  # nothing lost or doubled
    by_model: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_model.setdefault(row[2], []).append(row)
    for row in by_model["gemini-2.5-flash"]:
        # Thinking tokens are output, and reasoning on their own; the cached ones are inside input.
        assert row[:2] == ("generate_content", "gcp.gemini")
        assert tuple(row[3:6]) == (120, 38, 100) and row[7] == 30
        assert row[8]  # priced from the price table
    for row in by_model["amazon.nova-pro-v1:0"]:
        assert row[:2] == ("chat", "aws.bedrock")
        assert tuple(row[3:7]) == (BEDROCK_INPUT, 9, 1000, 200)
        assert row[8]
