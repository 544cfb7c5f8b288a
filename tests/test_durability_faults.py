"""Every span a client got OK for is in ClickHouse, exactly once, after the store was down, slow,
the collector was killed with SIGKILL mid-ingest, or the spool's disk was full (see docs/durability.md)."""

from __future__ import annotations

import errno
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo

from spanhouse.collector import config as config_mod
from spanhouse.collector.query import client as query_client

from collector_harness import RunningCollector, start_collector
from collector_process import CollectorProcess
from faults import GatedSink

from durability_helpers import (
    OkCounter,
    StoreGate,
    genai_request,
    missing_span_ids,
    table_counts,
    wait_until,
)

FAST_RETRY = {"max_wait_s": 0.05, "retry_initial_s": 0.02, "retry_max_s": 0.2}


class GatedCollectors:
    """Collectors started on one store directory, each with the real store behind a StoreGate."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.gate: GatedSink | None = None
        self.running: RunningCollector | None = None

    def start(self, closed: bool = False, delay_s: float = 0.0, **overrides: Any) -> RunningCollector:
        def gated(store: Any) -> GatedSink:
            self.gate = StoreGate(store)
            self.gate.closed, self.gate.delay_s = closed, delay_s
            return self.gate

        overrides["writer"] = {**FAST_RETRY, **overrides.get("writer", {})}
        self.running = start_collector(self.data_dir / "store", sink_factory=gated, **overrides)
        return self.running

    def stop(self) -> int:
        assert self.running is not None
        lost = self.running.collector.stop()
        self.running = None
        return lost


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[GatedCollectors]:
    made = GatedCollectors(tmp_path)
    yield made
    if made.running is not None:
        if made.gate is not None:
            made.gate.closed, made.gate.delay_s = False, 0.0
        made.stop()


def assert_stored_exactly_once(running: RunningCollector, acknowledged: list[str]) -> None:
    assert acknowledged, "the test sent nothing that was acknowledged"
    missing = missing_span_ids(running.query, acknowledged)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans are not stored"
    counts = table_counts(running.query)
    assert counts == dict.fromkeys(counts, len(acknowledged)), counts


def send_all(client: OkCounter, requests: int, spans: int) -> None:
    for _ in range(requests):
        payload, ids = genai_request(spans)
        assert client.send(payload, ids), client.refusals[-1].details()


# --- (a) store unavailable, then restored ------------------------------------------------------------


def test_spans_acknowledged_while_the_store_refuses_connections_are_stored_once_it_is_back(
        collectors: GatedCollectors) -> None:
    running = collectors.start(closed=True)
    gate = collectors.gate
    assert gate is not None
    client = OkCounter(running.grpc_endpoint)
    try:
        send_all(client, requests=20, spans=25)  # every request answered OK although nothing can be inserted
        assert gate.wait_for(lambda g: g.attempts >= 3), "the writer should keep retrying"
        assert gate.inserts == 0
        stats = running.collector.pipeline.counters()  # type: ignore[union-attr]
        assert stats["writer_write_errors_total"] >= 2 and stats["writer_spans_pending"] == 500

        gate.closed = False
        assert_stored_exactly_once(running, client.acknowledged)
    finally:
        client.close()


def test_spans_acknowledged_during_an_outage_survive_a_restart_of_the_collector(
        collectors: GatedCollectors) -> None:
    running = collectors.start(closed=True, writer={"shutdown_timeout_s": 0.5})
    client = OkCounter(running.grpc_endpoint)
    send_all(client, requests=8, spans=30)
    client.close()
    assert collectors.stop() == 0  # not lost: left in the spool
    assert collectors.gate is not None and collectors.gate.inserts == 0

    restarted = collectors.start()  # the store answers again
    assert restarted.collector.pipeline.counters()["writer_spans_pending"] in range(1, 241)  # type: ignore[union-attr]
    assert_stored_exactly_once(restarted, client.acknowledged)


# --- (b) a slow store --------------------------------------------------------------------------------


def test_a_slow_store_neither_loses_spans_nor_grows_memory_past_its_bound(collectors: GatedCollectors) -> None:
    running = collectors.start(delay_s=0.3, writer={"max_batch_rows": 100, "max_pending_rows": 100})
    client = OkCounter(running.grpc_endpoint)
    peak_in_memory = 0
    try:
        senders = [threading.Thread(target=send_all, args=(client, 15, 20)) for _ in range(4)]
        for sender in senders:
            sender.start()
        while any(s.is_alive() for s in senders):
            counters = running.collector.pipeline.counters()  # type: ignore[union-attr]
            peak_in_memory = max(peak_in_memory, counters["writer_spans_in_memory"])
            time.sleep(0.01)
        assert len(client.acknowledged) == 1200  # answered at spool speed, not at the store's
        assert running.collector.pipeline.counters()["writer_spans_pending"] > 100  # type: ignore[union-attr]
        assert peak_in_memory <= 100
        assert_stored_exactly_once(running, client.acknowledged)
    finally:
        client.close()


def test_shutdown_with_a_slow_store_ends_within_its_timeout_and_keeps_the_rest_in_the_spool(
        collectors: GatedCollectors) -> None:
    # No pacing: the clients must be able to get ahead of the slow store, so that a backlog is left.
    running = collectors.start(delay_s=1.0, writer={"max_batch_rows": 50, "max_pending_rows": 50,
                                                    "shutdown_timeout_s": 1.0, "pace_wait_s": 0})
    client = OkCounter(running.grpc_endpoint)
    send_all(client, requests=12, spans=25)
    client.close()
    started = time.monotonic()
    assert collectors.stop() == 0
    assert time.monotonic() - started < 1.0 + 5.0 + 3.0  # timeout + receiver grace + the insert under way
    writer = running.collector.pipeline.writer  # type: ignore[union-attr]
    assert writer.spans_left_in_spool > 0

    restarted = collectors.start()
    assert_stored_exactly_once(restarted, client.acknowledged)


# --- (c) SIGKILL mid-ingest ----------------------------------------------------------------------------


def test_spans_acknowledged_before_a_sigkill_mid_ingest_are_stored_after_a_restart(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    env = {"SPANHOUSE_WRITER__MAX_BATCH_ROWS": "400", "SPANHOUSE_WRITER__MAX_WAIT_S": "0.3"}
    collector = CollectorProcess(store_dir, "127.0.0.1:0", env=env)
    query_endpoint = collector.query_endpoint
    client = OkCounter(collector.grpc_endpoint)
    stop = threading.Event()

    def send_until_stopped() -> None:
        while not stop.is_set():
            payload, ids = genai_request(40)
            try:
                client.send(payload, ids, timeout_s=5.0)
            except grpc.RpcError:  # the collector vanished under the call: not acknowledged
                pass

    senders = [threading.Thread(target=send_until_stopped) for _ in range(3)]
    try:
        for sender in senders:
            sender.start()
        # Kill once inserts are under way and more spans are acknowledged than written.
        wait_until(lambda: stats(query_endpoint)["writer_spans_written_total"] >= 800, 60.0, "800 written spans")
        wait_until(lambda: len(client.acknowledged) >= 2000, 60.0, "2000 acknowledged spans")
        collector.proc.kill()  # SIGKILL while requests and inserts are under way
        collector.proc.wait(30)
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
        client.close()
        collector.stop()
    acknowledged = list(client.acknowledged)

    restarted = CollectorProcess(store_dir, "127.0.0.1:0", env=env)
    try:
        cfg = config_mod.load(None, environ={}, overrides={"store": {"url": f"chdb://{store_dir}"},
                                                             "query": {"endpoint": restarted.query_endpoint}})
        query_client.flush(cfg)

        def query(sql: str) -> list[tuple[Any, ...]]:
            raw = query_client.run(cfg, sql, "JSONCompact")
            return [tuple(row) for row in json.loads(raw)["data"]]

        missing = missing_span_ids(query, acknowledged)
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans lost by the SIGKILL"
        counts = {k: int(v) for k, v in table_counts(query).items()}
        # Spans the collector stored but whose OK never reached the client are there too, once each.
        assert counts == dict.fromkeys(counts, counts["spans_distinct"]), counts
        assert counts["spans"] >= len(acknowledged)
    finally:
        assert restarted.terminate() == 0
        restarted.stop()


def stats(query_endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{query_endpoint}/stats", timeout=10) as response:
        return json.loads(response.read())


# --- (d) the spool's disk is full ----------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 1 MiB tmpfs where mounting is allowed (root), else None: the test then injects ENOSPC."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0
    yield mount_point if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_spool_disk_refuses_with_retry_info_never_crashes_and_loses_nothing(
        collectors: GatedCollectors, tiny_disk: Path | None, tmp_path: Path) -> None:
    spool_dir = (tiny_disk or tmp_path / "spool") / "spool"
    running = collectors.start(closed=True, spool={"directory": str(spool_dir)})
    full = threading.Event()
    if tiny_disk is None:  # no tmpfs here: fail writes at the spool's file-write seam past 1 MiB
        spool = running.collector.spool
        real_write = spool._write

        def write_to_a_1_mib_disk(fd: int, data: bytes) -> None:
            if full.is_set() or sum(spool._sizes.values()) + len(data) > 1 << 20:
                full.set()
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write(fd, data)

        spool._write = write_to_a_1_mib_disk
    client = OkCounter(running.grpc_endpoint)
    try:
        for _ in range(200):
            payload, ids = genai_request(100)  # ~100 KB per request
            if not client.send(payload, ids):
                break
        else:
            pytest.fail("a 1 MiB spool disk took 200 requests of 100 KB")
        refusal = client.refusals[-1]
        assert refusal.code() == grpc.StatusCode.UNAVAILABLE
        assert "disk full" in refusal.details() and str(spool_dir) in refusal.details()
        retry = dict(refusal.trailing_metadata())["google.rpc.retryinfo-bin"]
        assert RetryInfo.FromString(retry).retry_delay.ToNanoseconds() > 0
        assert len(client.acknowledged) >= 300
        payload, ids = genai_request(100)
        assert not client.send(payload, ids)  # still refused, still serving
        assert running.collector.pipeline.counters()["writer_spool_write_errors_total"] >= 2  # type: ignore[union-attr]

        full.clear()
        assert collectors.gate is not None
        collectors.gate.closed = False  # the store drains the spool and its segments are removed
        running.flush()
        send_all(client, requests=3, spans=100)  # room again
        assert_stored_exactly_once(running, client.acknowledged)
    finally:
        client.close()


# --- a real OTLP exporter meets backpressure -----------------------------------------------------------


def test_the_otel_sdk_exporter_refused_by_a_full_spool_retries_until_its_spans_are_stored(
        collectors: GatedCollectors) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    running = collectors.start(closed=True, spool={"max_size_mib": 1})
    client = OkCounter(running.grpc_endpoint)
    for spans in (100, 1):  # the store is down: fill the spool until it refuses even one span
        for _ in range(1000):
            payload, ids = genai_request(spans)
            if not client.send(payload, ids):
                break
    assert "spool.max_size_mib=1" in client.refusals[-1].details()

    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-retry"}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("durability").start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
    exporter = OTLPSpanExporter(endpoint=running.grpc_endpoint, insecure=True, timeout=30)
    results: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: results.append(exporter.export(finished.get_finished_spans())))
    pipeline = running.collector.pipeline
    assert pipeline is not None
    refused_before = pipeline.counters()["requests_refused_total"]
    try:
        sender.start()
        wait_until(lambda: pipeline.counters()["requests_refused_total"] > refused_before, 30.0,
                   "the exporter's first attempt to be refused")
        assert collectors.gate is not None
        collectors.gate.closed = False  # the store is back: the spool drains and has room again
        sender.join(60)
        assert results == [SpanExportResult.SUCCESS]
        assert running.query("SELECT count() FROM spans WHERE ServiceName = 'sdk-retry'") == [(1,)]
        assert_stored_exactly_once_by_service(running, client.acknowledged)
    finally:
        exporter.shutdown()
        client.close()


def assert_stored_exactly_once_by_service(running: RunningCollector, acknowledged: list[str]) -> None:
    """Like assert_stored_exactly_once, for the raw client's spans only (service durable-app)."""
    missing = missing_span_ids(running.query, acknowledged)
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged spans are not stored"
    assert running.query("SELECT count() FROM spans WHERE ServiceName = 'durable-app'") == [(len(acknowledged),)]
