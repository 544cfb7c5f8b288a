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
