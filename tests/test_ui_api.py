"""The UI API's own logic, without a store: a call's conversation read from what instrumentors store (current
JSON attributes, older per-message events, values that are not JSON), and the filters a request may send."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from spanhouse.collector.auth import Principal
from spanhouse.collector.ui import api

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
ADMIN = Principal("", admin=True)


def msgs(value: Any) -> str:
    return json.dumps(value)


@pytest.mark.parametrize("attributes, events, expected", [
    pytest.param({"gen_ai.system_instructions": msgs([{"type": "text", "content": "Be brief."}]),
                  "gen_ai.input.messages": msgs([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
                  "gen_ai.output.messages": msgs([{"role": "assistant", "finish_reason": "tool_call", "parts": [
                      {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "x"}}]}])},
                 [],
                 [("system", [{"type": "text", "content": "Be brief."}]),
                  ("user", [{"type": "text", "content": "Hi"}]),
                  ("assistant", [{"type": "tool_call", "name": "search", "id": "c1",
                                  "arguments": json.dumps({"q": "x"}, indent=1)}])],
                 id="current-conventions"),
    pytest.param({"gen_ai.input.messages": msgs([{"role": "tool", "parts": [
                     {"type": "tool_call_response", "id": "c1", "response": {"rows": 3}}]}])}, [],
                 [("tool", [{"type": "tool_call_response", "id": "c1", "response": json.dumps({"rows": 3}, indent=1)}])],
                 id="tool-result"),
    pytest.param({}, [{"name": "gen_ai.user.message", "time": "", "attributes": {"content": "Hello"}},
                      {"name": "gen_ai.choice", "time": "", "attributes": {"message": "Hi there"}},
                      {"name": "exception", "time": "", "attributes": {"exception.message": "boom"}}],
                 [("user", [{"type": "text", "content": "Hello"}]),
                  ("assistant", [{"type": "text", "content": "Hi there"}])],
                 id="older-events"),
    pytest.param({"gen_ai.input.messages": "[REDACTED] not json <b>"}, [],
                 [("input", [{"type": "text", "content": "[REDACTED] not json <b>"}])], id="not-json-kept-as-text"),
    pytest.param({"gen_ai.output.messages": msgs([{"role": "assistant", "parts": [{"type": "image", "uri": "u"}]}])},
                 [], [("assistant", [{"type": "other", "content": msgs({"type": "image", "uri": "u"})}])],
                 id="unknown-part"),
    pytest.param({"gen_ai.input.messages": msgs([["odd"], {"role": "user", "content": "plain string content"}])}, [],
                 [("", [{"type": "text", "content": msgs(["odd"])}]),
                  ("user", [{"type": "text", "content": "plain string content"}])], id="odd-shapes"),
    pytest.param({"other": "x"}, [], [], id="no-messages"),
])
def test_conversation_is_read_from_what_was_stored(attributes: dict[str, str], events: list[dict[str, Any]],
                                                   expected: list[tuple[str, list[dict[str, str]]]]) -> None:
    got = api.conversation(attributes, events)
    assert [(m["role"], m["parts"]) for m in got] == expected


@pytest.mark.parametrize("query, message", [
    ("since=yesterday", "since: expected a duration"),
    ("since=1h&until=2h", "since must be before until"),
    ("min_cost=-1", "min_cost: expected a number of 0 or more"),
    ("min_cost=nan", "min_cost: expected a number of 0 or more"),
    ("min_duration_ms=abc", "min_duration_ms: expected a number"),
    ("page=-2", "page: expected 0, 1, 2"),
    ("q=" + "x" * 201, "q: longer than 200 characters"),
])
def test_bad_filters_are_refused_by_name(query: str, message: str) -> None:
    with pytest.raises(api.BadRequest, match=message):
        f = api.Filters(query, ADMIN, now=NOW)
        f.number("min_cost"), f.number("min_duration_ms"), f.page()


def test_a_tenant_key_is_confined_to_its_tenant_whatever_it_asks() -> None:
    assert api.Filters("tenant=globex", Principal("acme"), now=NOW).tenant == "acme"
    assert api.Filters("tenant=globex", ADMIN, now=NOW).tenant == "globex"


def test_time_range_presets_and_iso_times() -> None:
    f = api.Filters("since=7d", ADMIN, now=NOW)
    assert (f.since, f.until) == (NOW - dt.timedelta(days=7), NOW)
    f = api.Filters("since=2026-05-31T10:00:00.000Z&until=2026-05-31T11:00:00Z", ADMIN, now=NOW)
    assert (f.since.hour, f.until.hour) == (10, 11)
