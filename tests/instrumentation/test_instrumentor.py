"""Instrumentor lifecycle: registration, exact restore, kill switch, never breaking the call."""

from __future__ import annotations

import dataclasses
import json
import logging
from importlib.metadata import entry_points
from typing import Any

import anthropic
import openai
import pytest
from anthropic.resources.messages import AsyncMessages, Messages
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.embeddings import AsyncEmbeddings, Embeddings
from openai.resources.responses import AsyncResponses, Responses

from spanhouse.instrumentation import _config, _content, _telemetry
from spanhouse.instrumentation import _semconv as sc
from spanhouse.instrumentation.anthropic import AnthropicInstrumentor
from spanhouse.instrumentation.openai import OpenAIInstrumentor
from spanhouse.instrumentation.openai import patch as openai_patch

from instr_harness import make_telemetry, set_env

PATCHED = [(Completions, "create"), (AsyncCompletions, "create"), (Responses, "create"),
           (AsyncResponses, "create"), (Embeddings, "create"), (AsyncEmbeddings, "create"),
           (Messages, "create"), (AsyncMessages, "create"), (Messages, "stream"), (AsyncMessages, "stream")]


def _originals() -> list[Any]:
    return [vars(owner)[name] for owner, name in PATCHED]


def test_registered_as_opentelemetry_instrumentors() -> None:
    ours = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name.startswith("spanhouse_")]
    found = {ep.name: ep.load() for ep in ours}
    assert found["spanhouse_openai"] is OpenAIInstrumentor
    assert found["spanhouse_anthropic"] is AnthropicInstrumentor


def test_declares_supported_client_versions() -> None:
    assert OpenAIInstrumentor().instrumentation_dependencies() == ("openai >= 1.0",)
    assert AnthropicInstrumentor().instrumentation_dependencies()[0].startswith("anthropic >=")


def test_uninstrument_restores_the_original_functions() -> None:
    before = _originals()
    tel = make_telemetry()
    OpenAIInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    AnthropicInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    patched = _originals()
    assert all(a is not b for a, b in zip(before, patched, strict=True))
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    after = _originals()
    assert all(a is b for a, b in zip(before, after, strict=True))


def test_no_spans_after_uninstrument(openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic) -> None:
    tel = make_telemetry()
    OpenAIInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    AnthropicInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    OpenAIInstrumentor().uninstrument()
    AnthropicInstrumentor().uninstrument()
    result = openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with anthropic_client.messages.stream(model="claude-x", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) \
            as stream:
        assert type(stream).__module__.startswith("anthropic")  # the SDK's own object, no proxy left around it
        stream.until_done()
    assert result.choices[0].message.content == "Hello there!"
    assert [s.name for s in tel.spans()] == ["chat gpt-4o"]


@pytest.mark.parametrize("env", [
    {_config.ENV_ENABLED: "false"},
    {_config.ENV_SDK_DISABLED: "true"},
])
def test_kill_switch_patches_nothing(env: dict[str, str], openai_client: openai.OpenAI) -> None:
    set_env(**env)
    before = _originals()
    tel = make_telemetry()
    OpenAIInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    AnthropicInstrumentor().instrument(tracer_provider=tel.tracer_provider)
    try:
        assert _originals() == before
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert tel.spans() == []
    finally:
        OpenAIInstrumentor().uninstrument()
        AnthropicInstrumentor().uninstrument()
    assert _originals() == before


class _BrokenAccumulator:
    def __init__(self, kwargs: Any) -> None:
        pass

    def observe(self, item: Any) -> None:
        raise RuntimeError("extractor bug")

    def attributes(self) -> dict[str, Any]:
        return {}

    def output_messages(self) -> None:
        return None


def _broken(*args: Any) -> Any:
    raise RuntimeError("extractor bug")


