"""The agent framework instrumentors as `opentelemetry-instrument` loads them: on with no code change, off by
name or by the kill switch, and stepping aside for another instrumentor of the same framework."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt
from agents.tool_context import ToolContext
from langchain_core.callbacks.manager import CallbackManager
from mcp.client.session import ClientSession

from spanhouse.instrumentation import _coexist, _config
from spanhouse.instrumentation._provider import ProviderInstrumentor
from spanhouse.instrumentation.langchain import LangChainInstrumentor
from spanhouse.instrumentation.mcp import MCPInstrumentor
from spanhouse.instrumentation.openai_agents import OpenAIAgentsInstrumentor

from fake_providers import FakeProviderServer
from instr_harness import make_telemetry, set_env
from site_view import _AUTO_INSTRUMENT

APP = Path(__file__).parent / "apps" / "agents_app.py"
# What each app's run shows when our instrumentor for it is on.
OUR_SPAN = {"langchain": "execute_tool get_weather", "openai_agents": "invoke_agent weather_agent",
            "mcp": "execute_tool get_weather"}


def _console_spans(stdout: str) -> list[dict[str, Any]]:
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", index)) != -1:
        span, index = decoder.raw_decode(stdout, start)
        spans.append(span)
    return spans


def _run_app(library: str, fake_server: FakeProviderServer, **env: str) -> set[str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("SPANHOUSE_", "OTEL_")) and k != "OPENAI_API_KEY"}
    full_env.update({"FAKE_OPENAI_BASE_URL": fake_server.openai_base_url, "OTEL_TRACES_EXPORTER": "console",
                     "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                     # Only ours for the client library below the framework.
                     "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,anthropic", **env})
    # `opentelemetry-instrument python app.py`, through this interpreter (a venv may lack the script).
    result = subprocess.run([sys.executable, "-c", _AUTO_INSTRUMENT, sys.executable, str(APP), library],
                            env=full_env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "app done" in result.stdout, result.stderr
    # The console exporter prints each batch when it is due, before or after the app's last line.
    return {span["name"] for span in _console_spans(result.stdout.replace("app done", ""))}


@pytest.mark.parametrize("library", sorted(OUR_SPAN))
def test_on_with_no_code_change_and_off_by_name_or_kill_switch(library: str,
                                                                fake_server: FakeProviderServer) -> None:
    assert OUR_SPAN[library] in _run_app(library, fake_server)
    disabled = _run_app(library, fake_server, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=f"openai,anthropic,spanhouse_{library}")
    assert OUR_SPAN[library] not in disabled
    assert OUR_SPAN[library] not in _run_app(library, fake_server, SPANHOUSE_INSTRUMENTATION_ENABLED="false")


# --- stepping aside -------------------------------------------------------------------------------------

def _patched(owner: type, method: str) -> Callable[[], bool]:
    return lambda: isinstance(owner.__dict__[method], wrapt.FunctionWrapper)


# (our instrumentor, the entry point name another vendor registers, what it declares, how to see ours is on)
RIVALS = {
    "langchain": (LangChainInstrumentor, "langchain", "langchain-core", _patched(CallbackManager, "configure")),
    # OpenLLMetry's: named `langchain`, declaring the `langchain` package; found by its name alone.
    "langchain-by-name": (LangChainInstrumentor, "langchain", None, _patched(CallbackManager, "configure")),
    "openai_agents": (OpenAIAgentsInstrumentor, "openai_agents", "openai-agents",
                      _patched(ToolContext, "from_agent_context")),
    "mcp": (MCPInstrumentor, "mcp", "mcp", _patched(ClientSession, "call_tool")),
}


def _rival(root: Path, entry_point: str, instruments: str | None) -> Path:
    """A distribution on sys.path that registers an instrumentor entry point, as another vendor's would."""
    info = root / "rival_instrumentation-1.0.dist-info"
    info.mkdir(parents=True)
    requires = f'Requires-Dist: {instruments}; extra == "instruments"\n' if instruments else ""
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: rival-instrumentation\nVersion: 1.0\n{requires}")
    # Any importable object will do: only whether it loads matters to the check.
    (info / "entry_points.txt").write_text(f"[opentelemetry_instrumentor]\n{entry_point} = json:JSONDecoder\n")
    return root


@pytest.fixture
def cleanup() -> Iterator[list[ProviderInstrumentor]]:
    used: list[ProviderInstrumentor] = []
    yield used
    for instrumentor in used:
        instrumentor.uninstrument()
    os.environ.pop(_coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, None)
    set_env(**{_config.ENV_STEP_ASIDE: None})


@pytest.mark.parametrize("rival", sorted(RIVALS))
def test_steps_aside_for_another_enabled_instrumentor_of_the_framework(
        rival: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        cleanup: list[ProviderInstrumentor]) -> None:
    cls, entry_point, instruments, ours_on = RIVALS[rival]
    monkeypatch.syspath_prepend(str(_rival(tmp_path, entry_point, instruments)))
    instrumentor = cls()
    cleanup.append(instrumentor)
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation"):
        instrumentor.instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert not ours_on()
    (line,) = [r.getMessage() for r in caplog.records if "spanhouse is not tracing" in r.getMessage()]
    assert "rival-instrumentation 1.0" in line and f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={entry_point}" in line

    instrumentor.uninstrument()
    os.environ[_coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS] = entry_point
    instrumentor.instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert ours_on()


def test_a_rival_for_another_library_is_no_reason_to_step_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup: list[ProviderInstrumentor]) -> None:
    monkeypatch.syspath_prepend(str(_rival(tmp_path, "mcp", "mcp")))
    instrumentor = LangChainInstrumentor()
    cleanup.append(instrumentor)
    instrumentor.instrument(tracer_provider=make_telemetry().tracer_provider, skip_dep_check=True)
    assert RIVALS["langchain"][3]()


def test_loading_the_entry_points_imports_no_framework() -> None:
    """opentelemetry-instrument loads every entry point at start-up: an app that has a framework installed
    but never imports it (or turned our instrumentor off) must not pay for importing it."""
    code = ("import sys\n"
            "import spanhouse.instrumentation.langchain, spanhouse.instrumentation.openai_agents\n"
            "import spanhouse.instrumentation.mcp\n"
            "print(sorted(m for m in ('langchain_core', 'langgraph', 'agents', 'mcp') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout
