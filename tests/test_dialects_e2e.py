"""Spans from real third-party instrumentation packages land in genai_calls with the right typed columns.

Each package from PyPI instruments the real `openai` / `anthropic` SDK in an
app of its own (tests/dialects/dialect_app.py), which calls a local server that
answers like the provider and exports OTLP/gRPC to one real collector. openlit
cannot share this environment's SDK versions, so its app runs in a separate
environment built from tests/dialects/openlit-requirements.txt (kept between
runs in a cache directory).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "instrumentation"))

from collector_harness import RunningCollector, start_collector
from fake_providers import ANTHROPIC_USAGE, OPENAI_USAGE, FakeProviderServer

APPS = Path(__file__).parent / "dialects"
APP = APPS / "dialect_app.py"
OPENLIT_REQUIREMENTS = APPS / "openlit-requirements.txt"
OPENLIT_PACKAGE = "openlit>=1.45,<2"
APP_TIMEOUT_S = 240

OPENAI_MODEL, ANTHROPIC_MODEL = "gpt-4.1", "claude-haiku-4-5"
OPENAI_CACHED = OPENAI_USAGE["prompt_tokens_details"]["cached_tokens"]
OPENAI_REASONING = OPENAI_USAGE["completion_tokens_details"]["reasoning_tokens"]
# The conventions' input count includes cached tokens; Anthropic's own input_tokens leave them out.
ANTHROPIC_INPUT = (ANTHROPIC_USAGE["input_tokens"] + ANTHROPIC_USAGE["cache_read_input_tokens"]
                   + ANTHROPIC_USAGE["cache_creation_input_tokens"])

# Per app: one expected genai_calls row per call, as (Operation, Provider, RequestModel, ResponseModel,
# InputTokens, OutputTokens, CacheReadTokens, CacheWriteTokens, ReasoningTokens). None where the package
# does not report that count.
OPENAI_ROW = ("chat", "openai", OPENAI_MODEL, f"{OPENAI_MODEL}-2025-01-01", OPENAI_USAGE["prompt_tokens"],
              OPENAI_USAGE["completion_tokens"])
ANTHROPIC_ROW = ("chat", "anthropic", ANTHROPIC_MODEL, f"{ANTHROPIC_MODEL}-2025-01-01", ANTHROPIC_INPUT,
                 ANTHROPIC_USAGE["output_tokens"], ANTHROPIC_USAGE["cache_read_input_tokens"],
                 ANTHROPIC_USAGE["cache_creation_input_tokens"], None)
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "openai-v2": [(*OPENAI_ROW, None, None, None)],
    "openllmetry-openai": [(*OPENAI_ROW, OPENAI_CACHED, None, OPENAI_REASONING)],
    "openllmetry-anthropic": [ANTHROPIC_ROW],
    "openinference-openai": [(*OPENAI_ROW, OPENAI_CACHED, None, OPENAI_REASONING)],
    "anthropic-sdk": [ANTHROPIC_ROW],
    # OpenLIT reports a cache write count of 0 for OpenAI, which has none.
    "openlit": [ANTHROPIC_ROW, (*OPENAI_ROW, OPENAI_CACHED, 0, None)],
}


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spanhouse-tests"


def openlit_python() -> Path:
    """Python of an environment with openlit and the SDK versions it accepts; built once per requirements."""
    recipe = OPENLIT_REQUIREMENTS.read_bytes() + OPENLIT_PACKAGE.encode() + sys.version.encode()
    target = _cache_root() / f"openlit-{hashlib.sha256(recipe).hexdigest()[:16]}"
    python = target / "bin" / "python"
    if python.exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed into place, so concurrent test runs never use a half-built environment.
    building = Path(tempfile.mkdtemp(prefix="openlit-building-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True, timeout=120)
        pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for extra in (["-r", str(OPENLIT_REQUIREMENTS)], ["--no-deps", OPENLIT_PACKAGE]):
            result = subprocess.run(pip + extra, capture_output=True, text=True, timeout=600, check=False)
            assert result.returncode == 0, f"building the openlit environment failed:\n{result.stderr[-3000:]}"
        # Only `bin/python -m ...` is used: the interpreter finds its environment from where it lies,
        # while the scripts' shebangs would still name the building directory.
        try:
            building.rename(target)
        except OSError:  # another run got there first
            pass
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return python


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("dialects") / "store")
    try:
        yield running
    finally:
        running.collector.stop()


@pytest.fixture(scope="module")
def app_runs(collector: RunningCollector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every dialect app run at once (they spend most of their time importing), with its outcome."""
    pricing = tmp_path_factory.mktemp("openlit") / "pricing.json"
    pricing.write_text("{}")
    with FakeProviderServer() as server:
        base_env = {
            **os.environ,
            "OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": server.anthropic_base_url, "ANTHROPIC_API_KEY": "test-key",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.grpc_endpoint}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
            "OPENLIT_PRICING_JSON": str(pricing),
        }
        started: dict[str, subprocess.Popen[str]] = {}
        for dialect in EXPECTED:
            if dialect == "openlit":
                continue
            env = dict(base_env)
            if dialect != "anthropic-sdk":  # the SDK's own spans would double the instrumentor's
                env["ANTHROPIC_OPEN_TELEMETRY"] = "false"
            started[dialect] = subprocess.Popen([sys.executable, str(APP), dialect], env=env, text=True,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Building the openlit environment (first run only) overlaps the other apps.
        started["openlit"] = subprocess.Popen(
            [str(openlit_python()), str(APP), "openlit"], env={**base_env, "ANTHROPIC_OPEN_TELEMETRY": "false"},
            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + APP_TIMEOUT_S
        outcomes: dict[str, Any] = {}
        for dialect, process in started.items():
            try:
                stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            outcomes[dialect] = (process.returncode, stdout, stderr)
        yield outcomes


@pytest.mark.parametrize("dialect", list(EXPECTED))
def test_instrumentor_spans_become_typed_genai_calls(dialect: str, app_runs: dict[str, Any],
                                                     collector: RunningCollector) -> None:
    returncode, stdout, stderr = app_runs[dialect]
    assert returncode == 0 and "app done" in stdout, f"{dialect} app failed:\n{stderr[-3000:]}"
    rows = collector.query(
        "SELECT Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens, CacheReadTokens,"
        " CacheWriteTokens, ReasoningTokens, CostTotal FROM genai_calls WHERE ServiceName = {service:String}"
        " ORDER BY Provider", {"service": f"dialect-{dialect}"})
    assert [tuple(r[:-1]) for r in rows] == EXPECTED[dialect]  # every call once, nothing doubled
    for row in rows:
        assert row[-1] is not None, f"{row[1]} {row[2]} was not priced"
        assert row[-1] == pytest.approx(listed_cost(collector, *row[1:3], *row[4:8]), rel=1e-9)


def listed_cost(collector: RunningCollector, provider: str, model: str, input_tokens: int, output_tokens: int,
                cache_read: int | None, cache_write: int | None) -> float:
    """USD for these tokens at the rates the price table loaded into ClickHouse lists for the model today."""
    ((input_rate, output_rate, read_rate, write_rate),) = collector.query(
        "SELECT InputPerMTok, OutputPerMTok, CacheReadPerMTok, CacheWritePerMTok FROM model_prices"
        " WHERE Provider = {provider:String} AND Model = {model:String} AND EffectiveFrom <= now()"
        " ORDER BY EffectiveFrom DESC LIMIT 1", {"provider": provider, "model": model})
    read, write = cache_read or 0, cache_write or 0
    # Input counts include cached tokens, which are billed once, at their own rates.
    return ((input_tokens - read - write) * input_rate + output_tokens * output_rate + read * read_rate
            + write * write_rate) / 1e6
