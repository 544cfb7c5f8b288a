"""GET /metrics: Prometheus text that agrees with /stats and with the spans real OTel exporters sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from access_harness import export, span_request
from collector_harness import RunningCollector, start_collector
from metrics_helpers import Samples, genai_spans, get, scrape, stats, value

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.metrics.exposition import SeriesCap
from spanhouse.collector.metrics.readiness import readiness
from spanhouse.collector.processors.genai_metrics import CALLS, OTHER, WIDTH, GenAIMetricsProcessor
from spanhouse.collector.writer.spool import Spool

MAX_SERIES = 4


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = start_collector(tmp_path_factory.mktemp("metrics") / "store", metrics={"max_series": MAX_SERIES})
    try:
        yield collector
    finally:
        collector.collector.stop()


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    try:
        earlier = value(before, name, **labels)
    except AssertionError:
        earlier = 0.0
    return value(after, name, **labels) - earlier


def test_scrape_agrees_with_stats_and_with_the_spans_the_grpc_exporter_sent(running: RunningCollector) -> None:
    before = scrape(running.query_endpoint)
    exporter = OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10)
    assert genai_spans(exporter, "billing", 7, error_every=3) is SpanExportResult.SUCCESS  # errors: spans 0, 3, 6
    running.flush()
    after, counters = scrape(running.query_endpoint), stats(running.query_endpoint)

    assert delta(after, before, "otelcol_receiver_accepted_spans_total", transport="grpc") == 7
    assert value(after, "otelcol_receiver_accepted_spans_total", transport="grpc") == \
        counters["receiver_spans_accepted_total"]
    assert value(after, "otelcol_receiver_refused_spans_total") == counters["receiver_spans_refused_total"] == 0
    assert delta(after, before, "otelcol_exporter_sent_spans_total") == 7
    assert value(after, "otelcol_exporter_sent_spans_total") == counters["writer_spans_written_total"]
    for processor in ("normalize", "redact", "price", "genai_metrics", "sample"):
        assert delta(after, before, "otelcol_processor_incoming_items_total", processor=processor) == 7
        assert value(after, "otelcol_processor_outgoing_items_total", processor=processor) == \
            counters[f"processor_{processor}_outgoing_items_total"]
    assert value(after, "spanhouse_spool_bytes") == counters["writer_spool_bytes"]
    assert value(after, "otelcol_process_uptime") > 0 and value(after, "otelcol_process_memory_rss") > 10 << 20
    assert value(after, "spanhouse_writer_insert_duration_seconds_count") >= 1

    billing = {"service": "billing", "provider": "openai", "model": "gpt-4o", "operation": "chat", "tenant": "default"}
    assert value(after, "spanhouse_genai_calls_total", **billing) == 7
    assert value(after, "spanhouse_genai_calls_total", **billing, status="error") == 3
    assert value(after, "spanhouse_genai_tokens_total", **billing, kind="input") == 7000
    assert value(after, "spanhouse_genai_tokens_total", **billing, kind="cached_input") == 1400
    assert value(after, "spanhouse_genai_tokens_total", **billing, kind="output") == 350
    ((stored_cost, calls),) = running.query(
        "SELECT sum(CostTotal), count() FROM genai_calls WHERE ServiceName = 'billing'")
    assert calls == 7 and stored_cost > 0
    assert value(after, "spanhouse_genai_cost_usd_total", **billing) == pytest.approx(stored_cost, rel=1e-9)
    assert value(after, "spanhouse_genai_call_duration_seconds_count", **billing) == 7
    assert value(after, "spanhouse_genai_time_to_first_token_seconds_bucket", **billing, le="0.25") == 0
    assert value(after, "spanhouse_genai_time_to_first_token_seconds_bucket", **billing, le="0.5") == 7


def test_otlp_http_spans_are_counted_under_their_transport(running: RunningCollector) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    before = scrape(running.query_endpoint)
    assert genai_spans(HttpExporter(endpoint=running.collector.http_url, timeout=10), "billing", 4) is \
        SpanExportResult.SUCCESS
    after = scrape(running.query_endpoint)
    assert delta(after, before, "otelcol_receiver_accepted_spans_total", transport="http") == 4
    assert delta(after, before, "otelcol_receiver_accepted_spans_total", transport="grpc") == 0
    assert value(after, "otelcol_receiver_accepted_spans_total", transport="http") == \
        stats(running.query_endpoint)["receiver_http_spans_accepted_total"]


def test_invalid_spans_are_refused_spans(running: RunningCollector) -> None:
    before = scrape(running.query_endpoint)
    request = span_request("refusals", 3)
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes(16)  # rejected: all-zero trace id
    response = export(running.grpc_endpoint, request)
    assert response.partial_success.rejected_spans == 1
    after = scrape(running.query_endpoint)
    assert delta(after, before, "otelcol_receiver_refused_spans_total", transport="grpc") == 1
    assert delta(after, before, "otelcol_receiver_accepted_spans_total", transport="grpc") == 2


def test_a_credential_in_a_span_counts_a_credential_class_redaction_hit(running: RunningCollector) -> None:
    before = scrape(running.query_endpoint)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    export(running.grpc_endpoint, span_request("leaky", 1, {"http.request.note": f"token {jwt}"}))
    after = scrape(running.query_endpoint)
    assert delta(after, before, "spanhouse_redaction_hits_total", rule="jwt", kind="credential") == 1
    assert value(after, "spanhouse_redaction_hits_total", rule="jwt") == \
        stats(running.query_endpoint)["redact_hits_jwt_total"]
    assert value(after, "spanhouse_redaction_hits_total", rule="email", kind="pii") >= 0  # PII rules: kind pii


def test_label_sets_past_max_series_are_counted_under_other(running: RunningCollector) -> None:
    for model in ("m-a", "m-b", "m-c", "m-d", "m-e", "m-f"):
        exporter = OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10)
        assert genai_spans(exporter, "cap", 2, model=model) is SpanExportResult.SUCCESS
    samples = scrape(running.query_endpoint)
    series = {ls for (name, ls), _ in samples.items() if name == "spanhouse_genai_calls_total"}
    named = [ls for ls in series if dict(ls)["model"] != "other"]
    assert len(named) == MAX_SERIES
    assert dict(next(ls for ls in series if dict(ls)["model"] == "other")) == dict(zip(
        ("model", "operation", "provider", "service", "status", "tenant"), ("other",) * 6))
    ((calls,),) = running.query("SELECT count() FROM genai_calls")
    assert value(samples, "spanhouse_genai_calls_total") == calls  # nothing lost by folding


def test_health_and_ready_answer_while_running(running: RunningCollector) -> None:
    assert get(running.query_endpoint, "/health")[:2] == (200, "ok\n")
    assert get(running.query_endpoint, "/ready")[:2] == (200, "ready\n")
    assert get(running.query_endpoint, "/nope")[0] == 404


# --- the parts on their own ---------------------------------------------------------------------

def chat_batch(models: list[str]) -> SpanBatch:
    n = len(models)
    return SpanBatch({"TenantId": ["t"] * n, "ServiceName": ["s"] * n, "StatusCode": ["Ok"] * n,
                      "Operation": ["chat"] * n, "Provider": ["p"] * n, "ResponseModel": models,
                      "Duration": [2_000_000_000] * n}, n)


def test_a_refused_request_is_not_counted_and_its_retry_is_counted_once() -> None:
    meter = GenAIMetricsProcessor(max_series=10)
    meter.process(chat_batch(["a", "a"]))
    meter.settle(False)  # the writer was full: the client sends the same spans again
    assert meter.table.snapshot() == {}
    meter.process(chat_batch(["a", "a"]))
    meter.settle(True)
    ((key, values),) = meter.table.snapshot().items()
    assert key == ("t", "s", "p", "a", "chat", "ok") and values[CALLS] == 2


def test_the_cap_holds_in_each_process_and_in_the_merged_scrape() -> None:
    meter = GenAIMetricsProcessor(max_series=2)
    meter.process(chat_batch(["a", "b", "c", "d"]))
    meter.settle(True)
    snapshot = meter.table.snapshot()
    assert len(snapshot) == 3 and snapshot[OTHER][CALLS] == 2  # a, b, and c+d under other

    cap = SeriesCap(max_series=2)
    one = {("x",) * 6: [1.0] * WIDTH}
    two = {("y",) * 6: [1.0] * WIDTH, ("z",) * 6: [1.0] * WIDTH}
    first = cap.merge([one])
    assert set(first) == {("x",) * 6}
    merged = cap.merge([one, two])
    assert set(merged) == {("x",) * 6, ("y",) * 6, OTHER}
    # A series admitted once keeps its own line: its counter never moves into `other` and back.
    again = cap.merge([{("a",) * 6: [5.0] * WIDTH}, one, two])
    assert again[("x",) * 6][CALLS] == 1 and again[("y",) * 6][CALLS] == 1 and again[OTHER][CALLS] == 6


def test_ready_turns_unavailable_past_the_spool_high_water_mark(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=100_000)
    watched = SimpleNamespace(stopping=False, store=None, spool=spool,
                              pipeline=SimpleNamespace(writer=SimpleNamespace(stopping=False)))
    try:
        assert readiness(watched) == (True, "ready")
        while spool.bytes_used < 85_000:
            spool.append(b"x" * 5_000, 1)
        assert readiness(watched)[0]
        spool.append(b"x" * 6_000, 1)
        ready, reason = readiness(watched)
        assert not ready and "spool holds" in reason and "high-water" in reason
        watched.pipeline.writer.stopping = True
        assert readiness(watched) == (False, "not ready: the writer is draining")
        watched.stopping = True
        assert readiness(watched) == (False, "not ready: the collector is stopping")
    finally:
        spool.close()


def test_a_holding_samplers_later_releases_count_as_its_outgoing_items() -> None:
    import random

    from sampling_traffic import FakeClock, batch, trace

    from spanhouse.collector import config as config_mod
    from spanhouse.collector.pipeline import Pipeline
    from spanhouse.collector.processors.sampling import SampleProcessor
    from spanhouse.collector.receiver.decode import DecodeResult
    from spanhouse.collector.writer import BatchingWriter, InMemorySink

    cfg = config_mod.load(None, environ={}, overrides={"sampling": {"rate": 1.0, "keep_errors": True,
                                                                    "decision_wait_s": 10}}).sampling
    sampler = SampleProcessor(cfg, FakeClock())
    writer = BatchingWriter(InMemorySink(), max_wait_s=0.05, max_pending_rows=1000, max_batch_rows=100)
    pipeline = Pipeline([sampler], writer)
    try:
        spans = trace(random.Random(3))
        pipeline.consume(DecodeResult(batch(spans[1:])))  # no root yet: held
        held = pipeline.counters()
        assert held["processor_sample_incoming_items_total"] == len(spans) - 1
        assert held["processor_sample_outgoing_items_total"] == 0
        assert pipeline.release_held(everything=True, timeout_s=5.0) == 0
        released = pipeline.counters()
        assert released["processor_sample_outgoing_items_total"] == len(spans) - 1
    finally:
        writer.close(5.0)
