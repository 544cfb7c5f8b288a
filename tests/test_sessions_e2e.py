"""`spanhouse sessions` and the UI's Sessions tab against what was sent: the real OTel SDK with spanhouse's agent
helpers exporting over OTLP/gRPC to a real collector on the embedded store, read back through the query endpoint
with tenant keys."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from spanhouse.instrumentation import ContextSpanProcessor, agent, context, outcome, tool

from access_harness import Key, auth_overrides, http
from collector_harness import RunningCollector, start_collector
from test_cli_usage import json_rows, spanhouse
from ui_helpers import browser, new_page

agent_module = importlib.import_module("spanhouse.instrumentation.agent")

ADMIN, ACME, GLOBEX = Key.new("ops", admin=True), Key.new("acme"), Key.new("globex")
PRICE_IN, PRICE_OUT = 0.15e-6, 0.60e-6  # gpt-4o-mini, USD per token (schemas/prices)


def user_hash(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()  # the instrumentation's, with no salt configured


@dataclass
class Sent:
    """What one tenant's application sent for one conversation, counted as the sessions query counts."""

    turns: list[str] = field(default_factory=list)  # trace ids, in order
    llm_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    errors: int = 0
    outcomes: list[str] = field(default_factory=list)  # per task ('' = none recorded), in order


class App:
    """An application of one tenant: an SDK tracer provider exporting to the collector with the tenant's key."""

    def __init__(self, running: RunningCollector, key: Key, service: str) -> None:
        self.provider = TracerProvider(resource=Resource({"service.name": service}))
        self.provider.add_span_processor(ContextSpanProcessor())
        exporter = OTLPSpanExporter(endpoint=f"http://{running.grpc_endpoint}", insecure=True, timeout=30,
                                    headers=(("authorization", f"Bearer {key.key}"),))
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("app")
        agent_module._tracer = self.tracer  # the helpers' spans go to this provider

    def chat(self, sent: Sent, tokens_in: int, tokens_out: int, fail: bool = False) -> None:
        with self.tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out}) as span:
            if fail:
                span.set_attribute("error.type", "openai.RateLimitError")
                span.set_status(Status(StatusCode.ERROR, "rate limited"))
        sent.llm_calls += 1
        sent.tokens += tokens_in + tokens_out
        sent.cost += tokens_in * PRICE_IN + tokens_out * PRICE_OUT
        sent.errors += int(fail)

    @contextlib.contextmanager
    def turn(self, sent: Sent) -> Iterator[None]:
        """The trace of one turn: a root span around it, its id recorded."""
        with self.tracer.start_as_current_span("handle_message") as span:
            sent.turns.append(format(span.get_span_context().trace_id, "032x"))
            yield


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    running = start_collector(tmp_path_factory.mktemp("sessions") / "store", **auth_overrides(ADMIN, ACME, GLOBEX))
    saved = agent_module._tracer
    try:
        sent = {"a": Sent(), "b": Sent(), "g": Sent()}
        acme = App(running, ACME, "support-bot")
        with context(conversation_id="conv-a", user_id="alice"):
            # Turn 1: a planner run with a sub-agent (part of the same task), completed.
            a = sent["a"]
            with acme.turn(a), agent("planner", version="1.4.0", prompt_name="triage", prompt_version="v3"):
                acme.chat(a, 10_000, 2_000)
                with tool("search"):
                    pass
                with agent("researcher", version="0.9"):
                    acme.chat(a, 4_000, 1_000)
                    outcome("errored", "sub-agent outcome: not a task of its own")
                acme.chat(a, 6_000, 500)
                outcome("completed")
            a.outcomes.append("completed")
            # Turn 2: a failed call, then the run is handed to a person.
            with acme.turn(a), agent("planner", version="1.4.0"):
                acme.chat(a, 3_000, 0, fail=True)
                outcome("surfaced", "refund above the limit needs approval")
            a.outcomes.append("surfaced")
            # Turn 3: the run times out (the helper records it, and the agent span is a failed call).
            with pytest.raises(TimeoutError), acme.turn(a), agent("planner", version="1.5.0"):
                acme.chat(a, 2_000, 100)
                raise TimeoutError("gave up after 30 s")
            a.errors += 1
            a.outcomes.append("timed_out")
        with context(conversation_id="conv-b", user_id="bob"):
            b = sent["b"]
            with acme.turn(b), agent("planner", version="1.5.0"):  # no outcome recorded
                acme.chat(b, 1_000, 1_000)
            b.outcomes.append("")
            with acme.turn(b):
                acme.chat(b, 500, 50)  # a call outside any agent run: a turn without a task
        # Another application of acme that spells the task attributes its own way (no spanhouse helpers).
        for attributes in ({"spanhouse.agent.version": "7", "user.hash": "cafe", "spanhouse.outcome": "errored",
                            "spanhouse.outcome.reason": "tool crashed"},
                           {"gen_ai.agent.version": "8", "spanhouse.outcome": "finished-ish"}):
            with acme.tracer.start_as_current_span("invoke_agent other", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "conv-c", **attributes}):
                pass
        acme.provider.shutdown()

        globex = App(running, GLOBEX, "globex-bot")
        with context(conversation_id="conv-a", user_id="gina"):  # the same conversation id, another tenant
            g = sent["g"]
            with globex.turn(g), agent("helper"):
                globex.chat(g, 8_000, 8_000)
                outcome("completed")
            g.outcomes.append("completed")
        globex.provider.shutdown()
        running.flush()
        yield {"running": running, "sent": sent}
    finally:
        agent_module._tracer = saved
        running.collector.stop()


