"""Shared parts of the web UI tests: the real browser (Debian's chromium through Playwright), GenAI traces sent
through the OpenTelemetry SDK's gRPC exporter, and the CLI's own answers to compare the pages with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector_process import clean_env

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
XSS_NAME = "<img src=x onerror=window.__xss=1>"
XSS_TEXT = "</script><script>window.__xss=2</script><b onmouseover=window.__xss=3>bold</b>"


def browser() -> Iterator[Any]:
    """One headless chromium for a test module. Without it: skipped, except under CI=true, where it fails."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: install it (apt-get install -y chromium); .ci/run does")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser_: Any, *, width: int = 1280, height: int = 860, scheme: str = "light") -> Any:
    """A page in a fresh context, failing the test on any script error the page raises."""
    context = browser_.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def send_traces(grpc_endpoint: str, key: str | None, build: Callable[[Any], None], service: str) -> None:
    """Spans made by `build(tracer)`, exported by the SDK's OTLP/gRPC exporter with the tenant's key."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    headers = {"authorization": f"Bearer {key}"} if key else None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"http://{grpc_endpoint}", insecure=True, headers=headers, timeout=30)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        build(provider.get_tracer("tests.ui"))
        assert provider.force_flush(60_000), "the exporter did not flush"
    finally:
        provider.shutdown()


def agent_turn(tracer: Any, *, name: str, model: str, input_tokens: int, output_tokens: int, cached: int = 0,
               tools: tuple[str, ...] = (), error: bool = False, conversation: str = "", duration_ms: int = 400,
               messages: tuple[str, str] | None = None, ago_s: float = 60.0) -> str:
    """One agent span with a chat call (and tools) under it; returns the trace id (hex)."""
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    start = time.time_ns() - int(ago_s * 1e9)
    agent = tracer.start_span(name, kind=SpanKind.INTERNAL, start_time=start)
    agent.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                          **({"gen_ai.conversation.id": conversation} if conversation else {})})
    with trace.use_span(agent, end_on_exit=False):
        chat = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, start_time=start + 1_000_000)
        question, answer = messages or ("What is the weather?", "Sunny.")
        chat.set_attributes({
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
            "gen_ai.response.model": model, "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens, "gen_ai.usage.cache_read.input_tokens": cached,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                                   "parts": [{"type": "text", "content": answer}]}]),
            **({"gen_ai.conversation.id": conversation} if conversation else {}),
        })
        if error:
            chat.set_attribute("error.type", "429")
            chat.set_status(Status(StatusCode.ERROR, "rate limited"))
        end = start + duration_ms * 1_000_000
        chat.end(end_time=end - 2_000_000)
        t = start + 2_000_000
        for tool in tools:
            span = tracer.start_span(f"execute_tool {tool}", start_time=t)
            span.set_attributes({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool})
            span.end(end_time=t + 1_000_000)
            t += 1_000_000
    agent.end(end_time=end)
    return format(agent.get_span_context().trace_id, "032x")


def cli_json(*args: str, endpoint: str, key: str | None = None) -> Any:
    """`spanhouse ARGS --format json` against the collector's query endpoint, parsed."""
    env = clean_env(**({"SPANHOUSE_API_KEY": key} if key else {}))
    result = subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args, "--query-endpoint", endpoint,
                             "--quiet", "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cli_text(*args: str, endpoint: str, key: str | None = None) -> str:
    env = clean_env(**({"SPANHOUSE_API_KEY": key} if key else {}))
    result = subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args, "--query-endpoint", endpoint,
                             "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout
