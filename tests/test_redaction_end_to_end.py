"""End to end: spans carrying the whole corpus, sent with the real OpenTelemetry SDK, never reach ClickHouse.

Every sensitive value goes into every place a span can hold a string (attributes,
JSON content, exception events, links, resource, name, status, the attributes
normalize copies to typed columns); then every column of every table in the
store is read back as text and searched for each value.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

CORPUS = json.loads((Path(__file__).parent / "redaction_corpus" / "corpus.json").read_text())
POSITIVES = [tuple(p) for p in CORPUS["positives"]]
TRAPS = [t[1] for t in CORPUS["traps"]]
RESOURCE_SECRETS = {"host.owner": "ops-lead@example.com", "deploy.token": POSITIVES[64][1],
                    "host.ip": "198.51.100.23"}


def _send(endpoint: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "redaction-e2e", **RESOURCE_SECRETS}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   max_export_batch_size=64))
    tracer = provider.get_tracer("redaction.e2e", "1.0.0")
    root = tracer.start_span("agent turn", attributes={"traps": json.dumps(TRAPS)})
    for i, (_, value, template) in enumerate(POSITIVES):
        text = template.replace("{}", value)
        messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]},
                               {"role": "assistant", "parts": [{"type": "tool_call", "name": "lookup",
                                                                "arguments": json.dumps({"query": text})}]}],
                              ensure_ascii=i % 2 == 0)
        with trace.use_span(root, end_on_exit=False):
            span = tracer.start_span(f"chat {text}", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 120 + i, "gen_ai.usage.output_tokens": 30,
                "gen_ai.input.messages": messages, "user.note": text,
                "gen_ai.conversation.id": text, "gen_ai.agent.name": text, "gen_ai.agent.id": text,
                "gen_ai.tool.name": text, "gen_ai.tool.call.id": text, "gen_ai.response.id": text,
                "error.type": text, "gen_ai.response.finish_reasons": ["stop", text],
                "trap": TRAPS[i % len(TRAPS)],
            }, links=[Link(root.get_span_context(), {"link.note": text})])
            span.record_exception(ValueError(f"lookup failed for {text}"))
            span.add_event(text, {"detail": text})
            span.set_status(Status(StatusCode.ERROR, f"failed: {text}"))
            span.end()
    root.end()
    assert provider.force_flush(30_000)
    provider.shutdown()


def _stored_text(running) -> str:
    """Every column of every table, as ClickHouse renders it to text."""
    tables = [r[0] for r in running.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine != 'MaterializedView'")]
    assert {"spans", "genai_calls", "spans_trace_id_ts", "genai_usage_1m", "genai_usage_1h"} <= set(tables)
    out = []
    for table in tables:
        columns = [r[0] for r in running.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s", {"t": table})]
        select = ", ".join(f"toString(`{c}`)" for c in columns)
        for row in running.query(f"SELECT {select} FROM `{table}`"):
            out.extend(v for v in row if v is not None)  # NULL: nothing stored
    return "\n".join(out)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory):
    from collector_harness import start_collector

    running = start_collector(tmp_path_factory.mktemp("redaction-e2e"))
    try:
        _send(running.grpc_endpoint)
        deadline = time.monotonic() + 60
        while running.query("SELECT count() FROM spans")[0][0] < len(POSITIVES) + 1:
            assert time.monotonic() < deadline, "spans did not arrive within 60 s"
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://{running.query_endpoint}/stats", timeout=30) as response:
            stats = json.loads(response.read())
        yield running, _stored_text(running), stats
    finally:
        running.collector.stop()


def _forms(value: str) -> set[str]:
    """The value, and how it reads once JSON-escaped (with and without non-ASCII escapes)."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
            json.dumps(json.dumps(value))[1:-1]}


def test_no_sensitive_value_in_any_column_of_any_table(stored):
    _, text, _ = stored
    assert "gpt-4o-mini-2024-07-18" in text  # the read-back sees the rows at all
    leaked = [(detector, value) for detector, value, _ in POSITIVES for form in _forms(value) if form in text]
    leaked += [(key, value) for key, value in RESOURCE_SECRETS.items() if value in text]
    assert not leaked


def test_traps_and_structure_survive(stored):
    running, _, _ = stored
    rows = running.query("SELECT SpanAttributes['trap'], SpanAttributes['gen_ai.input.messages'], "
                         "SpanAttributes['spanhouse.redaction.rules'], ResourceAttributes['service.name'], "
                         "SpanAttributes['traps'] FROM spans ORDER BY Timestamp")
    root_traps = [r[4] for r in rows if r[4]]
    assert json.loads(root_traps[0]) == TRAPS
    chats = [r for r in rows if r[1]]
    assert len(chats) == len(POSITIVES)
    assert {r[0] for r in chats} <= set(TRAPS) and len({r[0] for r in chats}) > 1
    for _, messages, rules, service, _ in chats:
        parsed = json.loads(messages)
        json.loads(parsed[1]["parts"][0]["arguments"])  # JSON inside JSON stays valid too
        assert rules and service == "redaction-e2e"
    calls = running.query("SELECT count(), sum(InputTokens), uniqExact(ConversationId) FROM genai_calls")
    assert calls[0][0] == len(POSITIVES)
    assert calls[0][1] == sum(120 + i for i in range(len(POSITIVES)))


def test_every_detector_is_counted_and_credentials_apart(stored):
    _, _, stats = stored
    for detector in {p[0] for p in POSITIVES}:
        assert stats[f"redact_hits_{detector}_total"] > 0, detector
    assert stats["redact_spans_redacted_total"] >= len(POSITIVES)
    credential = sum(v for k, v in stats.items() if k.startswith("redact_hits_") and any(
        name in k for name in ("api_key", "aws_", "token", "jwt", "private_key", "password", "secret",
                               "mask_keys")))
    assert stats["redact_credential_hits_total"] == credential

