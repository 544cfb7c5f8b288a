"""What each part of the ClickHouse insert costs per span, in the embedded engine, in one run.

    python bench/insert_parts.py              # 102,400 spans per variant; a few minutes on 2 cores
    python bench/insert_parts.py --quick      # 40,960 spans per variant
    python bench/insert_parts.py --only baseline,"no MVs"

The payloads are bench/ingest.py's (roots one request late), decoded and run through the collector's
processors once in this process, merged to writer.max_batch_rows and kept as the spool encodes them.
Every variant then runs in a child process of its own on a fresh embedded store (one engine per
process; a fresh process also starts each variant's memory from the same point): the migrations, the
variant's change to the schema or the insert settings, then `ClickHouseSink.write` of every batch,
and one merge of every row (ingest.merge_all: the engine's own merges, then every table merged to one
part per partition), since merges are part of what a span costs.

Per variant: CPU microseconds per span of the process (every thread: the Arrow conversion in Python,
the engine's insert threads, its merges), split into the Arrow conversion alone (the same tables
built once more, this thread's CPU time), the inserts until they returned, and the merges after; the
peak RSS above the RSS with the store open; and each total as a ratio to the baseline of the same run
(the full schema as migrated). The baseline runs first and last: the spread of the two is the noise.
"""

from __future__ import annotations

import argparse
import gc
import json
import marshal
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MAPS = ("ResourceAttributes", "SpanAttributes", "Events.Attributes", "Links.Attributes")


@dataclass(frozen=True)
class Variant:
    name: str
    why: str
    statements: tuple[str, ...] = ()  # run after the migrations
    insert_settings: dict[str, Any] = field(default_factory=dict)
    migration_edits: tuple[tuple[str, str], ...] = ()  # (old, new) text replaced in every migration
    empty_maps: bool = False
    lz4: bool = False
    zstd_level: int = 0


VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", "the schema as migrated"),
    Variant("no genai_usage_1m_mv", "rollup per minute", ("DROP VIEW genai_usage_1m_mv",)),
    Variant("no genai_usage_1h_mv", "rollup per hour", ("DROP VIEW genai_usage_1h_mv",)),
    Variant("no trace_costs_mv", "per-trace sums", ("DROP VIEW trace_costs_mv",)),
    Variant("no spans_trace_id_ts_mv", "trace id -> time range", ("DROP VIEW spans_trace_id_ts_mv",)),
    Variant("no MVs", "all four views dropped", ("DROP VIEW genai_usage_1m_mv", "DROP VIEW genai_usage_1h_mv",
                                                  "DROP VIEW trace_costs_mv", "DROP VIEW spans_trace_id_ts_mv")),
    Variant("no map-key bloom filters", "spans idx_res_attr_key, idx_span_attr_key",
            ("ALTER TABLE spans DROP INDEX idx_res_attr_key", "ALTER TABLE spans DROP INDEX idx_span_attr_key")),
    Variant("no trace-id bloom filters", "spans and genai_calls idx_trace_id",
            ("ALTER TABLE spans DROP INDEX idx_trace_id", "ALTER TABLE genai_calls DROP INDEX idx_trace_id")),
    Variant("no skip indexes", "every skip index of spans and genai_calls",
            ("ALTER TABLE spans DROP INDEX idx_res_attr_key", "ALTER TABLE spans DROP INDEX idx_span_attr_key",
             "ALTER TABLE spans DROP INDEX idx_trace_id", "ALTER TABLE spans DROP INDEX idx_duration",
             "ALTER TABLE genai_calls DROP INDEX idx_trace_id")),
    Variant("maps empty", "attribute maps inserted empty: what their content costs", empty_maps=True),
    Variant("Map(String, String)", "map keys without LowCardinality",
            migration_edits=(("Map(LowCardinality(String), String)", "Map(String, String)"),)),
    Variant("LZ4", "every column of spans and genai_calls LZ4 instead of ZSTD(1)", lz4=True),
    Variant("ZSTD(3)", "every column of spans and genai_calls ZSTD(3)", zstd_level=3),
    Variant("Wide parts", "without 007's Compact parts (min_bytes_for_wide_part = 0)",
            ("ALTER TABLE spans MODIFY SETTING min_bytes_for_wide_part = 0",
             "ALTER TABLE genai_calls MODIFY SETTING min_bytes_for_wide_part = 0")),
    Variant("index_granularity 32768", "fewer marks per part",
            migration_edits=(("index_granularity = 8192", "index_granularity = 32768"),)),
    Variant("max_threads 1", "the insert's query on one thread",
            insert_settings={"max_threads": 1, "max_insert_threads": 1}),
    Variant("min_insert_block_size_rows 4096", "small blocks: more parts",
            insert_settings={"min_insert_block_size_rows": 4096, "min_insert_block_size_bytes": 0}),
    Variant("async_insert", "async_insert = 1, wait_for_async_insert = 1",
            insert_settings={"async_insert": 1, "wait_for_async_insert": 1}),
    Variant("baseline again", "the same as the first: the difference is noise"),
)


