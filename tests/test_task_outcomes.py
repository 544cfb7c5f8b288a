"""normalize fills the task columns (UserId, AgentVersion, PromptName, PromptVersion, Outcome, OutcomeReason)
from the conventions' names and from the spanhouse.* spellings, and refuses outcomes it does not know."""

from __future__ import annotations

from typing import Any

import pytest

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.processors.normalize import NormalizeProcessor

AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
TASK_COLUMNS = ("UserId", "AgentVersion", "PromptName", "PromptVersion", "Outcome", "OutcomeReason")


def normalized(*spans: dict[str, str]) -> tuple[list[dict[str, Any]], NormalizeProcessor]:
    processor = NormalizeProcessor()
    batch = processor.process(SpanBatch({"SpanAttributes": list(spans)}, len(spans)))
    return [{name: batch[name][i] for name in TASK_COLUMNS} for i in range(batch.size)], processor


@pytest.mark.parametrize("attributes, expected", [
    pytest.param({**AGENT, "gen_ai.agent.version": "2.1.0", "gen_ai.prompt.name": "triage",
                  "spanhouse.prompt.version": "v7", "spanhouse.user.id_hash": "ab12",
                  "spanhouse.outcome": "completed", "spanhouse.outcome.reason": "answered"},
                 ("ab12", "2.1.0", "triage", "v7", "completed", "answered"), id="conventions-and-ours"),
    pytest.param({**AGENT, "spanhouse.agent.version": "2.1.0", "spanhouse.prompt.name": "triage",
                  "user.hash": "cd34", "spanhouse.outcome": "surfaced", "spanhouse.outcome.reason": "needs a human"},
                 ("cd34", "2.1.0", "triage", "", "surfaced", "needs a human"), id="spanhouse-spellings"),
    pytest.param({**AGENT, "gen_ai.agent.version": "conventions", "spanhouse.agent.version": "ours",
                  "spanhouse.user.id_hash": "ours", "user.hash": "general"},
                 ("ours", "conventions", "", "", "", ""), id="the-first-name-wins"),
    pytest.param({**AGENT, "spanhouse.outcome": " Timed_Out "}, ("", "", "", "", "timed_out", ""),
                 id="case-and-spaces-folded"),
    pytest.param({**AGENT, "spanhouse.outcome": "errored", "llm.request.type": "chat"},
                 ("", "", "", "", "errored", ""), id="read-on-dialect-spans-too"),
    pytest.param({"gen_ai.operation.name": "chat", "spanhouse.user.id_hash": "ab12"}, ("ab12", "", "", "", "", ""),
                 id="a-call-carries-the-user"),
    pytest.param({**AGENT}, ("", "", "", "", "", ""), id="nothing-recorded"),
])
def test_task_columns_come_from_either_spelling(attributes: dict[str, str], expected: tuple[str, ...]) -> None:
    rows, processor = normalized(attributes)
    assert tuple(rows[0].values()) == expected
    assert processor.counters()["outcomes_refused_total"] == 0


@pytest.mark.parametrize("value", ["success", "done", "COMPLETED!", "timeout", "x" * 5000, "\x00completed"])
def test_an_unknown_outcome_is_refused_to_empty_and_counted(value: str) -> None:
    rows, processor = normalized({**AGENT, "spanhouse.outcome": value, "spanhouse.outcome.reason": "why"},
                                 {**AGENT, "spanhouse.outcome": "completed"})
    assert [r["Outcome"] for r in rows] == ["", "completed"]
    assert rows[0]["OutcomeReason"] == "why"  # the reason is free text: kept whatever the outcome
    assert processor.counters()["outcomes_refused_total"] == 1


def test_an_empty_outcome_is_no_outcome_rather_than_a_refusal() -> None:
    rows, processor = normalized({**AGENT, "spanhouse.outcome": ""})
    assert rows[0]["Outcome"] == ""
    assert processor.counters()["outcomes_refused_total"] == 0


def test_spans_that_are_not_genai_calls_keep_the_defaults() -> None:
    rows, processor = normalized({"http.method": "GET", "spanhouse.outcome": "bogus", "gen_ai.agent.version": "1"})
    assert tuple(rows[0].values()) == ("", "", "", "", "", "")
    assert processor.counters()["outcomes_refused_total"] == 0