def cli(world: dict[str, Any], key: Key, *args: str) -> Any:
    return spanhouse("sessions", "--since", "1h", *args, query_endpoint=world["running"].query_endpoint,
                     api_key=key.key)


def rows_by_session(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["tenant"], r["conversation_id"]): r for r in rows}


def check(row: dict[str, Any], sent: Sent, user: str) -> None:
    assert row["turns"] == len(sent.turns)
    assert row["llm_calls"] == sent.llm_calls
    assert row["tokens"] == sent.tokens
    assert row["cost_usd"] == pytest.approx(sent.cost, abs=2e-6) and row["cost_usd"] > 0
    assert row["errors"] == sent.errors
    assert row["tasks"] == len(sent.outcomes)
    for name in ("completed", "surfaced", "errored", "timed_out"):
        assert row[name] == sent.outcomes.count(name), name
    assert row["no_outcome"] == sent.outcomes.count("")
    assert row["user_id"] == user_hash(user) and row["users"] == 1
    assert set(row["traces"]) == set(sent.turns)


def test_sessions_count_what_was_sent(world: dict[str, Any]) -> None:
    sent = world["sent"]
    rows = rows_by_session(json_rows(cli(world, ADMIN, "--format", "json")))
    assert set(rows) == {("acme", "conv-a"), ("acme", "conv-b"), ("acme", "conv-c"), ("globex", "conv-a")}
    check(rows["acme", "conv-a"], sent["a"], "alice")
    check(rows["acme", "conv-b"], sent["b"], "bob")
    check(rows["globex", "conv-a"], sent["g"], "gina")
    assert rows["acme", "conv-a"]["agent_versions"] == ["0.9", "1.4.0", "1.5.0"]
    # The application spelling attributes its own way: both its runs are tasks; the unknown outcome is none.
    other = rows["acme", "conv-c"]
    assert (other["tasks"], other["errored"], other["no_outcome"], other["user_id"]) == (2, 1, 1, "cafe")
    assert other["agent_versions"] == ["7", "8"]


def test_the_cli_and_the_ui_api_answer_the_same(world: dict[str, Any]) -> None:
    endpoint = world["running"].query_endpoint
    for key in (ADMIN, ACME):
        status, body = http(endpoint, "/ui/api/sessions?since=1h", key=key.key)
        assert status == 200, body
        ui = json.loads(body)["sessions"]
        assert ui == json_rows(cli(world, key, "--format", "json"))
        assert ui  # something to agree on


def test_a_tenant_key_reads_only_its_tenants_sessions(world: dict[str, Any]) -> None:
    mine = rows_by_session(json_rows(cli(world, ACME, "--format", "json")))
    assert {tenant for tenant, _ in mine} == {"acme"}
    check(mine["acme", "conv-a"], world["sent"]["a"], "alice")  # globex's conv-a is not mixed in
    assert json_rows(cli(world, ACME, "--tenant", "globex", "--format", "json")) == []
    status, body = http(world["running"].query_endpoint, "/ui/api/sessions?since=1h&tenant=globex", key=ACME.key)
    assert status == 200 and {r["tenant"] for r in json.loads(body)["sessions"]} == {"acme"}
    # One session's turns: another tenant's conversation is not found.
    result = cli(world, GLOBEX, "conv-b")
    assert result.returncode == 1 and "no calls of conversation 'conv-b'" in result.stderr
    endpoint = world["running"].query_endpoint
    status, body = http(endpoint, "/ui/api/session?since=1h&conversation=conv-b&tenant=acme", key=GLOBEX.key)
    assert status == 200 and json.loads(body)["turns"] == []
    status, body = http(endpoint, "/ui/api/session?since=1h&conversation=conv-a", key=GLOBEX.key)
    assert [t["trace_id"] for t in json.loads(body)["turns"]] == world["sent"]["g"].turns
    status, body = http(endpoint, "/ui/api/session?since=1h", key=GLOBEX.key)
    assert status == 400 and "conversation: name the conversation" in body


def test_filters_narrow_the_list(world: dict[str, Any]) -> None:
    def keys(*args: str) -> set[tuple[str, str]]:
        return set(rows_by_session(json_rows(cli(world, ADMIN, "--format", "json", *args))))

    assert keys("--user", user_hash("bob")) == {("acme", "conv-b")}
    assert keys("--conversation", "conv-a") == {("acme", "conv-a"), ("globex", "conv-a")}
    assert keys("--conversation", "conv-a", "--tenant", "globex") == {("globex", "conv-a")}
    assert keys("--service", "globex-bot") == {("globex", "conv-a")}
    assert keys("--user", "nobody' OR 1=1 --") == set()
    assert keys("--since", "2h", "--until", "90m") == set()


