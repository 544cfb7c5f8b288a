"""Pricing: matching a call to a price, effective dates, cache tokens, unknown models, overrides."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from spanhouse.collector import config as config_mod
from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.config import ConfigError, PricingConfig
from spanhouse.collector.pricing import build_price_table, builtin_entries
from spanhouse.collector.processors.price import PriceProcessor

NOW_NS = dt.datetime(2025, 11, 1, tzinfo=dt.UTC).timestamp() * 1e9


def ns(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def price(rows: list[dict[str, Any]], pricing: PricingConfig | None = None) -> tuple[list[dict[str, Any]], PriceProcessor]:
    pricing = pricing or PricingConfig()
    processor = PriceProcessor(build_price_table(pricing), pricing.operations)
    defaults = {"Operation": "chat", "Provider": "", "RequestModel": "", "ResponseModel": "", "Timestamp": NOW_NS,
                "InputTokens": None, "OutputTokens": None, "CacheReadTokens": None, "CacheWriteTokens": None}
    filled = [{**defaults, **r} for r in rows]
    batch = SpanBatch({k: [int(r[k]) if k == "Timestamp" else r[k] for r in filled] for k in defaults}, len(rows))
    out = processor.process(batch)
    return [{k: out.columns[k][i] for k in out.columns} for i in range(out.size)], processor


def cost(provider: str, model: str, response_model: str = "", **tokens: int) -> float | None:
    rows, _ = price([{"Provider": provider, "RequestModel": model, "ResponseModel": response_model,
                      "InputTokens": 1_000_000, "OutputTokens": 0, **tokens}])
    return rows[0]["CostTotal"]


@pytest.mark.parametrize("provider, model, per_million_input", [
    pytest.param("openai", "gpt-4o", 2.50, id="exact"),
    pytest.param("openai", "gpt-4o-2024-08-06", 2.50, id="dated-snapshot"),
    pytest.param("openai", "gpt-4o-2024-05-13", 5.00, id="snapshot-with-its-own-price"),
    pytest.param("openai", "gpt-4o-mini-2024-07-18", 0.15, id="mini-snapshot-not-gpt-4o"),
    pytest.param("openai", "GPT-4o", 2.50, id="case-insensitive"),
    pytest.param("openai", "gpt-4-0613", 30.00, id="month-day-suffix"),
    pytest.param("anthropic", "claude-haiku-4-5-20251001", 1.00, id="anthropic-dated"),
    pytest.param("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", 3.00, id="bedrock-id"),
    pytest.param("aws.bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, id="bedrock-region-profile"),
    pytest.param("aws.bedrock", "amazon.nova-pro-v1:0", 0.80, id="bedrock-own-model"),
    pytest.param("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", 3.00, id="vertex-claude"),
    pytest.param("gcp.vertex_ai", "publishers/google/models/gemini-2.5-flash", 0.30, id="vertex-resource-path"),
    pytest.param("gcp.gemini", "gemini-2.0-flash-001", 0.10, id="gemini-revision"),
    pytest.param("azure.ai.openai", "gpt-4.1-2025-04-14", 2.00, id="azure-openai"),
    pytest.param("openai", "deepseek-chat", 0.28, id="deepseek-through-openai-sdk"),
    pytest.param("", "mistral-large-2411", 2.00, id="no-provider-mistral"),
    pytest.param("mistral_ai", "mistral-small-latest", 0.10, id="latest-alias"),
    pytest.param("cohere", "command-r-plus-08-2024", 2.50, id="cohere-month-year"),
    pytest.param("litellm", "openai/gpt-4o", 2.50, id="gateway-prefix"),
])
def test_model_names_match_their_price(provider: str, model: str, per_million_input: float) -> None:
    assert cost(provider, model) == pytest.approx(per_million_input)


def test_response_model_is_preferred_over_request_model() -> None:
    # An Azure deployment name as request model; the response names the real model.
    assert cost("azure.ai.openai", "prod-deployment", response_model="gpt-4o-mini-2024-07-18") == pytest.approx(0.15)
    # A response model with no price falls back to the request model.
    assert cost("openai", "gpt-4o", response_model="gpt-4o-ft-unknown-xyz") == pytest.approx(2.50)


def test_cached_tokens_are_taken_out_of_input_and_billed_at_their_own_rate() -> None:
    rows, processor = price([{"Provider": "anthropic", "ResponseModel": "claude-sonnet-4-5-20250929",
                              "InputTokens": 10_000, "CacheReadTokens": 6_000, "CacheWriteTokens": 3_000,
                              "OutputTokens": 500}])
    row = rows[0]
    assert row["CostInput"] == pytest.approx(1_000 * 3.00 / 1e6)
    assert row["CostCacheRead"] == pytest.approx(6_000 * 0.30 / 1e6)
    assert row["CostCacheWrite"] == pytest.approx(3_000 * 3.75 / 1e6)
    assert row["CostOutput"] == pytest.approx(500 * 15.00 / 1e6)
    assert row["CostTotal"] == pytest.approx((1_000 * 3.00 + 6_000 * 0.30 + 3_000 * 3.75 + 500 * 15.00) / 1e6)
    assert processor.counters()["calls_priced_total"] == 1


def test_cache_tokens_beyond_input_bill_no_negative_input() -> None:
    rows, processor = price([{"Provider": "openai", "RequestModel": "gpt-4o", "InputTokens": 100,
                              "CacheReadTokens": 400, "OutputTokens": 0}])
    assert rows[0]["CostInput"] == 0
    assert rows[0]["CostCacheRead"] == pytest.approx(400 * 1.25 / 1e6)
    assert processor.counters()["cache_tokens_exceed_input_total"] == 1


def test_model_without_cache_rate_bills_cached_tokens_at_input_rate() -> None:
    rows, _ = price([{"Provider": "mistral_ai", "RequestModel": "mistral-large-2411", "InputTokens": 1000,
                      "CacheReadTokens": 1000, "OutputTokens": 0}])
    assert rows[0]["CostCacheRead"] == pytest.approx(1000 * 2.00 / 1e6)


def test_long_context_tier_applies_to_the_whole_call() -> None:
    short = cost("gcp.gemini", "gemini-2.5-pro", InputTokens=200_000)
    long = cost("gcp.gemini", "gemini-2.5-pro", InputTokens=200_001)
    assert short == pytest.approx(200_000 * 1.25 / 1e6)
    assert long == pytest.approx(200_001 * 2.50 / 1e6)


def test_price_in_effect_at_the_span_time() -> None:
    rows, processor = price([
        {"Provider": "openai", "RequestModel": "o3", "InputTokens": 1_000_000, "Timestamp": ns("2025-05-01")},
        {"Provider": "openai", "RequestModel": "o3", "InputTokens": 1_000_000, "Timestamp": ns("2025-06-10")},
        {"Provider": "deepseek", "RequestModel": "deepseek-chat", "InputTokens": 1_000_000,
         "Timestamp": ns("2025-09-05") + 15 * 3600 * 10**9},
        {"Provider": "deepseek", "RequestModel": "deepseek-chat", "InputTokens": 1_000_000,
         "Timestamp": ns("2025-09-05") + 16 * 3600 * 10**9},
        {"Provider": "openai", "RequestModel": "o3", "InputTokens": 1_000_000, "Timestamp": ns("2024-01-01")},
    ])
    assert [r["CostTotal"] for r in rows[:4]] == pytest.approx([10.00, 2.00, 0.27, 0.56])
    assert rows[4]["CostTotal"] is None
    assert processor.counters()["calls_before_first_price_total"] == 1


def test_unknown_model_is_null_and_counted_never_zero() -> None:
    rows, processor = price([
        {"Provider": "openai", "RequestModel": "gpt-9-ultra", "InputTokens": 10, "OutputTokens": 5},
        {"Provider": "acme", "RequestModel": "", "InputTokens": 10},
        {"Provider": "openai", "RequestModel": "gpt-4o", "InputTokens": 0, "OutputTokens": 0},
    ])
    for row in rows[:2]:
        assert [row[c] for c in ("CostInput", "CostOutput", "CostCacheRead", "CostCacheWrite", "CostTotal")] == [
            None] * 5
    assert rows[2]["CostTotal"] == 0.0  # a known model with zero tokens really costs nothing
    assert processor.counters()["calls_unknown_model_total"] == 2


def test_agent_and_tool_spans_are_never_priced() -> None:
    usage = {"Provider": "openai", "RequestModel": "gpt-4o", "InputTokens": 1000, "OutputTokens": 100}
    rows, processor = price([{**usage, "Operation": "invoke_agent"}, {**usage, "Operation": "execute_tool"},
                             {**usage, "Operation": ""}, {**usage, "Operation": "chat"},
                             {**usage, "Operation": "embeddings", "RequestModel": "text-embedding-3-small"}])
    assert [r["CostTotal"] is None for r in rows] == [True, True, True, False, False]
    assert processor.counters()["calls_unknown_model_total"] == 0


def test_call_without_any_usage_stays_null() -> None:
    rows, processor = price([{"Provider": "openai", "RequestModel": "gpt-4o"}])
    assert rows[0]["CostTotal"] is None
    assert processor.counters()["calls_without_usage_total"] == 1


def test_overrides_replace_builtin_prices_and_add_models() -> None:
    pricing = config_mod.load(None, environ={}, overrides={"pricing": {
        "overrides": [
            {"provider": "azure.ai.openai", "model": "gpt-4o", "input": 2.75, "output": 11},
            {"provider": "", "model": "acme-llm", "effective": "2025-03-01", "input": 1, "output": 2},
            {"provider": "", "model": "acme-llm", "effective": "2025-06-01", "input": 0.5, "output": 1},
        ],
        "model_aliases": {"prod-chat": "gpt-4o-mini"},
    }}).pricing
    rows, _ = price([
        {"Provider": "azure.ai.openai", "ResponseModel": "gpt-4o-2024-11-20", "InputTokens": 10**6},
        {"Provider": "openai", "ResponseModel": "gpt-4o-2024-11-20", "InputTokens": 10**6},
        {"Provider": "acme", "RequestModel": "acme-llm", "InputTokens": 10**6, "Timestamp": ns("2025-04-01")},
        {"Provider": "acme", "RequestModel": "acme-llm", "InputTokens": 10**6, "Timestamp": ns("2025-07-01")},
        {"Provider": "acme", "RequestModel": "acme-llm", "InputTokens": 10**6, "Timestamp": ns("2025-01-01")},
        {"Provider": "azure.ai.openai", "RequestModel": "prod-chat", "InputTokens": 10**6},
    ], pricing)
    assert [r["CostTotal"] for r in rows] == pytest.approx([2.75, 2.50, 1.0, 0.5, None, 0.15])


def test_price_file_layers_over_builtin(tmp_path: Path) -> None:
    file = tmp_path / "negotiated.yaml"
    file.write_text("prices:\n  - {provider: anthropic, model: claude-haiku-4-5, effective: 2025-01-01, "
                    "input: 0.5, output: 2.5, source: contract}\n")
    pricing = config_mod.load(None, environ={}, overrides={"pricing": {"price_file": str(file)}}).pricing
    rows, _ = price([{"Provider": "anthropic", "RequestModel": "claude-haiku-4-5-20251001", "InputTokens": 10**6,
                      "CacheReadTokens": 10**6}], pricing)
    # The file's entry replaces the built-in one; with no cache_read rate, cached tokens bill at its input rate.
    assert rows[0]["CostTotal"] == pytest.approx(0.5)


@pytest.mark.parametrize("overrides, message", [
    pytest.param({"overrides": [{"model": "x", "output": 1}]}, "pricing.overrides[0].input: required",
                 id="missing-input"),
    pytest.param({"overrides": [{"model": "x", "input": -1, "output": 1}]},
                 "pricing.overrides[0].input: must be a finite number", id="negative"),
    pytest.param({"overrides": [{"model": "x", "input": "cheap", "output": 1}]},
                 "pricing.overrides[0].input: expected float", id="not-a-number"),
    pytest.param({"overrides": [{"input": 1, "output": 1}]}, "pricing.overrides[0].model: required",
                 id="missing-model"),
    pytest.param({"overrides": [{"model": "x", "input": 1, "output": 1, "effective": "next tuesday"}]},
                 "pricing.overrides[0].effective: expected a date", id="bad-date"),
    pytest.param({"overrides": [{"model": "x", "inptu": 1}]}, "pricing.overrides[0].inptu: unknown option",
                 id="typo"),
    pytest.param({"operations": ["chat", "invoke_agent"]}, "pricing.operations: 'invoke_agent'", id="agent-op"),
    pytest.param({"price_file": "/nonexistent/prices.yaml"}, "pricing.price_file: cannot read", id="no-file"),
    pytest.param({"model_aliases": {"prod": ""}}, "pricing.model_aliases.prod: must name a model",
                 id="empty-alias"),
])
def test_bad_pricing_configuration_names_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_mod.load(None, environ={}, overrides={"pricing": overrides})


@pytest.mark.parametrize("text, message", [
    pytest.param("prices: [\n", "is not valid YAML", id="yaml"),
    pytest.param("models: []\n", "expected a mapping with a `prices:` list", id="no-prices"),
    pytest.param("prices:\n  - {model: a, input: 1, output: 1, cost: 3}\n", r"prices\[0\]\.cost: unknown field",
                 id="unknown-field"),
    pytest.param("prices:\n  - {model: a, input: 1, output: 1}\n  - {model: a, input: 2, output: 2}\n",
                 r"prices\[1\] repeats", id="duplicate"),
    pytest.param("prices:\n  - {model: a, input: 1, output: 1, long_context: {above_input_tokens: 0}}\n",
                 "above_input_tokens: expected a positive integer", id="bad-tier"),
])
def test_bad_price_file_is_refused_at_start_up(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config_mod.load(None, environ={}, overrides={"pricing": {"price_file": str(file)}})


def test_builtin_table_covers_every_vendor_and_cites_sources() -> None:
    entries = builtin_entries()
    providers = {e.provider for e in entries}
    assert {"openai", "anthropic", "gcp.gemini", "mistral_ai", "cohere", "deepseek", "aws.bedrock"} <= providers
    assert all(e.source.startswith("https://") for e in entries)
    for e in entries:
        assert e.rates.output >= 0 and e.rates.input >= 0
        if e.rates.cache_read is not None:
            assert e.rates.cache_read <= e.rates.input, e



def test_pricing_can_be_turned_off_and_operations_set_from_the_environment() -> None:
    from spanhouse.collector.processors import registry

    off = config_mod.load(None, environ={"SPANHOUSE_PRICING__ENABLED": "false"})
    assert not any(isinstance(p, PriceProcessor) for p in registry.build(off).all)
    on = config_mod.load(None, environ={"SPANHOUSE_PRICING__OPERATIONS": "chat,embeddings"})
    (price_stage,) = [p for p in registry.build(on).all if isinstance(p, PriceProcessor)]
    assert price_stage.operations == {"chat", "embeddings"}
    rows, _ = price([{"Operation": "text_completion", "Provider": "openai", "RequestModel": "gpt-3.5-turbo-instruct",
                      "InputTokens": 10}], on.pricing)
    assert rows[0]["CostTotal"] is None