@pytest.mark.parametrize(("part", "broken", "stream", "spans"), [
    ("request_attributes", _broken, False, 0),  # no span can start: the call runs untraced
    ("response_attributes", _broken, False, 3),  # spans still end, without response attributes
    ("stream_accumulator", _BrokenAccumulator, True, 3),  # every chunk fails to be read; the loop goes on
])
def test_instrumentation_bug_never_breaks_the_call(telemetry: Any, openai_client: openai.OpenAI,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture, part: str, broken: Any,
                                                   stream: bool, spans: int) -> None:
    monkeypatch.setattr(_telemetry, "_logged", set())
    # Operation is frozen: swap in a copy with the broken part.
    monkeypatch.setattr(openai_patch, "CHAT", dataclasses.replace(openai_patch.CHAT, **{part: broken}))
    # Re-instrument so the wrapper is built from the broken operation.
    OpenAIInstrumentor().uninstrument()
    OpenAIInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        for _ in range(3):
            result = openai_client.chat.completions.create(model="gpt-4o", stream=stream,
                                                           messages=[{"role": "user", "content": "hi"}])
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
            else:
                text = result.choices[0].message.content
            assert text == "Hello there!"
    assert len([r for r in caplog.records if "extractor bug" in r.getMessage()]) == 1
    assert len(telemetry.spans()) == spans


@pytest.mark.parametrize(("cap", "limit"), [("64", 64), (None, 4096)], ids=["configured", "default-4KiB"])
def test_captured_content_is_capped_with_marker(telemetry: Any, openai_client: openai.OpenAI, cap: str | None,
                                                limit: int) -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: "true", _config.ENV_CAPTURE_MAX_BYTES: cap})
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "é" * 5000}])
    value = telemetry.span().attributes[sc.INPUT_MESSAGES]
    assert limit - 2 <= len(value.encode()) <= limit  # a 2-byte character may not fit whole
    assert value.endswith(_content.TRUNCATION_MARKER)


@pytest.mark.parametrize("raw", ["lots", "-5", "0", "1.5"])
def test_bad_capture_cap_warns_and_keeps_the_default(telemetry: Any, openai_client: openai.OpenAI, raw: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_config, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        set_env(**{_config.ENV_CAPTURE_CONTENT: "true", _config.ENV_CAPTURE_MAX_BYTES: raw})
        _config.refresh()  # read again (as every instrument() does): still one warning
    warnings = [r.getMessage() for r in caplog.records if _config.ENV_CAPTURE_MAX_BYTES in r.getMessage()]
    assert len(warnings) == 1 and repr(raw) in warnings[0]
    assert _config.SETTINGS.capture_max_bytes == _config.DEFAULT_CAPTURE_MAX_BYTES
    openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * 9000}])
    assert len(telemetry.span().attributes[sc.INPUT_MESSAGES]) == _config.DEFAULT_CAPTURE_MAX_BYTES


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("TRUE", True), ("span_only", True), ("false", False), ("", False), ("nonsense", False),
])
def test_capture_flag_values(raw: str, expected: bool) -> None:
    set_env(**{_config.ENV_CAPTURE_CONTENT: raw})
    assert _config.SETTINGS.capture_content is expected


@pytest.mark.parametrize(("text", "limit"), [("abc", 10), ("x" * 100, 20), ("日本語" * 20, 17), ("x" * 100, 5),
                                             ("日本語", 4)])
def test_cap_keeps_valid_utf8_within_limit(text: str, limit: int) -> None:
    capped = _content.cap(text, limit)
    assert len(capped.encode()) <= limit
    if limit > len(_content.TRUNCATION_MARKER):
        assert capped == text or capped.endswith(_content.TRUNCATION_MARKER)
    else:  # too small for the marker: a plain prefix
        assert text.startswith(capped)


def test_content_not_captured_by_default(telemetry: Any, anthropic_client: anthropic.Anthropic) -> None:
    anthropic_client.messages.create(model="claude-x", max_tokens=10, system="secret",
                                     messages=[{"role": "user", "content": "secret"}])
    attrs = telemetry.span().attributes
    assert not any(key in attrs for key in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS))
    assert "secret" not in json.dumps(dict(attrs))
