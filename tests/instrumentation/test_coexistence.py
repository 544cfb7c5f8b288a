"""Next to another GenAI instrumentor of the same library, one call is still one span with usage.

The subprocess tests run `opentelemetry-instrument` as a user would, in a throwaway environment that sees
this one's packages with only ours and ONE other instrumentor of the library installed (every vendor's
OpenAI instrumentor registers the entry point name `openai`, so two of theirs cannot be told apart by
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS). Spans go over OTLP/HTTP to a receiver here, which keeps each
span's instrumentation scope, so the test knows whose span it is.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import wrapt
from openai.resources.chat.completions import Completions
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanhouse.instrumentation import _coexist, _config
from spanhouse.instrumentation._patching import Patch
from spanhouse.instrumentation._provider import ProviderInstrumentor
from spanhouse.instrumentation.openai import OpenAIInstrumentor
from spanhouse.instrumentation.openai import patch as openai_patch

from fake_providers import ANTHROPIC_USAGE, OPENAI_USAGE, FakeProviderServer
from instr_harness import make_telemetry, set_env
from site_view import SiteView

APP = Path(__file__).parent / "apps" / "one_call.py"
OURS = {"openai": "spanhouse.instrumentation.openai", "anthropic": "spanhouse.instrumentation.anthropic"}
# Other GenAI instrumentors that trace the same client calls, and the library each traces.
OTHERS = {
    "opentelemetry-instrumentation-genai-openai": "openai",
    "opentelemetry-instrumentation-openai-v2": "openai",
    "opentelemetry-instrumentation-openai": "openai",
    "openinference-instrumentation-openai": "openai",
    "opentelemetry-instrumentation-anthropic": "anthropic",
    # OpenLLMetry's Bedrock instrumentor (entry point `boto3`): hidden here so that ours for botocore does not
    # step aside, and say so, in runs about the other libraries; tested in test_cloud_auto_instrumentation.py.
    "opentelemetry-instrumentation-bedrock": "boto3",
    "opentelemetry-instrumentation-botocore": "botocore",  # the same, for its Bedrock extension
}
# Where each dialect keeps a call's input tokens: a span with any of them is counted downstream.
USAGE_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
# What our spans say for the fake server's answers (Anthropic: cached input counted in).
INPUT_TOKENS = {"openai": OPENAI_USAGE["prompt_tokens"],
                "anthropic": ANTHROPIC_USAGE["input_tokens"] + ANTHROPIC_USAGE["cache_read_input_tokens"]
                + ANTHROPIC_USAGE["cache_creation_input_tokens"]}
STEP_ASIDE_LINE = "spanhouse is not tracing"


def _installed(dist: str) -> bool:
    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


def _other_params(libraries: tuple[str, ...] = ("openai", "anthropic")) -> list[Any]:
    return [pytest.param(dist, marks=pytest.mark.skipif(not _installed(dist), reason=f"{dist} not installed"))
            for dist, library in OTHERS.items() if library in libraries]


# --- an OTLP/HTTP trace receiver that keeps scope names -------------------------------------------

@dataclass(frozen=True)
class ReceivedSpan:
    scope: str
    name: str
    attributes: dict[str, Any]

    def usage(self) -> int | None:
        for key in USAGE_KEYS:
            if key in self.attributes:
                return int(self.attributes[key])
        return None


class _OtlpHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: getattr(a.value, a.value.WhichOneof("value") or "string_value")
                                  for a in span.attributes}
                    self.server.spans.append(  # type: ignore[attr-defined]
                        ReceivedSpan(scope_spans.scope.name, span.name, attributes))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def otlp_receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpHandler)
    server.spans = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Any:
    built: dict[tuple[tuple[str, ...], tuple[str, ...]], SiteView] = {}

    def view(hide_dists: tuple[str, ...] = (), hide_modules: tuple[str, ...] = ()) -> SiteView:
        key = (hide_dists, hide_modules)
        if key not in built:
            built[key] = SiteView(tmp_path_factory.mktemp("site_view"), hide_dists, hide_modules)
        return built[key]

    return view


def _only(dist: str) -> tuple[str, ...]:
    """Hide every other instrumentor of the listed ones, so `dist` is the one beside ours."""
    return tuple(d for d in OTHERS if d != dist)


def _run(view: SiteView, library: str, fake_server: FakeProviderServer, receiver: ThreadingHTTPServer,
         **extra_env: str) -> tuple[list[ReceivedSpan], str]:
    """One call of `library` under opentelemetry-instrument; the spans with usage, and stderr."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPANHOUSE_", "OTEL_")) and k != "ANTHROPIC_OPEN_TELEMETRY"}
    env.update({
        "OPENAI_BASE_URL": fake_server.openai_base_url, "OPENAI_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake_server.anthropic_base_url, "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_OPEN_TELEMETRY": "false",  # the SDK's own spans: counted apart, see test_anthropic.py
        "OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}/v1/traces",
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
        **extra_env,
    })
    receiver.spans.clear()  # type: ignore[attr-defined]
    result = view.auto_instrument(APP, library, env=env)
    assert result.returncode == 0 and "app done" in result.stdout, result.stderr
    # The exporter flushes at exit, before the process ends: every span has arrived by now.
    return [s for s in receiver.spans if s.usage() is not None], result.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("other", _other_params())
