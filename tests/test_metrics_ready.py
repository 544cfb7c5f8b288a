"""GET /ready while the store is down and while the collector drains on shutdown; what /metrics shows meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from collector_harness import start_collector
from faults import GatedSink
from metrics_helpers import genai_spans, get, scrape, value, wait_for

from spanhouse.collector.writer import ClickHouseSink


def test_ready_turns_unavailable_while_the_collector_drains(tmp_path: Path) -> None:
    sinks: list[GatedSink] = []

    def gated(store: object) -> GatedSink:
        sinks.append(GatedSink(ClickHouseSink(store)))
        return sinks[-1]

    running = start_collector(tmp_path / "store", sink_factory=gated, metrics={"endpoint": "127.0.0.1:0"},
                              writer={"shutdown_timeout_s": 3.0, "retry_initial_s": 0.05, "retry_max_s": 0.2})
    listener = f"127.0.0.1:{running.collector.metrics_server.port}"
    stopper: threading.Thread | None = None
    try:
        assert get(listener, "/ready")[:2] == (200, "ready\n")
        sinks[0].closed = True  # the store goes down: accepted spans wait in the spool
        exporter = OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=10)
        assert genai_spans(exporter, "drained", 9) is SpanExportResult.SUCCESS
        sinks[0].wait_for(lambda sink: sink.attempts >= 2)

        samples = scrape(listener)
        assert value(samples, "otelcol_receiver_accepted_spans_total") == 9
        assert value(samples, "otelcol_exporter_sent_spans_total") == 0
        assert value(samples, "spanhouse_writer_spans_pending") == 9
        assert value(samples, "spanhouse_writer_insert_errors_total") >= 1
        assert 0 < value(samples, "otelcol_exporter_queue_size") == value(samples, "spanhouse_spool_bytes")
        assert value(samples, "spanhouse_writer_insert_duration_seconds_count") >= 2  # failed attempts too
        # Still ready: the spool is far below its high-water mark and takes what clients send.
        assert get(listener, "/ready")[:2] == (200, "ready\n")

        lost: list[int] = []
        stopper = threading.Thread(target=lambda: lost.append(running.collector.stop()))
        stopper.start()
        status, body, _ = wait_for(lambda: (answer := get(listener, "/ready"))[0] == 503 and answer, 10,
                                   "/ready to answer 503 while draining")
        assert body == "not ready: the collector is stopping\n"
        assert get(listener, "/health")[:2] == (200, "ok\n")  # alive all the same
        stopper.join(30)
        assert not stopper.is_alive() and lost == [0]  # the unwritten spans stay in the spool
    finally:
        if stopper is None:
            running.collector.stop()


def test_spans_refused_for_backpressure_are_counted_and_their_calls_are_not(tmp_path: Path) -> None:
    import grpc
    import pytest
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from access_harness import export, span_request
    from collector_harness import start_memory_collector

    from spanhouse.collector.writer import InMemorySink

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = generate_latest(collector.metrics.registry).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    sink = GatedSink(InMemorySink())
    sink.closed = True  # nothing is written: memory (3 spans, no spool) fills
    collector = start_memory_collector(tmp_path / "memory", sink)
    endpoint = f"127.0.0.1:{collector.grpc_port}"
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}
    try:
        export(endpoint, span_request("busy", 3, chat))
        with pytest.raises(grpc.RpcError) as refused:
            export(endpoint, span_request("busy", 2, chat))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        now = samples()
        assert value(now, "otelcol_receiver_accepted_spans_total", transport="grpc") == 3
        assert value(now, "otelcol_receiver_refused_spans_total", transport="grpc") == 2
        assert value(now, "spanhouse_genai_calls_total", service="busy") == 3  # the refused request's calls: not
        assert value(now, "otelcol_exporter_queue_size") == value(now, "otelcol_exporter_queue_capacity") == 3
        sink.closed = False
        assert collector.flush(30.0)
        assert value(samples(), "otelcol_exporter_sent_spans_total") == 3
    finally:
        collector.stop()
