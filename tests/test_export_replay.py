"""`spanhouse export` and `spanhouse replay` against a real collector (gRPC, OTLP/HTTP, query endpoint with API
keys, the embedded store): traces sent with the OpenTelemetry SDK come back as dataset records, OpenAI chat
examples and OTLP/JSON, confined to the caller's tenant; an exported trace replayed is stored again as the
same tree with new ids and recent times."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from access_harness import Key, auth_overrides
from collector_harness import RunningCollector, start_collector
from spanhouse.collector import cli

ACME, GLOBEX, LOSSY = Key.new("acme"), Key.new("globex"), Key.new("lossy")
ADMIN = Key.new("ops", admin=True)
HOUR_NS = 3600 * 10**9

SYSTEM = [{"type": "text", "content": "You are a concise support assistant."}]
TOOLS = [{"type": "function", "name": "get_order_status", "description": "Look up an order",
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}]
FIRST_INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Where is my order 4417?"}]}]
FIRST_OUTPUT = [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
    {"type": "tool_call", "id": "call_1", "name": "get_order_status", "arguments": {"order_id": "4417"}}]}]
SECOND_INPUT = [*FIRST_INPUT, *FIRST_OUTPUT,
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                            "response": {"status": "shipped"}}]}]
SECOND_OUTPUT = [{"role": "assistant", "finish_reason": "stop",
                  "parts": [{"type": "text", "content": "Order 4417 has shipped."}]}]


def send_agent_turn(endpoint: str, key: Key, service: str, start_ns: int, *, model: str = "gpt-4o") -> str:
    """One agent turn through the OpenTelemetry SDK's OTLP/gRPC exporter: invoke_agent -> chat (asks for a
    tool) -> execute_tool -> chat (answers), with a link and an event; returns the trace id."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://{endpoint}", insecure=True, headers={"authorization": f"Bearer {key.key}"})))
    tracer = provider.get_tracer("spanhouse.tests", "1.2.3")
    ms = 1_000_000
    root = tracer.start_span("invoke_agent support", kind=SpanKind.INTERNAL, start_time=start_ns,
                             attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    ctx = set_span_in_context(root)

    def chat(begin: int, end: int, inputs: Any, outputs: Any, finish: str, tokens: tuple[int, int, int],
             links: list[Any] | None = None) -> Any:
        span = tracer.start_span(f"chat {model}", context=ctx, kind=SpanKind.CLIENT, start_time=begin,
                                 links=links or [], attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
            "gen_ai.response.model": f"{model}-2024-08-06", "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 256, "gen_ai.request.top_p": 0.9, "gen_ai.request.seed": 42,
            "gen_ai.request.stop_sequences": ["END"], "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1], "gen_ai.usage.cache_read.input_tokens": tokens[2],
            "gen_ai.response.finish_reasons": [finish], "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.system_instructions": json.dumps(SYSTEM), "gen_ai.tool.definitions": json.dumps(TOOLS),
            "gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(outputs)})
        span.add_event("gen_ai.first_chunk", {"chunk.index": 0}, timestamp=begin + 250 * ms)
        span.end(end_time=end)
        return span

    first = chat(start_ns + 1 * ms, start_ns + 801 * ms, FIRST_INPUT, FIRST_OUTPUT, "tool_calls", (1200, 40, 200))
    tool = tracer.start_span("execute_tool get_order_status", context=ctx, kind=SpanKind.INTERNAL,
                             start_time=start_ns + 810 * ms, attributes={
                                 "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_order_status"})
    tool.set_status(Status(StatusCode.OK))
    tool.end(end_time=start_ns + 900 * ms)
    chat(start_ns + 910 * ms, start_ns + 1510 * ms, SECOND_INPUT, SECOND_OUTPUT, "stop", (1300, 12, 0),
         links=[Link(first.get_span_context(), {"link.reason": "follows tool call"})])
    root.end(end_time=start_ns + 1600 * ms)
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector with keys for three tenants (lossy keeps no span rows: sampling rate 0) and an admin."""
    overrides = auth_overrides(ACME, GLOBEX, LOSSY, ADMIN)
    collector = start_collector(tmp_path_factory.mktemp("export") / "store", **overrides,
                                sampling={"tenant_rates": {"lossy": 0.0}})
    try:
        yield collector
    finally:
        collector.collector.stop()


@pytest.fixture(scope="module")
def traces(running: RunningCollector) -> dict[str, str]:
    """name -> trace id: two acme turns (an hour ago, gpt-4o and gpt-4o-mini), one globex, one lossy."""
    now = time.time_ns()
    ids = {"acme": send_agent_turn(running.grpc_endpoint, ACME, "support-bot", now - HOUR_NS),
           "acme_mini": send_agent_turn(running.grpc_endpoint, ACME, "support-bot", now - HOUR_NS // 2,
                                        model="gpt-4o-mini"),
           "globex": send_agent_turn(running.grpc_endpoint, GLOBEX, "globex-bot", now - HOUR_NS),
           "lossy": send_agent_turn(running.grpc_endpoint, LOSSY, "lossy-bot", now - HOUR_NS)}
    running.flush()
    return ids


def spanhouse(running: RunningCollector, key: Key | None, *args: str, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`spanhouse ARGS` in this process against the collector's query endpoint, with `key` as the API key."""
    if key is None:
        monkeypatch.delenv("SPANHOUSE_API_KEY", raising=False)
    else:
        monkeypatch.setenv("SPANHOUSE_API_KEY", key.key)
    capsys.readouterr()
    code = cli.main([args[0], "--query-endpoint", running.query_endpoint, "--store", running.store_url, *args[1:]]
                    if args[0] == "export" else list(args))
    out, err = capsys.readouterr()
    return code, out, err


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_export_by_trace_id_gives_every_call_with_content_settings_tokens_and_cost(
        running: RunningCollector, traces: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spanhouse(running, ACME, "export", "--trace-id", traces["acme"], monkeypatch=monkeypatch,
                               capsys=capsys)
    assert code == 0, err
    records = lines(out)
    assert [r["operation"] for r in records] == ["invoke_agent", "chat", "execute_tool", "chat"]
    first, second = records[1], records[3]
    assert first["input_messages"] == FIRST_INPUT and first["output_messages"] == FIRST_OUTPUT
    assert second["input_messages"] == SECOND_INPUT and second["output_messages"] == SECOND_OUTPUT
    assert first["system_instructions"] == SYSTEM and first["tool_definitions"] == TOOLS
    assert first["request"] == {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 256, "top_p": 0.9,
                                "seed": 42, "stop_sequences": ["END"]}
    assert first["usage"] == {"input_tokens": 1200, "output_tokens": 40, "cache_read_input_tokens": 200,
                              "cache_write_input_tokens": None, "reasoning_output_tokens": None}
    assert first["finish_reasons"] == ["tool_calls"] and second["finish_reasons"] == ["stop"]
    # Exact numbers are genai_calls' own.
    ((cost, duration, ttft),) = running.query(
        "SELECT CostTotal, Duration, TimeToFirstToken FROM genai_calls WHERE SpanId = {s:String}",
        {"s": first["span_id"]})
    assert cost > 0 and first["cost_usd"]["total"] == pytest.approx(cost)
    assert first["cost_usd"]["input"] == pytest.approx(1000 * 2.5e-6)  # uncached input at gpt-4o's rate
    assert first["latency"] == {"duration_ms": duration / 1e6, "ttft_ms": pytest.approx(ttft * 1e3)}
    assert first["latency"]["duration_ms"] == 800.0
    assert (first["trace_id"], first["tenant"], first["service"], first["provider"]) == \
        (traces["acme"], "acme", "support-bot", "openai")
    assert first["parent_span_id"] == records[0]["span_id"] and records[0]["parent_span_id"] == ""
    assert first["response"]["model"] == "gpt-4o-2024-08-06" and first["span_kept"] is True
    assert first["resource"]["deployment.environment"] == "test"
    assert "4 calls written (records)" in err


def test_export_by_filters_reuses_the_traces_filters(running: RunningCollector, traces: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spanhouse(running, ACME, "export", "--model", "gpt-4o-mini-2024-08-06", "--since", "2h",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert {r["trace_id"] for r in lines(out)} == {traces["acme_mini"]}
    code, out, err = spanhouse(running, ACME, "export", "--tool", "get_order_status", "--since", "2h",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert {r["trace_id"] for r in lines(out)} == {traces["acme"], traces["acme_mini"]}
    code, out, err = spanhouse(running, ACME, "export", "--errors", "--since", "2h", monkeypatch=monkeypatch,
                               capsys=capsys)
    assert (code, out) == (1, "") and "no trace matched" in err
    code, out, err = spanhouse(running, ACME, "export", "--since", "50m", "--until", "20m", monkeypatch=monkeypatch,
                               capsys=capsys)
    assert {r["trace_id"] for r in lines(out)} == {traces["acme_mini"]}


def test_openai_chat_format_converts_parts_to_chat_messages(running: RunningCollector, traces: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spanhouse(running, ACME, "export", "--trace-id", traces["acme"], "--format", "openai-chat",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    first, second = lines(out)  # the two chat calls; invoke_agent and execute_tool are no chat examples
    assert "1 call left out of openai-chat: operation invoke_agent is not a chat call" in err
    assert "1 call left out of openai-chat: operation execute_tool is not a chat call" in err
    system = {"role": "system", "content": "You are a concise support assistant."}
    user = {"role": "user", "content": "Where is my order 4417?"}
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_order_status",
                                                          "arguments": '{"order_id": "4417"}'}}]}
    assert first["messages"] == [system, user, call]
    assert second["messages"] == [system, user, call,
                                  {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
                                  {"role": "assistant", "content": "Order 4417 has shipped."}]
    assert first["tools"] == [{"type": "function", "function": {
        "name": "get_order_status", "description": "Look up an order", "parameters": TOOLS[0]["parameters"]}}]
    meta = second["metadata"]
    assert (meta["trace_id"], meta["model"], meta["finish_reasons"]) == (traces["acme"], "gpt-4o-2024-08-06",
                                                                          ["stop"])
    assert meta["request"]["temperature"] == 0.2 and meta["usage"]["output_tokens"] == 12
    assert meta["cost_usd"] > 0


def test_a_tenant_cannot_export_another_tenants_trace(running: RunningCollector, traces: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("records", "otlp-json"):
        code, out, err = spanhouse(running, GLOBEX, "export", "--trace-id", traces["acme"], "--format", fmt,
                                   monkeypatch=monkeypatch, capsys=capsys)
        assert (code, out) == (1, ""), err
        assert f"trace {traces['acme']}: no" in err and "not visible to this API key" in err
    # Filters see the tenant's own traces only, whatever --tenant says.
    code, out, err = spanhouse(running, GLOBEX, "export", "--since", "2h", "--tenant", "acme",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert out == "" and code == 1
    code, out, err = spanhouse(running, GLOBEX, "export", "--since", "2h", monkeypatch=monkeypatch, capsys=capsys)
    assert {(r["trace_id"], r["tenant"]) for r in lines(out)} == {(traces["globex"], "globex")}


def test_where_is_refused_for_tenant_keys_and_runs_for_admins(running: RunningCollector, traces: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    condition = "SpanAttributes['gen_ai.request.model'] = 'gpt-4o-mini'"
    code, out, err = spanhouse(running, ACME, "export", "--where", condition, monkeypatch=monkeypatch,
                               capsys=capsys)
    assert (code, out) == (2, "")
    assert "--where is for admin keys only; SPANHOUSE_API_KEY is a key of tenant 'acme'" in err
    code, out, err = spanhouse(running, ADMIN, "export", "--where", condition, "--since", "2h",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert {r["trace_id"] for r in lines(out)} == {traces["acme_mini"]}
    code, out, err = spanhouse(running, ADMIN, "export", "--where", "1; DROP TABLE spans",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "--where: one SQL condition, without ';'" in err
    # Still under the read policy: a condition that writes or reads the host is refused by the endpoint.
    code, out, err = spanhouse(running, ADMIN, "export", "--where", "1 IN (SELECT 1 FROM file('/etc/passwd'))",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out == "", err


def test_calls_whose_span_row_was_sampled_out_are_exported_with_their_numbers(
        running: RunningCollector, traces: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spanhouse(running, LOSSY, "export", "--trace-id", traces["lossy"], monkeypatch=monkeypatch,
                               capsys=capsys)
    assert code == 0, err
    records = lines(out)
    assert len(records) == 4 and not any(r["span_kept"] for r in records)
    assert records[1]["usage"]["input_tokens"] == 1200 and records[1]["input_messages"] is None
    assert "has no span row (sampled out)" in err
    code, out, err = spanhouse(running, LOSSY, "export", "--trace-id", traces["lossy"], "--format", "openai-chat",
                               monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out) == (1, "") and "its span row was sampled out" in err


def test_export_refuses_mixed_selections_and_bad_ids(running: RunningCollector, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = spanhouse(running, ACME, "export", "--trace-id", "ab" * 16, "--model", "x",
                                monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "--trace-id names the traces itself; leave out --model" in err
    code, _out, err = spanhouse(running, ACME, "export", "--trace-id", "xyz", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "--trace-id: trace id: expected 32 hex digits, got 'xyz'" in err


def stored_tree(running: RunningCollector, trace_id: str) -> list[tuple[Any, ...]]:
    return running.query(
        "SELECT SpanId, ParentSpanId, SpanName, SpanKind, Duration, toUnixTimestamp64Nano(Timestamp), "
        "CAST(SpanAttributes, 'Map(String, String)'), CAST(ResourceAttributes, 'Map(String, String)'), "
        "ScopeName, ScopeVersion, StatusCode, Events.Name, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Links.TraceId, Links.SpanId, TenantId "
        "FROM spans WHERE TraceId = {t:String} ORDER BY Timestamp", {"t": trace_id})


def shape(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A trace's rows without ids and times: parent by name, plus everything that must survive a replay."""
    names = {row[0]: row[2] for row in rows}
    return [(names.get(row[1], ""), *row[2:5], row[6], row[7], *row[8:12],
             [e - row[5] for e in row[12]], [names.get(s) for s in row[14]], row[15]) for row in rows]


def test_an_exported_trace_replayed_is_stored_again_with_new_ids_and_recent_times(
        running: RunningCollector, traces: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trace.otlp.jsonl"
    code, _out, err = spanhouse(running, ACME, "export", "--trace-id", traces["acme"], "--format", "otlp-json",
                                "--output", str(path), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert len(path.read_text().splitlines()) == 1
    before = time.time_ns()
    code, out, err = spanhouse(running, ACME, "replay", str(path), "--endpoint", running.grpc_endpoint,
                               "--shift-to-now", "--new-ids", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out.startswith("replayed 1 trace, 4 spans to ")
    running.flush()
    (new_trace,) = [t for (t,) in running.query(
        "SELECT DISTINCT TraceId FROM spans WHERE TenantId = 'acme' AND TraceId NOT IN {old:Array(String)}",
        {"old": [traces["acme"], traces["acme_mini"]]})]
    original, replayed = stored_tree(running, traces["acme"]), stored_tree(running, new_trace)
    assert shape(replayed) == shape(original)
    assert not {r[0] for r in original} & {r[0] for r in replayed}
    latest_end = max(r[5] + r[4] for r in replayed)
    assert before - 5 * 10**9 <= latest_end <= time.time_ns()
    # The link from the second chat call to the first points at the replayed first call.
    (second,) = [r for r in replayed if r[13]]
    assert list(second[13]) == [new_trace] and second[14][0] in {r[0] for r in replayed}
    # The replayed calls are priced and counted like the original ones.
    assert running.query("SELECT count(), round(sum(CostTotal), 9) FROM genai_calls WHERE TraceId = {t:String}",
                         {"t": new_trace}) == \
        running.query("SELECT count(), round(sum(CostTotal), 9) FROM genai_calls WHERE TraceId = {t:String}",
                      {"t": traces["acme"]})


def test_repeat_sends_fresh_copies_and_needs_new_ids(running: RunningCollector, traces: dict[str, str],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mini.otlp.jsonl"
    assert spanhouse(running, ACME, "export", "--trace-id", traces["acme_mini"], "--format", "otlp-json",
                     "--output", str(path), monkeypatch=monkeypatch, capsys=capsys)[0] == 0
    code, out, err = spanhouse(running, ACME, "replay", str(path), "--endpoint", running.grpc_endpoint,
                               "--repeat", "3", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out) == (2, "")
    assert "--repeat 3 needs --new-ids" in err
    before = running.query("SELECT uniqExact(TraceId) FROM spans WHERE SpanName = 'chat gpt-4o-mini'")[0][0]
    code, out, err = spanhouse(running, GLOBEX, "replay", str(path), "--http", running.collector.http_url,
                               "--new-ids", "--repeat", "3", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out.startswith("replayed 3 traces, 12 spans to ")
    running.flush()
    assert running.query("SELECT uniqExact(TraceId) FROM spans WHERE SpanName = 'chat gpt-4o-mini'")[0][0] == \
        before + 3
    # The key decides the tenant: globex's key replayed acme's trace into globex.
    assert running.query("SELECT uniqExact(TraceId) FROM spans WHERE SpanName = 'chat gpt-4o-mini' "
                         "AND TenantId = 'globex'")[0][0] == 3