def test_one_sessions_turns_in_order_add_up_to_its_row(world: dict[str, Any]) -> None:
    sent = world["sent"]["a"]
    turns = json_rows(cli(world, ACME, "conv-a", "--format", "json"))
    assert [t["trace_id"] for t in turns] == sent.turns
    assert [t["outcomes"] for t in turns] == [["completed"], ["surfaced"], ["timed_out"]]
    assert [t["agents"] for t in turns] == [["planner"]] * 3
    assert turns[1]["outcome_reasons"] == ["refund above the limit needs approval"]
    (row,) = json_rows(cli(world, ACME, "--conversation", "conv-a", "--format", "json"))
    for name in ("llm_calls", "tokens", "errors", "tasks"):
        assert sum(t[name] for t in turns) == row[name], name
    assert sum(t["cost_usd"] for t in turns) == pytest.approx(row["cost_usd"], abs=2e-6)
    # The table: a summary line, then one line per turn.
    table = cli(world, ACME, "conv-a")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == (f"conversation conv-a: 3 turns, {sent.llm_calls} LLM calls, {sent.tokens} tokens, "
                        f"cost ${row['cost_usd']:.6f}, {sent.errors} errors, 3 tasks (1 completed, 1 surfaced, "
                        "1 timed_out)")
    assert [line.split()[2] for line in lines[3:6]] == sent.turns


def test_the_list_table_and_bad_options(world: dict[str, Any]) -> None:
    table = cli(world, ADMIN)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:3] == ["conversation_id", "tenant", "user_id"] and header[-5:] == [
        "completed", "surfaced", "errored", "timed_out", "no_outcome"]
    assert user_hash("alice")[:12] in table.stdout and user_hash("alice") not in table.stdout
    for args, message in ((["conv-a", "--user", "x"], "--user: filter the list of sessions"),
                          (["--limit", "0"], "--limit: must be at least 1"),
                          (["--since", "soon"], "--since: expected a duration")):
        result = cli(world, ADMIN, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_outcome_columns_are_filled_in_spans_and_calls_from_both_spellings(world: dict[str, Any]) -> None:
    running = world["running"]
    for table in ("spans", "genai_calls"):
        rows = running.query(f"SELECT AgentVersion, UserId, Outcome, OutcomeReason FROM {table} "
                             "WHERE ConversationId = 'conv-c' ORDER BY AgentVersion")
        assert rows == [("7", "cafe", "errored", "tool crashed"), ("8", "", "", "")], table
        first = running.query(f"SELECT AgentVersion, PromptName, PromptVersion, Outcome, UserId FROM {table} "
                              f"WHERE TraceId = '{world['sent']['a'].turns[0]}' AND SpanName = 'invoke_agent planner'")
        assert first == [("1.4.0", "triage", "v3", "completed", user_hash("alice"))], table
    assert running.collector.counters()["normalize_outcomes_refused_total"] == 1


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from browser()


def test_the_sessions_tab_shows_the_users_tasks_and_outcomes(world: dict[str, Any], chromium: Any) -> None:
    page = new_page(chromium)
    page.goto(f"http://{world['running'].query_endpoint}/ui/sessions?since=1h&user={user_hash('alice')}")
    page.fill("#apikey", ACME.key)
    page.press("#apikey", "Enter")
    row = page.locator("tr[data-conversation=conv-a]")
    row.wait_for()
    assert page.locator("tr[data-conversation]").count() == 1  # the user filter from the address
    assert row.locator("td[data-col=user]").inner_text() == user_hash("alice")[:12]
    assert row.locator("td[data-col=tasks]").inner_text() == "3"
    chips = row.locator("td[data-col=outcomes] [data-outcome]")
    assert {c.get_attribute("data-outcome"): c.inner_text() for c in chips.all()} == {
        "completed": "1 completed", "surfaced": "1 surfaced", "timed_out": "1 timed out"}
    # The conversation opens its turns, in order, as `spanhouse sessions conv-a` lists them.
    row.locator("td[data-col=conversation] button").click()
    page.wait_for_selector("tr[data-turn]")
    cli_turns = json_rows(cli(world, ACME, "conv-a", "--format", "json"))
    shown = page.locator("tr[data-turns-of=conv-a] tr[data-turn]").all()
    assert [t.get_attribute("data-turn") for t in shown] == [t["trace_id"] for t in cli_turns]
    assert [t.locator("td[data-col=outcomes] [data-outcome]").get_attribute("data-outcome") for t in shown] == \
        [t["outcomes"][0] for t in cli_turns]
    assert [t.locator("td[data-col=tokens]").inner_text() for t in shown] == [f"{t['tokens']:,}" for t in cli_turns]
    row.locator("td[data-col=conversation] button").click()  # and closes them again
    assert page.locator("tr[data-turn]").count() == 0
    assert page.errors == []
