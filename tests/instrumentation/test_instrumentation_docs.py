"""docs/instrumentation.md: its Python examples run as written, and every variable we read is documented."""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from spanhouse.instrumentation import _semconv as sc

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "instrumentation.md"
SOURCE = ROOT / "instrumentation"

agent_module = importlib.import_module("spanhouse.instrumentation.agent")


def _env_table(doc: str) -> set[str]:
    section = doc.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.M))


def test_every_environment_variable_read_is_documented() -> None:
    read = set()
    for path in SOURCE.rglob("*.py"):
        read.update(re.findall(r"\"((?:SPANHOUSE|OTEL)_[A-Z0-9_]+)\"", path.read_text()))
    assert read >= {"SPANHOUSE_INSTRUMENTATION_ENABLED", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"}
    documented = _env_table(DOC.read_text())
    assert read - documented == set(), "read by spanhouse.instrumentation but not in the docs' table"
    assert documented - read == set(), "in the docs' table but never read"


def test_python_examples_run_and_make_the_spans_they_describe(telemetry: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "_tracer", telemetry.tracer_provider.get_tracer("docs"))
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102

    spans = telemetry.spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (planner,) = by_name["invoke_agent trip-planner"]
    (weather,) = by_name["execute_tool get_weather"]
    assert weather.parent.span_id == planner.context.span_id
    assert planner.attributes[sc.REQUEST_MODEL] == "gpt-4o-mini"
    (search,) = by_name["execute_tool search_docs"]
    assert search.parent.span_id == by_name["invoke_agent reviewer"][0].context.span_id
    assert search.attributes[sc.TOOL_CALL_ID] == "call_1"

    support = by_name["invoke_agent support-bot"]
    assert len(support) == 5  # plain, two tasks, to_thread, own thread
    for span in support:
        assert span.attributes[sc.CONVERSATION_ID] == "conv-42"
        assert span.attributes[sc.USER_ID_HASH] == hashlib.sha256(b"alice@example.com").hexdigest()
        assert span.attributes[sc.METADATA_PREFIX + "plan"] == "pro"

    refunds = by_name["invoke_agent refund-bot"]
    assert [(s.attributes[sc.OUTCOME], s.attributes.get(sc.OUTCOME_REASON)) for s in refunds] == [
        ("completed", None), ("surfaced", "refund above the automatic limit")]
    for span in refunds:
        assert (span.attributes[sc.AGENT_VERSION], span.attributes[sc.PROMPT_NAME],
                span.attributes[sc.PROMPT_VERSION]) == ("1.4.0", "refunds", "v7")
        assert span.attributes[sc.CONVERSATION_ID] == "ticket-981"
    assert all(sc.OUTCOME not in s.attributes for s in by_name["execute_tool check_policy"])
