"""Fixtures: a fake provider server, in-memory OpenTelemetry, instrumented SDK clients."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider

from spanhouse.instrumentation import _config
from spanhouse.instrumentation.anthropic import AnthropicInstrumentor
from spanhouse.instrumentation.openai import OpenAIInstrumentor

from fake_providers import FakeProviderServer
from instr_harness import _OUR_ENV, Telemetry, make_telemetry, set_env


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _OUR_ENV}
    set_env(**{name: None for name in _OUR_ENV})
    yield
    set_env(**saved)


@pytest.fixture
def capture_content() -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true"})


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
