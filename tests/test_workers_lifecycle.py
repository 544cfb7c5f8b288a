"""Worker processes' lifecycle: backpressure through the workers, a worker killed with SIGKILL restarted without
losing acknowledged spans, clean shutdown on SIGTERM, a port never shared with another server, bad counts."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError
from spanhouse.collector.component import ListenError
from spanhouse.collector.workers import owner, ports

from access_harness import export, span_request
from collector_harness import RunningCollector, free_port, start_collector
from collector_process import CollectorProcess
from durability_helpers import StoreGate, genai_request, missing_span_ids, table_counts, wait_until

OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # not the connection other channels share


def test_a_full_writer_answers_unavailable_with_retry_info_through_the_workers(tmp_path: Path) -> None:
    gates: list[Any] = []

    def gated(store: Any) -> Any:
        gates.append(StoreGate(store))
        gates[0].closed = True
        return gates[0]

    running = start_collector(tmp_path / "store", sink_factory=gated, receiver={"processes": 2},
                              spool={"enabled": False},
                              writer={"max_batch_rows": 100, "max_pending_rows": 100, "retry_initial_s": 0.02,
                                      "retry_max_s": 0.1})
    try:
        with grpc.insecure_channel(running.grpc_endpoint, options=OWN_CONNECTION) as channel:
            call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            payload, first = genai_request(100)
            call(payload, timeout=30)
            with pytest.raises(grpc.RpcError) as busy:
                call(genai_request(50)[0], timeout=30)
            assert busy.value.code() == grpc.StatusCode.UNAVAILABLE
            retry = dict(busy.value.trailing_metadata())["google.rpc.retryinfo-bin"]
            assert RetryInfo.FromString(retry).retry_delay.ToNanoseconds() > 0
            gates[0].closed = False
            running.flush()
            payload, second = genai_request(50)
            call(payload, timeout=30)
        assert not missing_span_ids(running.query, first + second)
        assert running.query("SELECT count() FROM spans") == [(150,)]
    finally:
        gates[0].closed = False
        running.collector.stop()


def test_head_sampling_runs_in_the_workers_and_every_call_still_reaches_genai_calls(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", receiver={"processes": 2}, sampling={"rate": 0.5})
    try:
        assert running.collector.pipeline.handoff_processors == []  # type: ignore[union-attr]
        for _ in range(4):
            export(running.grpc_endpoint, span_request("head-app", 100), options=OWN_CONNECTION)
        ((stored, rate),) = running.query("SELECT count(), any(SampleRate) FROM spans")
        assert 100 < stored < 300 and rate == 0.5
        wait_until(lambda: running.collector.counters().get("sample_spans_kept_total") == stored,
                   what="the workers' sampler counters")
        assert running.collector.counters()["sample_spans_sampled_out_total"] == 400 - stored
    finally:
        running.collector.stop()


def worker_pids(running: RunningCollector) -> list[int]:
    return [w.proc.pid for w in running.collector.receiver._workers.values()]


def test_a_worker_killed_with_sigkill_is_restarted_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    running = start_collector(tmp_path / "store", receiver={"processes": 2})
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def client() -> None:
        with grpc.insecure_channel(running.grpc_endpoint, options=OWN_CONNECTION) as channel:
            call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            while not stop.is_set():
                payload, ids = genai_request(20)
                try:
                    call(payload, timeout=10)
                except grpc.RpcError as exc:  # the killed worker's calls fail: not acknowledged
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                        errors.append(exc)
                    continue
                with lock:
                    acknowledged.extend(ids)

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(acknowledged) >= 400, what="spans acknowledged before the kill")
        victim = worker_pids(running)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: running.collector.counters()["workers_restarted_total"] == 1, what="a restart")
        wait_until(lambda: running.collector.counters()["workers_running"] == 2 and victim not in worker_pids(running),
                   what="a new worker")
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= count + 400, what="spans acknowledged after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert not errors, errors[0]
        assert not missing_span_ids(running.query, acknowledged)
        counts = table_counts(running.query)
        # A call cut by the kill may have reached the spool without its OK: stored, never twice.
        assert counts["spans"] == counts["spans_distinct"] >= len(acknowledged)
        assert counts == dict.fromkeys(counts, counts["spans"]), counts
    finally:
        assert running.collector.stop() == 0


def test_sigterm_stops_the_workers_then_writes_everything(tmp_path: Path) -> None:
    store = tmp_path / "store"
    collector = CollectorProcess(store, env={"SPANHOUSE_RECEIVER__PROCESSES": "2"})
    try:
        with open(f"/proc/{collector.proc.pid}/task/{collector.proc.pid}/children") as f:
            workers = [int(pid) for pid in f.read().split()]
        assert len(workers) == 2
        sent: list[str] = []
        with grpc.insecure_channel(collector.grpc_endpoint, options=OWN_CONNECTION) as channel:
            call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            for _ in range(5):
                payload, ids = genai_request(30)
                call(payload, timeout=30)
                sent.extend(ids)
        assert collector.terminate() == 0
        assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")], "workers left running"
        assert "collector stopped (0 spans lost)" in collector.stderr()
    finally:
        collector.stop()
    from spanhouse.collector.store import Store

    opened = Store.open(f"chdb://{store}")
    try:
        assert not missing_span_ids(opened.query_rows, sent)
        assert opened.query_rows("SELECT count() FROM genai_calls") == [(150,)]
    finally:
        opened.close()


def test_a_port_in_use_stops_start_up_and_a_reuseport_server_never_shares_it_silently(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    other = grpc.server(futures.ThreadPoolExecutor(1))  # grpcio's default: SO_REUSEPORT on
    assert other.add_insecure_port(f"127.0.0.1:{port}") == port
    other.start()
    try:
        assert ports.foreign_listeners(port, [os.getpid()]) == 0
        assert ports.foreign_listeners(port, []) >= 1
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}.*address in use"):
            start_collector(tmp_path / "store", receiver={"processes": 2, "grpc": {"endpoint": f"127.0.0.1:{port}"}})
    finally:
        other.stop(0)
    # ... a one-process collector cannot join the workers' port, and a server that joins with SO_REUSEPORT
    # after start-up is reported
    monkeypatch.setattr(owner, "PORT_CHECK_INTERVAL_S", 0.05)
    running = start_collector(tmp_path / "store", receiver={"processes": 2})
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                probe.bind(("127.0.0.1", running.collector.grpc_port))
        assert running.collector.counters()["workers_port_foreign_listeners"] == 0
        intruder = grpc.server(futures.ThreadPoolExecutor(1))
        assert intruder.add_insecure_port(f"127.0.0.1:{running.collector.grpc_port}")
        intruder.start()
        try:
            with caplog.at_level(logging.ERROR, logger="spanhouse.workers"):
                wait_until(lambda: running.collector.counters()["workers_port_foreign_listeners"] == 1,
                           what="the port check to see the intruder")
            assert "another process now also listens on the OTLP/gRPC port" in caplog.text
        finally:
            intruder.stop(0)
    finally:
        running.collector.stop()


@pytest.mark.parametrize(("value", "message"), [
    (0, "receiver.processes: must be between 1 and 64"),
    (65, "receiver.processes: must be between 1 and 64"),
    ("two", "receiver.processes: expected int"),
])
def test_bad_process_counts_are_refused_naming_the_key(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_mod.load(None, environ={}, overrides={"receiver": {"processes": value}})
    assert config_mod.load(None, environ={"SPANHOUSE_RECEIVER__PROCESSES": "3"}).receiver.processes == 3
