"""Costs in the store: model_prices loading, and costs in genai_calls, spans, rollups and trace_costs."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from spanhouse.collector import config as config_mod
from spanhouse.collector.pricing import build_price_table, sync_model_prices
from spanhouse.collector.store import Store

from collector_harness import start_collector


def test_model_prices_load_once_and_reload_when_prices_change(tmp_path: Path) -> None:
    store = Store.open(f"chdb://{tmp_path / 'store'}")
    try:
        store.migrate()
        builtin = build_price_table(config_mod.load(None, environ={}).pricing)
        assert sync_model_prices(store, builtin) is True
        ((rows, checksums),) = store.query_rows("SELECT count(), uniqExact(TableChecksum) FROM model_prices")
        assert (rows, checksums) == (len(builtin.entries()), 1)
        assert store.migrate() == []
        assert sync_model_prices(store, builtin) is False  # same table: left alone
        assert store.query_rows("SELECT count() FROM model_prices") == [(rows,)]

        changed = build_price_table(config_mod.load(None, environ={}, overrides={"pricing": {"overrides": [
            {"provider": "openai", "model": "gpt-4o", "input": 1, "output": 4},
            {"provider": "", "model": "acme-llm", "input": 1, "output": 2, "cache_read": 0.5}]}}).pricing)
        assert sync_model_prices(store, changed) is True
        got = store.query_rows(
            "SELECT Provider, Model, InputPerMTok, OutputPerMTok, CacheReadPerMTok, CacheWritePerMTok, Origin "
            "FROM model_prices WHERE Model IN ('gpt-4o', 'acme-llm') ORDER BY Model")
        # gpt-4o's two built-in entries are replaced by the override; cache rates default to the input rate.
        assert got == [("", "acme-llm", 1.0, 2.0, 0.5, 1.0, "config"), ("openai", "gpt-4o", 1.0, 4.0, 1.0, 1.0, "config")]
        assert store.query_rows("SELECT count(), uniqExact(TableChecksum) FROM model_prices") == [(rows, 1)]
    finally:
        store.close()


def _send_agent_trace(endpoint: str, start_ns: int) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry import trace

    provider = TracerProvider(resource=Resource.create({"service.name": "agent-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{endpoint}", insecure=True)))
    tracer = provider.get_tracer("pricing.tests")
    agent = tracer.start_span("invoke_agent planner", start_time=start_ns, attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        # Usage an agent framework repeats from its children: must not be counted again.
        "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 300})
    with trace.use_span(agent, end_on_exit=False):
        for i, (model, response, tokens) in enumerate([
            ("gpt-4o", "gpt-4o-2024-08-06", {"gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 200,
                                             "gen_ai.usage.cache_read.input_tokens": 1000}),
            ("claude-haiku-4-5", "claude-haiku-4-5-20251001",
             {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
              "gen_ai.usage.cache_creation.input_tokens": 400}),
            ("in-house-llm", "", {"gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5}),
        ]):
            span = tracer.start_span(f"chat {model}", start_time=start_ns + (i + 1) * 10**8, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai" if "gpt" in model else "anthropic",
                "gen_ai.request.model": model, **({"gen_ai.response.model": response} if response else {}), **tokens})
            span.end(end_time=start_ns + (i + 2) * 10**8)
        tool = tracer.start_span("execute_tool search", start_time=start_ns + 5 * 10**8,
                                 attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
        tool.end(end_time=start_ns + 6 * 10**8)
    agent.end(end_time=start_ns + 10**9)
    provider.shutdown()


def test_costs_reach_calls_spans_rollups_and_trace_costs(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store")
    try:
        start = time.time_ns() - 60 * 10**9
        _send_agent_trace(running.grpc_endpoint, start)
        gpt = (1000 * 2.50 + 1000 * 1.25 + 200 * 10.00) / 1e6
        haiku = (600 * 1.00 + 400 * 1.25 + 100 * 5.00) / 1e6
        calls = dict(running.query("SELECT SpanName, CostTotal FROM genai_calls"))
        assert calls["chat gpt-4o"] == pytest.approx(gpt)
        assert calls["chat claude-haiku-4-5"] == pytest.approx(haiku)
        assert calls["chat in-house-llm"] is None
        assert calls["invoke_agent planner"] is None and calls["execute_tool search"] is None
        spans = dict(running.query("SELECT SpanName, CostTotal FROM spans WHERE Operation = 'chat'"))
        assert spans == {k: v for k, v in calls.items() if k.startswith("chat")}
        ((rollup_cost, priced, rolled_calls),) = running.query(
            "SELECT sum(CostTotal), sum(PricedCalls), sum(Calls) FROM genai_usage_1m WHERE Operation = 'chat'")
        assert (rollup_cost, priced, rolled_calls) == (pytest.approx(gpt + haiku), 2, 3)
        ((trace_cost, llm_calls, unpriced, input_tokens, tools),) = running.query(
            "SELECT sum(CostTotal), sum(LlmCalls), sum(UnpricedCalls), sum(InputTokens), groupUniqArrayArray(Tools) "
            "FROM trace_costs GROUP BY TenantId, TraceId")
        assert trace_cost == pytest.approx(gpt + haiku)
        assert (llm_calls, unpriced, input_tokens, tools) == (3, 1, 2000 + 1000 + 50, ["search"])
        stats = running.collector.pipeline.counters()
        assert stats["price_calls_priced_total"] == 2 and stats["price_calls_unknown_model_total"] == 1
    finally:
        running.collector.stop()


def test_costs_recomputed_in_sql_match_the_collector(tmp_path: Path) -> None:
    from spanhouse.collector.query.queries import render

    running = start_collector(tmp_path / "store")
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"http://{running.grpc_endpoint}", insecure=True)))
        tracer = provider.get_tracer("pricing.tests")
        calls = [("openai", "gpt-4o", "gpt-4o-2024-08-06", 5000, 1000, 0, 300),
                 ("openai", "gpt-4o", "gpt-4o-2024-05-13", 800, 0, 0, 50),
                 ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 250_000, 20_000, 10_000, 900),
                 ("deepseek", "deepseek-chat", "", 3000, 2000, 0, 100)]
        for provider_name, model, response, inp, read, write, out in calls:
            span = tracer.start_span(f"chat {model}", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider_name,
                "gen_ai.request.model": model, "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
                "gen_ai.usage.cache_read.input_tokens": read, "gen_ai.usage.cache_creation.input_tokens": write,
                **({"gen_ai.response.model": response} if response else {})})
            span.end()
        provider.shutdown()
        running.flush()
        now = dt.datetime.now(dt.UTC)
        rows = running.query(render("recompute_costs", since=now - dt.timedelta(hours=1),
                                    until=now + dt.timedelta(hours=1)))
        assert len(rows) == len(calls)
        by_model = {r[1]: r for r in rows}
        assert by_model["gpt-4o-2024-05-13"][2] == "gpt-4o-2024-05-13"
        assert by_model["gpt-4o-2024-08-06"][2] == "gpt-4o"
        for _span, _model, _priced_as, _ts, stored, recomputed in rows:
            assert stored is not None and recomputed == pytest.approx(stored, rel=1e-12)
    finally:
        running.collector.stop()
