"""Does a heavy query through the query endpoint slow ingestion down?

    python bench/query_isolation.py            # ~40 s on 2 cores
    python bench/query_isolation.py --rounds 60

A `spanhouse collector` runs as a separate process on a fresh embedded store. Each round sends
one OTLP/gRPC request of a few spans with a service name of its own and, once the call returned
OK, polls the query endpoint until those spans are queryable: that time is the round's
OK->queryable latency (the send->OK time is kept as well). The same run measures two phases:

- baseline: nothing else runs;
- under load: another thread keeps a heavy query running through the endpoint (a full scan of
  `numbers()` with a hash per row, stopped by query.max_execution_s and started again).

It prints p50/p99 of both latencies per phase and the ratio of the p99s (load / baseline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from access_harness import span_request  # noqa: E402
from collector_process import CollectorProcess, clean_env  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
HEAVY = "SELECT sum(cityHash64(number)) FROM numbers(1e12)"
SPANS_PER_ROUND = 5


def post(endpoint: str, sql: str, timeout_s: float = 120.0) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{endpoint}/query?format=TabSeparatedWithNames", data=sql.encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(collector: CollectorProcess, export: grpc.UnaryUnaryMultiCallable, phase: str,
            rounds: int) -> tuple[list[float], list[float]]:
    """(send->OK, OK->queryable) seconds of each round."""
    send_ok, ok_queryable = [], []
    for i in range(rounds):
        service = f"{phase}-{i}-{os.getpid()}"
        payload = span_request(service, SPANS_PER_ROUND).SerializeToString()
        start = time.perf_counter()
        export(payload, timeout=30)
        accepted = time.perf_counter()
        deadline = accepted + 60
        while True:
            status, body = post(collector.query_endpoint,
                                f"SELECT count() FROM spans WHERE ServiceName = '{service}'")
            if status == 200 and body.split(b"\n")[1:2] == [str(SPANS_PER_ROUND).encode()]:
                break
            if status not in (200, 429):
                raise SystemExit(f"poll failed: {status} {body[:300]!r}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"spans of {service} not queryable after 60 s")
            time.sleep(0.005)
        send_ok.append(accepted - start)
        ok_queryable.append(time.perf_counter() - accepted)
    return send_ok, ok_queryable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds per phase")
    parser.add_argument("--max-execution-s", type=float, default=10.0, help="query.max_execution_s of the collector")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spanhouse-isolation-") as tmp:
        env = clean_env(SPANHOUSE_WRITER__MAX_WAIT_S="0.1",
                        SPANHOUSE_QUERY__MAX_EXECUTION_S=str(args.max_execution_s))
        collector = CollectorProcess(Path(tmp) / "store", query_endpoint="127.0.0.1:0", env=env)
        stop = threading.Event()
        heavy_runs: list[tuple[int, float]] = []
        try:
            channel = grpc.insecure_channel(collector.grpc_endpoint)
            export = channel.unary_unary(EXPORT, request_serializer=lambda b: b,
                                         response_deserializer=ExportTraceServiceResponse.FromString)
            measure(collector, export, "warmup", 5)
            base = measure(collector, export, "baseline", args.rounds)

            def heavy() -> None:
                while not stop.is_set():
                    started = time.perf_counter()
                    status, _ = post(collector.query_endpoint, HEAVY)
                    heavy_runs.append((status, time.perf_counter() - started))

            worker = threading.Thread(target=heavy, daemon=True)
            worker.start()
            loaded = measure(collector, export, "loaded", args.rounds)
            stop.set()
            worker.join(args.max_execution_s + 30)
            channel.close()
        finally:
            stop.set()
            collector.stop()
    print(f"rounds per phase: {args.rounds}, {SPANS_PER_ROUND} spans per round; heavy query: {HEAVY} "
          f"(query.max_execution_s = {args.max_execution_s:g}); heavy runs: {len(heavy_runs)}, "
          f"statuses {sorted({s for s, _ in heavy_runs})}")
    for name, (send_ok, ok_queryable) in (("baseline", base), ("under load", loaded)):
        print(f"{name:>11}: send->OK p50 {statistics.median(send_ok) * 1e3:7.1f} ms  p99 "
              f"{percentile(send_ok, 0.99) * 1e3:7.1f} ms | OK->queryable p50 "
              f"{statistics.median(ok_queryable) * 1e3:7.1f} ms  p99 {percentile(ok_queryable, 0.99) * 1e3:7.1f} ms")
    ratio = percentile(loaded[1], 0.99) / percentile(base[1], 0.99)
    ratio_ok = percentile(loaded[0], 0.99) / percentile(base[0], 0.99)
    print(f"p99 OK->queryable under load / baseline: {ratio:.2f}x   (send->OK: {ratio_ok:.2f}x)")


if __name__ == "__main__":
    main()
