"""The demo's traffic covers a provider besides OpenAI and Anthropic, shaped as our instrumentor records
it."""

from __future__ import annotations

from spanhouse.collector import demo


def test_demo_sends_priced_gemini_calls(running_collector):
    demo.send(running_collector.grpc_endpoint, traces=60)
    rows = running_collector.query(
        "SELECT Model, count(), countIf(StatusCode != 'Error' AND CostTotal IS NULL),"
        " countIf(ReasoningTokens > 0) FROM genai_calls"
        " WHERE Provider = 'gcp.gemini' AND Operation = 'generate_content' GROUP BY Model")
    assert [r[0] for r in rows] == ["gemini-2.5-flash"]
    (_, calls, unpriced, with_reasoning), = rows
    assert calls > 0 and unpriced == 0  # every successful call is priced from the price table
    assert with_reasoning > 0
