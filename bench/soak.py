"""Soak: a steady load at 80% of measured capacity while the store fails and recovers; nothing acknowledged is lost.

    python bench/soak.py                # 60 s soak after a ~6 s capacity measurement
    python bench/soak.py --quick        # 20 s soak
    python bench/soak.py --duration 300 --spool-mib 64

The collector runs in a child process (one chDB engine per process) with the
real writer, spool and embedded store; between the writer and the store sits a
GatedSink (tests/faults.py): "down" makes every insert fail the way a
ClickHouse server on a closed port does (connection refused), "slow" adds a
delay to every insert.

1. Capacity: OTLP/gRPC requests of 512 GenAI-shaped spans (bench/ingest.py's
   payloads) from `--streams` closed-loop senders for a few seconds, then a
   flush; capacity = spans acknowledged / (first send -> all written).
2. Soak: requests scheduled at 80% of that rate for `--duration` seconds while
   the store cycles up -> down -> up -> slow. A refused request (UNAVAILABLE)
   is retried like an OTLP exporter does: after the RetryInfo delay, with
   backoff. Every request carries its own `service.name`, so each one's spans
   are counted in ClickHouse after the soak.
3. Printed: spans sent, acknowledged, stored (of the acknowledged ones),
   lost (acknowledged but not stored: must be 0), duplicated (must be 0), the
   rate reached against the capacity, and the spool's and memory's peaks.
   Exit status 1 if anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import EXPORT_METHOD, SPANS_PER_REQUEST, build_payloads, free_port, run_workers  # noqa: E402

NAME_WIDTH = 16  # "soak-" + 11 digits: every request's service.name has the same length


# --- the collector process ------------------------------------------------------------------------


def collector_main(store_dir: str, grpc_port: int, spool_mib: int, conn: Connection) -> None:
    """Runs in the child: a collector whose store sits behind a GatedSink, driven by commands on `conn`."""
    import logging

    logging.basicConfig(level=logging.ERROR)  # one warning per retried insert is noise here; errors still show
    from spanhouse.collector import config as config_mod
    from spanhouse.collector.service import Collector
    from spanhouse.collector.writer import ClickHouseSink
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from faults import GatedSink

    cfg = config_mod.load(None, overrides={
        "store": {"url": f"chdb://{store_dir}"},
        "receiver": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}, "http": {"endpoint": ""}},
        "query": {"endpoint": ""},
        "spool": {"max_size_mib": spool_mib},
        "writer": {"retry_initial_s": 0.1, "retry_max_s": 1.0},
    })
    gates: list[GatedSink] = []

    def gated(store: Any) -> GatedSink:
        gates.append(GatedSink(ClickHouseSink(store)))
        return gates[-1]

    collector = Collector(cfg, sink_factory=gated)
    collector.start()
    gate, pipeline = gates[0], collector.pipeline
    assert pipeline is not None
    peaks = {"spool_bytes": 0, "spans_in_memory": 0}
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.05):
            counters = pipeline.writer.counters()
            for key in peaks:
                peaks[key] = max(peaks[key], counters.get(key, 0))

    threading.Thread(target=watch, daemon=True).start()
    conn.send("ready")
    while True:
        command, arg = conn.recv()
        if command == "state":
            gate.closed, gate.delay_s = arg == "down", (0.5 if arg == "slow" else 0.0)
            conn.send(None)
        elif command == "flush":
            conn.send(collector.flush(arg))
        elif command == "stats":
            conn.send({**pipeline.counters(), **{f"peak_{k}": v for k, v in peaks.items()}})
        elif command == "query":
            conn.send(collector.store.query_rows(arg))
        elif command == "stop":
            watching.set()
            conn.send(collector.stop())
            return


class Child:
    def __init__(self, work: Path, spool_mib: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.grpc = f"127.0.0.1:{free_port()}"
        self.proc = ctx.Process(target=collector_main, args=(str(work / "store"), int(self.grpc.rsplit(":")[1]),
                                                            spool_mib, child_conn), daemon=True)
        self.proc.start()
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise SystemExit("the collector process did not start")
        self._lock = threading.Lock()

    def call(self, command: str, arg: Any = None) -> Any:
        with self._lock:
            self.conn.send((command, arg))
            return self.conn.recv()


# --- the clients --------------------------------------------------------------------------------------


class Requests:
    """Unique requests made from one template by swapping a fixed-width service.name."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(build_payloads(SPANS_PER_REQUEST)[0])
        self.placeholder = b"#" * NAME_WIDTH
        for rs in request.resource_spans:
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    kv.value.string_value = self.placeholder.decode()
        self.template = request.SerializeToString()
        self.spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        self._next = 0
        self._lock = threading.Lock()

    def make(self, prefix: str) -> tuple[str, bytes]:
        with self._lock:
            self._next += 1
            name = f"{prefix}-{self._next:0{NAME_WIDTH - len(prefix) - 1}d}"
        return name, self.template.replace(self.placeholder, name.encode())


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[str] = []
        self.acknowledged: list[str] = []
        self.refusals = 0
        self.unacknowledged: list[str] = []


def export_with_retry(export: Any, name: str, payload: bytes, ledger: Ledger, give_up_at: float) -> None:
    """Send until OK, honouring RetryInfo and backing off, as an OTLP exporter does."""
    import grpc
    from google.rpc.error_details_pb2 import RetryInfo

    backoff = 0.1
    while True:
        try:
            export(payload, timeout=30)
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            with ledger.lock:
                ledger.refusals += 1
            delay = backoff
            retry = dict(exc.trailing_metadata() or ()).get("google.rpc.retryinfo-bin")
            if retry:
                delay = max(delay, RetryInfo.FromString(retry).retry_delay.ToNanoseconds() / 1e9)
            if time.monotonic() + delay > give_up_at:
                with ledger.lock:
                    ledger.unacknowledged.append(name)
                return
            time.sleep(delay)
            backoff = min(backoff * 2, 5.0)
            continue
        with ledger.lock:
            ledger.acknowledged.append(name)
        return


