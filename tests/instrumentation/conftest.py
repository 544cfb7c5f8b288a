"""Fixtures: a fake provider server, in-memory OpenTelemetry, instrumented SDK clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanhouse.instrumentation import _config
from spanhouse.instrumentation.anthropic import AnthropicInstrumentor
from spanhouse.instrumentation.openai import OpenAIInstrumentor

from fake_providers import FakeProviderServer

_OUR_ENV = (_config.ENV_ENABLED, _config.ENV_SDK_DISABLED, _config.ENV_CAPTURE_CONTENT,
            _config.ENV_CAPTURE_MAX_BYTES, _config.ENV_USER_ID_SALT)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def set_env(**values: str | None) -> None:
    """Set or clear our env vars, then re-read settings as the library would at start-up."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _config.refresh()


@pytest.fixture(autouse=True)
def clean_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _OUR_ENV}
    set_env(**{name: None for name in _OUR_ENV})
    yield
    set_env(**saved)


@pytest.fixture
def capture_content() -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true"})


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


def make_telemetry() -> Telemetry:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Telemetry(exporter, reader, tracer_provider)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Both instrumentors on, exporting to memory; uninstrumented afterwards."""
    tel = make_telemetry()
    meter_provider = MeterProvider(metric_readers=[tel.reader])
    providers = {"tracer_provider": tel.tracer_provider, "meter_provider": meter_provider}
    OpenAIInstrumentor().instrument(**providers)
    AnthropicInstrumentor().instrument(**providers)
    yield tel
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    meter_provider.shutdown()


@pytest.fixture
def openai_client(fake_server: FakeProviderServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_server.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def async_openai_client(fake_server: FakeProviderServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_server.openai_base_url, api_key="test-key", max_retries=0)


@pytest.fixture
def anthropic_client(fake_server: FakeProviderServer) -> anthropic.Anthropic:
    # The SDK's own spans are off here so each test sees exactly our span; coexistence is tested apart.
    return anthropic.Anthropic(base_url=fake_server.anthropic_base_url, api_key="test-key", max_retries=0,
                               open_telemetry=False)


@pytest.fixture
def async_anthropic_client(fake_server: FakeProviderServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake_server.anthropic_base_url, api_key="test-key", max_retries=0,
                                    open_telemetry=False)