# --- parent: payloads -> merged batches ------------------------------------------------


def prepare(spans: int, path: Path) -> tuple[int, int]:
    """Merged batches as the writer inserts them, marshalled to `path`; (spans, batches)."""
    from ingest import SAMPLING, SPANS_PER_REQUEST, build_payloads
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from spanhouse.collector.batch import SpanBatch
    from spanhouse.collector.config import load
    from spanhouse.collector.processors import registry
    from spanhouse.collector.receiver.decode import Decoder

    config = load(None, overrides={"sampling": SAMPLING})
    r = config.receiver
    decoder = Decoder(r.max_attribute_value_length, r.max_spans_per_request, r.max_attributes_per_span)
    payloads = build_payloads(spans, roots_late=True)
    spans = len(payloads) * SPANS_PER_REQUEST
    batches = [decoder.decode(ExportTraceServiceRequest.FromString(p), "default").batch for p in payloads]
    for processor in registry.build(config).all:
        batches = [processor.process(b) for b in batches]
        poll = getattr(processor, "poll", None)
        if poll is not None:
            rest = poll(everything=True)
            if rest is not None:
                batches.append(rest)
    step = max(1, config.writer.max_batch_rows // SPANS_PER_REQUEST)
    merged = [SpanBatch.concat(batches[i:i + step]) for i in range(0, len(batches), step)]
    path.write_bytes(marshal.dumps({"spans": spans, "batches": [(b.columns, b.size) for b in merged]}))
    return spans, len(merged)


def run_child(variant: Variant, batches: Path, work: Path, round_: int) -> dict[str, Any]:
    store = work / f"store-{VARIANTS.index(variant)}-{round_}"  # a fresh store every time
    try:
        out = subprocess.run([sys.executable, __file__, "--child", variant.name, "--batches", str(batches),
                              "--store", str(store)], check=False, capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- child: one variant ----------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def child(name: str, batches_path: Path, store_dir: Path) -> dict[str, Any]:
    from ingest import merge_all
    from spanhouse.collector.batch import SpanBatch
    from spanhouse.collector.store import Store
    from spanhouse.collector.store import client as store_client
    from spanhouse.collector.writer.clickhouse import ClickHouseSink, _ArrowColumns

    variant = next(v for v in VARIANTS if v.name == name)
    if variant.migration_edits:
        shipped = store_client.available_migrations

        def edited() -> list[tuple[int, str, str]]:
            out = []
            for version, mig, text in shipped():
                for old, new in variant.migration_edits:
                    text = text.replace(old, new)
                out.append((version, mig, text))
            return out

        store_client.available_migrations = edited  # type: ignore[assignment]
    store = Store.open(f"chdb://{store_dir}")
    store.migrate()
    for statement in variant.statements:
        store.command(statement)
    if variant.lz4 or variant.zstd_level:
        codec = "LZ4" if variant.lz4 else f"ZSTD({variant.zstd_level})"
        for table in ("spans", "genai_calls"):
            rows = store.query_rows("SELECT name, type, compression_codec FROM system.columns WHERE "
                                    "database = currentDatabase() AND table = {t:String} AND "
                                    "default_kind != 'MATERIALIZED'", {"t": table})
            for col, type_name, current in rows:
                new = current.replace("ZSTD(1)", codec) if current else f"CODEC({codec})"
                store.command(f"ALTER TABLE {table} MODIFY COLUMN `{col}` {type_name} {new}")
    if variant.insert_settings:
        extra = variant.insert_settings
        plain, side = store.insert_arrow, store.insert_arrow_async
        store.insert_arrow = lambda t, d, s=None: plain(t, d, {**(s or {}), **extra})  # type: ignore[method-assign]
        store.insert_arrow_async = lambda t, d, s=None: side(t, d, {**(s or {}), **extra})  # type: ignore[method-assign]

    raw = marshal.loads(batches_path.read_bytes())
    spans = raw["spans"]  # the spans sent; rows also carry calls the sampler let through ahead of their span
    batches = [SpanBatch(columns, size) for columns, size in raw["batches"]]
    del raw
    if variant.empty_maps:
        for b in batches:
            for col in MAPS:
                values = b.columns.get(col)
                if values is not None:
                    b.columns[col] = [{} if isinstance(v, dict) else [{}] * len(v) for v in values]
    sink = ClickHouseSink(store)

    # The Arrow conversion alone: the tables the sink builds, this thread's CPU time.
    gc.collect()
    gc.freeze()
    t0 = time.thread_time()
    for b in batches:
        columns = _ArrowColumns(b)
        sink._calls_table(b, columns)
        sink._spans_table(b, columns)
    arrow_s = time.thread_time() - t0
    del columns
    gc.collect()
    store.release_memory()
    idle_kib = _status_kib("VmRSS")
    # A fresh peak from here (Linux: writing 5 to clear_refs resets VmHWM).
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

    c0 = _cpu_s()
    w0 = time.perf_counter()
    for i, b in enumerate(batches):
        sink.write(b, token=f"bench-{i}")
    wall_s = time.perf_counter() - w0
    c1 = _cpu_s()
    merge_all(store)
    c2 = _cpu_s()
    peak_kib = _status_kib("VmHWM")
    (stored,), = store.query_rows("SELECT count() FROM spans")
    (calls,), = store.query_rows("SELECT count() FROM genai_calls")
    (parts,), = store.query_rows("SELECT count() FROM system.parts WHERE active AND table = 'spans'")
    (disk,), = store.query_rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'spans'")
    store.close()
    if stored != spans:
        raise SystemExit(f"{name}: stored {stored} of {spans} spans")
    return {"spans": spans, "calls": calls, "arrow_us": arrow_s / spans * 1e6,
            "insert_us": (c1 - c0) / spans * 1e6, "merge_us": (c2 - c1) / spans * 1e6,
            "wall_us": wall_s / spans * 1e6, "idle_mib": idle_kib / 1024,
            "peak_over_idle_mib": (peak_kib - idle_kib) / 1024, "parts": parts, "disk_b_per_span": disk / spans}


# --- report ----------------------------------------------------------------------------


def print_row(name: str, r: dict[str, Any], base: dict[str, Any] | None) -> None:
    if "error" in r:
        print(f"{name:<34}  failed: {r['error']}", flush=True)
        return
    ratio = r["total_us"] / base["total_us"] if base and "total_us" in base else float("nan")
    engine = r["insert_us"] - r["arrow_us"]
    print(f"{name:<34}{r['total_us']:>12.1f}{ratio:>7.2f}x{r['arrow_us']:>7.1f}{engine:>8.1f}"
          f"{r['merge_us']:>8.1f}{r['wall_us']:>7.1f}{r['peak_over_idle_mib']:>10.0f}{r['parts']:>6}"
          f"{r['disk_b_per_span']:>8.0f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, help="spans per variant (default 102,400; --quick 40,960)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated variant names (the baseline always runs)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over all variants; each row is the variant's cheapest round (default 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.batches, args.store)))
        return 0

    spans = args.spans or (40_960 if args.quick else 102_400)
    variants = list(VARIANTS)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")} | {"baseline", "baseline again"}
        unknown = wanted - {v.name for v in VARIANTS}
        if unknown:
            raise SystemExit(f"unknown variant(s) {sorted(unknown)}; known: {[v.name for v in VARIANTS]}")
        variants = [v for v in VARIANTS if v.name in wanted]
    with tempfile.TemporaryDirectory(prefix="spanhouse-insert-parts-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        spans, count = prepare(spans, work / "batches.bin")
        print(f"{spans:,} spans in {count} batches (payloads of bench/ingest.py through the collector's "
              f"processors, merged as the writer does), prepared in {time.perf_counter() - t0:.1f}s; "
              f"one child process per variant\n")
        head = (f"{'variant':<34}{'CPU us/span':>12}{'x base':>8}{'arrow':>7}{'insert':>8}{'merges':>8}"
                f"{'wall':>7}{'peak MiB':>10}{'parts':>6}{'B/span':>8}")
        best: dict[str, dict[str, Any]] = {}
        for round_ in range(max(1, args.repeat)):
            # Round by round, so a change in the machine's load touches every variant alike.
            if args.repeat > 1:
                print(f"round {round_ + 1} of {args.repeat}", file=sys.stderr, flush=True)
            if round_ == max(1, args.repeat) - 1:
                print(head)
            for variant in variants:
                r = run_child(variant, work / "batches.bin", work, round_)
                if "error" not in r:
                    r["total_us"] = r["insert_us"] + r["merge_us"]
                    kept = best.get(variant.name)
                    if kept is None or "error" in kept or r["total_us"] < kept["total_us"]:
                        best[variant.name] = r
                elif variant.name not in best:
                    best[variant.name] = r
                if round_ == max(1, args.repeat) - 1:
                    print_row(variant.name, best[variant.name], best.get("baseline"))
    print("\nCPU us/span: the process's CPU (every thread) from the first insert until merges ended, per span;"
          "\n  arrow: the Arrow conversion alone (Python, GIL held); insert: the rest until the inserts"
          "\n  returned (the engine's insert threads and the views); merges: the engine's merges after they"
          "\n  returned and then every table merged to one part per partition (one merge of every row)."
          "\nwall: insert wall time per span; peak MiB: peak RSS over the RSS with the store open;"
          "\nparts: active parts of spans at the end; B/span: spans' bytes on disk per span.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