def test_ours_steps_aside_for_another_enabled_instrumentor(
        other: str, views: Any, fake_server: FakeProviderServer, otlp_receiver: ThreadingHTTPServer) -> None:
    library = OTHERS[other]
    spans, stderr = _run(views(_only(other)), library, fake_server, otlp_receiver)
    assert len(spans) == 1, spans  # counted once
    assert spans[0].scope != OURS[library]
    assert spans[0].usage() > 0
    lines = [line for line in stderr.splitlines() if f"{STEP_ASIDE_LINE} {library} " in line]
    assert len(lines) == 1, stderr
    assert other in lines[0] and f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={library}" in lines[0]
    assert _config.ENV_STEP_ASIDE in lines[0]


# Disabling by name turns off every instrumentor of that name, whoever made it: one of each library will do.
ONE_PER_LIBRARY = ("opentelemetry-instrumentation-openai-v2", "opentelemetry-instrumentation-anthropic")


@pytest.mark.parametrize("other", [p for p in _other_params() if p.values[0] in ONE_PER_LIBRARY])
def test_disabling_the_other_by_its_entry_point_name_brings_ours_back(
        other: str, views: Any, fake_server: FakeProviderServer, otlp_receiver: ThreadingHTTPServer) -> None:
    library = OTHERS[other]
    spans, stderr = _run(views(_only(other)), library, fake_server, otlp_receiver,
                         OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=f" {library} , something_else")
    assert [s.scope for s in spans] == [OURS[library]]
    assert spans[0].usage() == INPUT_TOKENS[library]
    assert STEP_ASIDE_LINE not in stderr


@pytest.mark.parametrize(("setting", "ours_and_theirs"), [
    pytest.param({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "spanhouse_openai"}, [False], id="ours-disabled-by-name"),
    pytest.param({"SPANHOUSE_INSTRUMENTATION_STEP_ASIDE": "false"}, [False, True], id="step-aside-off-runs-both"),
])
def test_each_setting_gives_the_spans_it_asks_for_and_says_nothing(
        views: Any, fake_server: FakeProviderServer, otlp_receiver: ThreadingHTTPServer,
        setting: dict[str, str], ours_and_theirs: list[bool]) -> None:
    other = "opentelemetry-instrumentation-openai-v2"
    if not _installed(other):
        pytest.skip(f"{other} not installed")
    spans, stderr = _run(views(_only(other)), "openai", fake_server, otlp_receiver, **setting)
    assert sorted(s.scope == OURS["openai"] for s in spans) == ours_and_theirs
    assert STEP_ASIDE_LINE not in stderr


# opentelemetry-instrumentation-genai-openai (openai-v2's successor) needs opentelemetry-util-genai>=1.3b0,
# which openai-v2 2.4b0 cannot import, so the two never share an environment. To test it beside this one:
#   pip install --no-deps --target DIR opentelemetry-instrumentation-genai-openai opentelemetry-util-genai
#   GENAI_OPENAI_TARGET=DIR pytest tests/instrumentation/test_coexistence.py
GENAI_OPENAI_TARGET = os.environ.get("GENAI_OPENAI_TARGET", "")


@pytest.mark.skipif(not GENAI_OPENAI_TARGET, reason="GENAI_OPENAI_TARGET (see the comment above) not set")
def test_beside_genai_openai_installed_apart(views: Any, tmp_path_factory: pytest.TempPathFactory,
                                            fake_server: FakeProviderServer,
                                            otlp_receiver: ThreadingHTTPServer) -> None:
    hide = (*_only("opentelemetry-instrumentation-genai-openai"), "opentelemetry-util-genai")
    view = SiteView(tmp_path_factory.mktemp("site_view"), hide, first=[Path(GENAI_OPENAI_TARGET)])
    spans, stderr = _run(view, "openai", fake_server, otlp_receiver)
    assert len(spans) == 1 and spans[0].scope.startswith("opentelemetry.instrumentation.genai.openai"), spans
    assert "opentelemetry-instrumentation-genai-openai" in stderr
    spans, stderr = _run(view, "openai", fake_server, otlp_receiver,
                         OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai")
    assert [s.scope for s in spans] == [OURS["openai"]]
    spans, stderr = _run(view, "openai", fake_server, otlp_receiver,
                         OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="spanhouse_openai")
    assert len(spans) == 1 and spans[0].scope != OURS["openai"] and STEP_ASIDE_LINE not in stderr


def test_alone_ours_traces_and_says_nothing(views: Any, fake_server: FakeProviderServer,
                                            otlp_receiver: ThreadingHTTPServer) -> None:
    spans, stderr = _run(views(tuple(OTHERS)), "openai", fake_server, otlp_receiver)
    assert [s.scope for s in spans] == [OURS["openai"]]
    assert spans[0].usage() == OPENAI_USAGE["prompt_tokens"]
    assert STEP_ASIDE_LINE not in stderr


# --- an absent library is silent ------------------------------------------------------------------

def test_without_anthropic_installed_nothing_is_said_about_it(views: Any, fake_server: FakeProviderServer,
                                                              otlp_receiver: ThreadingHTTPServer) -> None:
    view = views(tuple(OTHERS) + ("anthropic",), ("anthropic",))
    # By hand, as docs/instrumentation.md shows: BaseInstrumentor used to log an ERROR here.
    by_hand = view.run("-c", "import logging; logging.basicConfig(level=logging.INFO)\n"
                             "from spanhouse.instrumentation.anthropic import AnthropicInstrumentor\n"
                             "AnthropicInstrumentor().instrument(); print('instrumented')",
                       env={k: v for k, v in os.environ.items() if not k.startswith(("SPANHOUSE_", "OTEL_"))})
    assert by_hand.returncode == 0 and "instrumented" in by_hand.stdout, by_hand.stderr
    assert by_hand.stderr == ""
    # Under opentelemetry-instrument, with an app that only uses openai.
    spans, stderr = _run(view, "openai", fake_server, otlp_receiver)
    assert [s.scope for s in spans] == [OURS["openai"]]
    assert "anthropic" not in stderr.lower()


# --- the same decisions in process ------------------------------------------------------------------

OTHER_OPENAI = [d for d, lib in OTHERS.items() if lib == "openai" and _installed(d)]
needs_other_openai = pytest.mark.skipif(not OTHER_OPENAI, reason="no other OpenAI instrumentor installed")


@pytest.fixture
def uninstrument_openai() -> Iterator[None]:
    yield
    OpenAIInstrumentor().uninstrument()
    set_env(**{_config.ENV_STEP_ASIDE: None})
    os.environ.pop(_coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, None)


def _patched() -> bool:
    return isinstance(vars(Completions)["create"], wrapt.FunctionWrapper)


@needs_other_openai
def test_loaded_as_opentelemetry_instrument_loads_it_ours_steps_aside(
        uninstrument_openai: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        OpenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert not _patched()
    (record,) = [r for r in caplog.records if STEP_ASIDE_LINE in r.getMessage()]
    assert all(dist in record.getMessage() for dist in OTHER_OPENAI)


@needs_other_openai
@pytest.mark.parametrize("env", [{_config.ENV_STEP_ASIDE: "false"},
                                 {_coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: "openai"},
                                 {_coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: "*"}])
def test_auto_loaded_ours_instruments_when_told_or_the_others_are_off(
        env: dict[str, str], uninstrument_openai: None) -> None:
    os.environ.update(env)
    _config.refresh()
    OpenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert _patched()


@needs_other_openai
def test_instrumenting_by_hand_is_an_explicit_choice(uninstrument_openai: None) -> None:
    OpenAIInstrumentor().instrument(tracer_provider=make_telemetry().tracer_provider)
    assert _patched()


def test_a_bad_step_aside_value_warns_once_and_keeps_the_default(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, uninstrument_openai: None) -> None:
    monkeypatch.setattr(_config, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        set_env(**{_config.ENV_STEP_ASIDE: "maybe"})
        set_env(**{_config.ENV_STEP_ASIDE: "maybe"})
    assert _config.SETTINGS.step_aside is True
    (record,) = caplog.records
    assert _config.ENV_STEP_ASIDE in record.getMessage() and "'maybe'" in record.getMessage()


class _AbsentLibraryInstrumentor(ProviderInstrumentor):
    provider = "nobody"
    instruments = ("spanhouse-test-no-such-library >= 1.0",)
    patches = (Patch("spanhouse_test_no_such_library", "Client", "create",
                     openai_patch.chat_completions_create),)


class _TooOldLibraryInstrumentor(ProviderInstrumentor):
    provider = "openai"
    instruments = ("openai < 1.0",)
    patches = ()


def test_absent_library_is_silent_but_a_version_outside_the_range_is_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        _AbsentLibraryInstrumentor().instrument()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    _AbsentLibraryInstrumentor().uninstrument()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _TooOldLibraryInstrumentor().instrument()
    assert any("openai < 1.0" in r.getMessage() for r in caplog.records)
