"""Two instrumentors tracing one call, both on, into a real collector: genai_calls and the rollups count it once.

Ours and one other GenAI instrumentor of the same library run together under `opentelemetry-instrument`
(SPANHOUSE_INSTRUMENTATION_STEP_ASIDE=false keeps both on, as an application that calls both by hand would),
call the local fake provider once, and export over OTLP/HTTP to a collector on the embedded store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from collector_harness import start_collector
from fake_providers import FakeProviderServer
from test_coexistence import APP, OTHERS, _only, _other_params, views  # noqa: F401 - views is a fixture


def _run_into_collector(view: Any, library: str, fake_server: FakeProviderServer, traces_url: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPANHOUSE_", "OTEL_")) and k != "ANTHROPIC_OPEN_TELEMETRY"}
    env.update({
        "OPENAI_BASE_URL": fake_server.openai_base_url, "OPENAI_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake_server.anthropic_base_url, "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_OPEN_TELEMETRY": "false",
        "OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces_url,
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
        "SPANHOUSE_INSTRUMENTATION_STEP_ASIDE": "false",
    })
    result = view.auto_instrument(APP, library, env=env)
    assert result.returncode == 0 and "app done" in result.stdout, result.stderr


@pytest.mark.parametrize("other", _other_params())
def test_a_call_traced_by_two_instrumentors_is_counted_once(other: str, views: Any,  # noqa: F811
                                                            fake_server: FakeProviderServer, tmp_path: Path) -> None:
    library = OTHERS[other]
    running = start_collector(tmp_path / "store")
    try:
        _run_into_collector(views(_only(other)), library, fake_server, running.collector.http_url)
        with_usage = running.query("SELECT SpanId, DuplicateOf FROM spans WHERE InputTokens IS NOT NULL")
        detail = running.query("SELECT SpanId, ParentSpanId, ScopeName, Provider, Operation, ResponseId, RequestModel, "
                               "ResponseModel, InputTokens, OutputTokens, Timestamp, Duration FROM spans")
        assert len(with_usage) == 2, with_usage  # both instrumentors traced the call...
        assert sorted(bool(d) for _, d in with_usage) == [False, True], detail  # ...one span names the other
        counted = next(span for span, duplicate in with_usage if not duplicate)
        assert running.query("SELECT SpanId FROM genai_calls") == [(counted,)]  # ...and it is counted once
        assert running.query("SELECT sum(Calls) FROM genai_usage_1h") == [(1,)]
    finally:
        running.collector.stop()
