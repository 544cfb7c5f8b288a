"""outcome() and the agent() version parameters, recorded through the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

import openai
import pytest

from spanhouse.instrumentation import _config, agent, context, outcome, tool
from spanhouse.instrumentation import _semconv as sc

from instr_harness import set_env

agent_module = importlib.import_module("spanhouse.instrumentation.agent")


@pytest.fixture(autouse=True)
def agent_tracer(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "_tracer", telemetry.tracer_provider.get_tracer("test"))
    monkeypatch.setattr(agent_module, "_warned_outside_agent", False)


def by_name(telemetry: Any) -> dict[str, Any]:
    return {span.name: span for span in telemetry.spans()}


def test_outcome_lands_on_the_agent_span_even_from_inside_a_tool_or_a_call(
        telemetry: Any, openai_client: openai.OpenAI) -> None:
    with context(conversation_id="conv-1", user_id="alice"), \
            agent("planner", version="2.1.0", prompt_name="triage", prompt_version="v7"):
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        with tool("ask_human"):
            assert outcome("surfaced", reason="needs approval") is True
    spans = by_name(telemetry)
    run = spans["invoke_agent planner"].attributes
    assert run[sc.OUTCOME] == "surfaced" and run[sc.OUTCOME_REASON] == "needs approval"
    assert run[sc.AGENT_VERSION] == "2.1.0" and run[sc.PROMPT_NAME] == "triage" and run[sc.PROMPT_VERSION] == "v7"
    assert run[sc.CONVERSATION_ID] == "conv-1" and run[sc.USER_ID_HASH] == agent_module.hash_user_id("alice")
    for other in ("execute_tool ask_human", "chat gpt-4o"):
        assert sc.OUTCOME not in spans[other].attributes


def test_the_innermost_agent_gets_it_and_a_later_call_overrides(telemetry: Any) -> None:
    with agent("outer") as run:
        with agent("inner"):
            outcome("timed_out", "search took too long")
        run.outcome("errored")
        run.outcome("completed")
        with agent("retried") as retried:
            retried.outcome("errored", "first try failed")
            retried.outcome("completed")
    spans = by_name(telemetry)
    assert spans["invoke_agent inner"].attributes[sc.OUTCOME] == "timed_out"
    assert spans["invoke_agent outer"].attributes[sc.OUTCOME] == "completed"
    assert sc.OUTCOME_REASON not in spans["invoke_agent outer"].attributes
    retried_attributes = spans["invoke_agent retried"].attributes
    assert (retried_attributes[sc.OUTCOME], retried_attributes[sc.OUTCOME_REASON]) == ("completed", "")


@pytest.mark.parametrize("error, expected", [(RuntimeError("boom"), "errored"),
                                             (TimeoutError("slow"), "timed_out")])
def test_a_run_that_raises_without_an_outcome_records_how_it_ended(telemetry: Any, error: Exception,
                                                                   expected: str) -> None:
    with pytest.raises(type(error)), agent("a"):
        raise error
    attributes = telemetry.span().attributes
    assert attributes[sc.OUTCOME] == expected
    assert attributes[sc.OUTCOME_REASON] == type(error).__qualname__


def test_an_outcome_recorded_before_raising_is_kept(telemetry: Any) -> None:
    with pytest.raises(RuntimeError), agent("a"):
        outcome("surfaced", "asked a human, then gave up")
        raise RuntimeError("after surfacing")
    assert telemetry.span().attributes[sc.OUTCOME] == "surfaced"


def test_decorated_async_runs_each_get_their_own_outcome(telemetry: Any) -> None:
    @agent("worker")
    async def run(ok: bool) -> None:
        await asyncio.sleep(0)
        outcome("completed" if ok else "surfaced", None if ok else "unsure")

    async def main() -> None:
        await asyncio.gather(run(True), run(False))

    asyncio.run(main())
    assert sorted(s.attributes[sc.OUTCOME] for s in telemetry.spans()) == ["completed", "surfaced"]


@pytest.mark.parametrize("status", ["done", "Completed", "", None, 1, "timeout"])
def test_a_bad_status_is_refused_naming_the_allowed_ones(telemetry: Any, status: Any) -> None:
    with agent("a"), pytest.raises(ValueError, match="status must be one of completed, surfaced, errored, timed_out"):
        outcome(status)
    assert sc.OUTCOME not in telemetry.span().attributes


def test_a_long_reason_is_cut_and_versions_given_as_numbers_are_text(telemetry: Any) -> None:
    with agent("a", version=3, prompt_version=1.5):
        outcome("completed", "x" * 5000)
    attributes = telemetry.span().attributes
    assert len(attributes[sc.OUTCOME_REASON]) == agent_module.MAX_REASON_CHARS
    assert attributes[sc.AGENT_VERSION] == "3" and attributes[sc.PROMPT_VERSION] == "1.5"
    with pytest.raises(TypeError, match="prompt_version must be a string, got list"):
        agent("a", prompt_version=["v1"])  # type: ignore[arg-type]


def test_a_tool_has_no_outcome(telemetry: Any) -> None:
    with tool("t") as scope, pytest.raises(TypeError, match="execute_tool spans have no outcome"):
        scope.outcome("completed")


def test_another_instrumentors_agent_span_takes_it(telemetry: Any) -> None:
    tracer = telemetry.tracer_provider.get_tracer("framework")
    with tracer.start_as_current_span("invoke_agent other", attributes={sc.OPERATION_NAME: "invoke_agent"}):
        assert outcome("completed") is True
    assert telemetry.span().attributes[sc.OUTCOME] == "completed"


def test_outside_an_agent_run_nothing_is_recorded_and_it_warns_once(telemetry: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with caplog.at_level(logging.WARNING, logger="spanhouse.instrumentation.agent"):
        with tracer.start_as_current_span("GET /"):
            assert outcome("completed") is False
        assert outcome("errored") is False
    assert sc.OUTCOME not in telemetry.span().attributes
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "outside an agent run" in warnings[0]


@pytest.mark.parametrize("env", [{_config.ENV_ENABLED: "false"}, {_config.ENV_SDK_DISABLED: "true"}])
def test_kill_switch_makes_outcome_a_noop(telemetry: Any, env: dict[str, str]) -> None:
    set_env(**env)
    with agent("a", version="1") as run:
        assert outcome("not even checked") is False
        assert run.outcome("completed") is False
    assert telemetry.spans() == []