def run_senders(endpoint: str, requests: Requests, prefix: str, streams: int, duration_s: float,
                rate_requests_per_s: float | None, ledger: Ledger, grace_s: float) -> float:
    """Send for `duration_s`: closed loop when no rate is given, else on a fixed schedule. Returns seconds."""
    import grpc

    start = time.monotonic()
    end = start + duration_s
    give_up_at = end + grace_s
    slot = iter(range(10**9))
    slot_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 64 << 20)])
        export = channel.unary_unary(EXPORT_METHOD)
        try:
            while True:
                with slot_lock:
                    i = next(slot)
                if rate_requests_per_s is not None:
                    due = start + i / rate_requests_per_s
                    if due >= end:
                        return
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                elif time.monotonic() >= end:
                    return
                name, payload = requests.make(prefix)
                with ledger.lock:
                    ledger.sent.append(name)
                export_with_retry(export, name, payload, ledger, give_up_at)
        except BaseException as exc:  # re-raised by run_workers
            errors.append(exc)
        finally:
            channel.close()

    run_workers(worker, streams, errors)
    return time.monotonic() - start


# --- main -----------------------------------------------------------------------------------------------


def stored_per_request(child: Child, prefix: str) -> dict[str, int]:
    rows = child.call("query", f"SELECT ServiceName, count() FROM spans WHERE startsWith(ServiceName, '{prefix}-') "
                               "GROUP BY ServiceName")
    return {name: int(count) for name, count in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="soak seconds (default 60)")
    parser.add_argument("--quick", action="store_true", help="a 20 s soak")
    parser.add_argument("--streams", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument("--load", type=float, default=0.8, help="fraction of measured capacity (default 0.8)")
    parser.add_argument("--spool-mib", type=int, default=1024, help="spool.max_size_mib (default 1024)")
    args = parser.parse_args(argv)
    duration = 20.0 if args.quick else args.duration
    phase = duration / 6  # up, down, up, slow, up, down: the store fails twice and is slow once
    schedule = ["up", "down", "up", "slow", "up", "down"]

    with tempfile.TemporaryDirectory(prefix="spanhouse-soak-") as tmp:
        work = Path(tmp)
        requests = Requests()
        child = Child(work, args.spool_mib)
        try:
            # 1. capacity, the store healthy
            cap = Ledger()
            t0 = time.monotonic()
            run_senders(child.grpc, requests, "cap", args.streams, 3.0 if args.quick else 6.0, None, cap, 30.0)
            if not child.call("flush", 120.0):
                raise SystemExit("capacity run: the writer did not flush within 120 s")
            capacity = len(cap.acknowledged) * requests.spans / (time.monotonic() - t0)
            rate = args.load * capacity / requests.spans  # requests per second

            # 2. the soak, the store failing and recovering
            soak = Ledger()
            stop_faults = threading.Event()

            def faults() -> None:
                for state in schedule:
                    child.call("state", state)
                    if stop_faults.wait(phase):
                        return

            fault_thread = threading.Thread(target=faults)
            fault_thread.start()
            elapsed = run_senders(child.grpc, requests, "soak", args.streams, duration, rate, soak, phase + 60.0)
            stop_faults.set()
            fault_thread.join()
            child.call("state", "up")
            written = child.call("flush", 300.0)
            stats = child.call("stats")
            stored = stored_per_request(child, "soak")
        finally:
            lost_at_stop = child.call("stop")
            child.proc.join(60)

    spans = requests.spans
    acked = set(soak.acknowledged)
    stored_acked = sum(min(stored.get(name, 0), spans) for name in acked)
    lost = sum(max(0, spans - stored.get(name, 0)) for name in acked)
    duplicated = sum(max(0, n - spans) for n in stored.values())
    stored_unacked = sum(n for name, n in stored.items() if name not in acked)
    print(f"capacity (store healthy, {args.streams} closed-loop streams): {capacity:,.0f} spans/s")
    print(f"soak: {duration:.0f} s at {args.load:.0%} of capacity = {rate * spans:,.0f} spans/s scheduled; "
          f"store {' -> '.join(schedule)} ({phase:.1f} s each)")
    print(f"  spans sent          {len(soak.sent) * spans:>12,}")
    print(f"  spans acknowledged  {len(acked) * spans:>12,}   ({soak.refusals} refusals retried; "
          f"{len(soak.unacknowledged) * spans:,} spans never acknowledged, kept by the client)")
    print(f"  spans stored        {stored_acked:>12,}   (+{stored_unacked:,} whose OK did not arrive)")
    print(f"  spans lost          {lost:>12,}")
    print(f"  spans duplicated    {duplicated:>12,}")
    print(f"  achieved            {len(acked) * spans / elapsed:>12,.0f} spans/s acknowledged "
          f"= {len(acked) * spans / elapsed / capacity:.2f}x capacity")
    print(f"  peaks: spool {stats['peak_spool_bytes'] / 2**20:.1f} MiB, "
          f"{stats['peak_spans_in_memory']:,} spans in memory; insert errors retried: "
          f"{stats['writer_write_errors_total']}; flushed at the end: {written}; lost at stop: {lost_at_stop}")
    return 1 if lost or duplicated or lost_at_stop or not written else 0


if __name__ == "__main__":
    sys.exit(main())
