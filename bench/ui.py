"""How fast each web UI page's data answers on a big store: 1,000,000 spans and 200,000 GenAI calls.

    python bench/ui.py                 # ~1 min on 2 cores: builds the store, then 15 runs of every request
    python bench/ui.py --traces 5000   # a smaller store (100,000 spans)
    python bench/ui.py --runs 30

A collector starts in this process on a fresh embedded store (migrations applied as always); bench/ui_data.sql
fills it with INSERT ... SELECT from numbers() through the real tables, so the materialized views fill
trace_costs, the usage rollups and spans_trace_id_ts as ingestion would. Then every request the pages make
(`/ui/api/...`, as a browser sends them, over HTTP to the query endpoint, with an admin key and, for some, a
tenant's key) runs `--runs` times; the script prints
p50 and p95 per request and their ratio to the 300 ms target, and exits 1 if any p95 is over it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=50_000, help="agent turns (20 spans, 4 GenAI calls each)")
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each request")
    args = parser.parse_args()

    from spanhouse.collector import config as config_mod
    from spanhouse.collector.auth import generate_key, hash_key
    from spanhouse.collector.service import Collector

    # An admin key and one tenant's key: a tenant's reads also pass the tenant scope (its checks and filter).
    admin_key, tenant_key = generate_key(), generate_key()

    folder = Path(tempfile.mkdtemp(prefix="spanhouse-bench-ui-"))
    cfg = config_mod.load(None, environ={}, overrides={
        "store": {"url": f"chdb://{folder / 'store'}"},
        "receiver": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": ""}},
        "query": {"endpoint": "127.0.0.1:0"},
        "auth": {"keys": [{"tenant": "ops", "key_sha256": hash_key(admin_key), "admin": True, "name": "admin"},
                          {"tenant": "tenant-7", "key_sha256": hash_key(tenant_key), "name": "tenant-7"}]},
    })
    collector = Collector(cfg)
    collector.start()
    try:
        started = time.perf_counter()
        span_ms = 7 * 86400 * 1000 // args.traces  # the traces cover the last 7 days
        for statement in (Path(__file__).with_name("ui_data.sql").read_text().split("\n;;\n")):
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if body:
                collector.store.command(body.replace("{traces:UInt64}", str(args.traces))
                                        .replace("{span_ms:UInt64}", str(span_ms)))
        collector.store.command("OPTIMIZE TABLE trace_costs FINAL")  # as background merges would, given time
        ((spans, calls, traces),) = collector.store.query_rows(
            "SELECT (SELECT count() FROM spans), (SELECT count() FROM genai_calls), "
            "(SELECT uniqExact(TraceId) FROM trace_costs)")
        print(f"store: {spans:,} spans, {calls:,} GenAI calls, {traces:,} traces over 7 days; "
              f"built in {time.perf_counter() - started:.1f} s", flush=True)
        base = f"http://127.0.0.1:{collector.query_server.port}/ui/api/"

        def get(path: str, key: str) -> bytes:
            request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()

        trace_id = json.loads(get("traces?since=24h&sort=cost", admin_key))["traces"][0]["trace_id"]
        own_trace = json.loads(get("traces?since=7d", tenant_key))["traces"][0]["trace_id"]
        requests = {
            "traces 1h (Traces tab default)": "traces?since=1h",
            "traces 24h by cost": "traces?since=24h&sort=cost",
            "traces 7d by duration": "traces?since=7d&sort=duration",
            "traces 7d, page 20": "traces?since=7d&page=20",
            "traces 7d model+min cost": "traces?since=7d&model=gpt-4o&min_cost=0.02",
            "traces 24h tenant+errors": "traces?since=24h&tenant=tenant-7&errors=1",
            "traces 24h span name text": "traces?since=24h&q=render",
            "trace (waterfall, 20 spans)": f"trace/{trace_id}",
            "usage 24h by model": "usage?since=24h",
            "usage 7d by service": "usage?since=7d&by=service",
            "sessions 24h": "sessions?since=24h",
            "alerts 7d": "alerts?since=7d",
            "facets 24h (filter choices)": "facets?since=24h",
            "tenant key: traces 24h": "traces?since=24h",
            "tenant key: traces 7d by cost": "traces?since=7d&sort=cost",
            "tenant key: trace": f"trace/{own_trace}",
            "tenant key: usage 7d": "usage?since=7d",
        }
        print(f"\n{'request':34} {'p50 ms':>8} {'p95 ms':>8} {'p95/300ms':>10}")
        worst = 0.0
        for label, path in requests.items():
            key = tenant_key if label.startswith("tenant key") else admin_key
            get(path, key)  # warm: the first read loads marks and caches
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                get(path, key)
                times.append((time.perf_counter() - t0) * 1e3)
            p50 = statistics.median(times)
            p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
            worst = max(worst, p95)
            print(f"{label:34} {p50:8.1f} {p95:8.1f} {p95 / TARGET_MS:10.2f}", flush=True)
        print(f"\nworst p95: {worst:.1f} ms = {worst / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms target")
        return 0 if worst <= TARGET_MS else 1
    finally:
        collector.stop()


if __name__ == "__main__":
    sys.exit(main())
