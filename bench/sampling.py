"""Sampling benchmark: spans/s through the tail sampler, and memory per 100,000 held spans.

    python bench/sampling.py            # ~100k spans
    python bench/sampling.py --quick    # ~25k spans

Everything runs in this process, one thread, over the GenAI-shaped payloads of
bench/ingest.py (agent turns of six spans, 512 spans per request).

Throughput: the collector's processors without sampling (decode, normalize,
redact, price) are timed over all payloads, then the same with the tail
sampler appended (rate 0.01, keep_errors, keep_duration_over_ms,
keep_cost_over_usd, a rate limit). The ratio of the two rates is the cost of
sampling on the pipeline. The sampler alone is also timed in two shapes: as
exported (a trace's root usually in the same request as its children, so most
traces are decided without being held) and "roots late" (every request's roots
arrive one request later, so every trace is held once).

Memory: with roots removed and bounds out of the way, every span is held.
tracemalloc measures (a) what the sampler adds on top of the spans' own data,
and (b) everything kept alive by the held spans once the caller has dropped
its batches (the spans' column values themselves plus the sampler's
structures), both per 100,000 held spans. The process RSS change for (b) is
printed beside it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import SPANS_PER_REQUEST, build_payloads, timed

TAIL = {"rate": 0.01, "keep_errors": True, "keep_duration_over_ms": 6000, "keep_cost_over_usd": 0.05,
        "rate_limit_traces_per_s": 50}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pipeline_processors(sampling: dict[str, Any] | None) -> tuple[list[Any], Any]:
    from spanhouse.collector.config import load
    from spanhouse.collector.processors import registry

    cfg = load(None, environ={}, overrides={"sampling": sampling or {}})
    processors = registry.build(cfg).all
    return processors, processors[-1]


def run_pipeline(payloads: list[bytes], processors: list[Any]) -> int:
    from spanhouse.collector.receiver.decode import Decoder

    decoder = Decoder()
    sampler = processors[-1]
    spans = 0
    for payload in payloads:
        batch = decoder.decode_bytes(payload, "default").batch
        for processor in processors:
            batch = processor.process(batch)
        spans += batch.size
    released = sampler.poll(everything=True)
    return spans + (released.size if released is not None else 0)


def prepared(payloads: list[bytes], roots: bool = True) -> list[Any]:
    """Decoded and normalized batches (no redaction: it does not change what the sampler does)."""
    from spanhouse.collector.processors.normalize import NormalizeProcessor
    from spanhouse.collector.receiver.decode import Decoder

    decoder, normalize = Decoder(), NormalizeProcessor()
    batches = [normalize.process(decoder.decode_bytes(p, "default").batch) for p in payloads]
    if roots:
        return batches
    return [b.take([i for i, parent in enumerate(b["ParentSpanId"]) if parent]) for b in batches]


def roots_late(batches: list[Any]) -> list[Any]:
    """Every request's root spans moved into the next request."""
    out, carried = [], None
    for b in batches:
        parents = b["ParentSpanId"]
        children = b.take([i for i, p in enumerate(parents) if p])
        roots = b.take([i for i, p in enumerate(parents) if not p])
        out.append(children if carried is None else type(b).concat([children, carried]))
        carried = roots
    if carried is not None:
        out.append(carried)
    return out


def sampler_alone(batches: list[Any]) -> tuple[float, dict[str, int]]:
    from spanhouse.collector.config import load
    from spanhouse.collector.processors.sampling import SampleProcessor

    sampler = SampleProcessor(load(None, environ={}, overrides={"sampling": TAIL}).sampling)

    def run() -> None:
        for b in batches:
            sampler.process(b)
        sampler.poll(everything=True)

    seconds, _ = timed(run)
    return seconds, sampler.counters()


def held_memory(payloads: list[bytes]) -> dict[str, float]:
    from spanhouse.collector.config import load
    from spanhouse.collector.processors.sampling import SampleProcessor

    cfg = load(None, environ={}, overrides={"sampling": {**TAIL, "decision_wait_s": 3600,
                                                         "max_spans_held": 10**9, "max_traces_held": 10**9}}).sampling
    gc.collect()
    tracemalloc.start()
    rss0 = rss_bytes()
    start = tracemalloc.get_traced_memory()[0]
    batches = prepared(payloads, roots=False)
    gc.collect()
    with_batches = tracemalloc.get_traced_memory()[0]
    sampler = SampleProcessor(cfg)
    for b in batches:
        sampler.process(b)
    gc.collect()
    with_held = tracemalloc.get_traced_memory()[0]
    held = sampler.counters()["spans_held"]
    del batches
    gc.collect()
    only_held = tracemalloc.get_traced_memory()[0]
    rss1 = rss_bytes()
    tracemalloc.stop()
    per = 100_000 / held
    return {"held": held, "overhead": (with_held - with_batches) * per, "total": (only_held - start) * per,
            "rss": (rss1 - rss0) * per, "sampler": sampler}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, help="spans per measurement (rounded down to 512 per request)")
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args(argv)
    wanted = args.spans or (25_600 if args.quick else 102_400)
    payloads = build_payloads(max(1, wanted // SPANS_PER_REQUEST) * SPANS_PER_REQUEST)
    spans = len(payloads) * SPANS_PER_REQUEST
    print(f"{spans} spans in {len(payloads)} requests; tail sampler {TAIL}; {os.cpu_count()} CPUs")

    base_processors, _ = pipeline_processors(None)
    tail_processors, _ = pipeline_processors(TAIL)
    base_s, n_base = timed(lambda: run_pipeline(payloads, base_processors))
    tail_s, _ = timed(lambda: run_pipeline(payloads, tail_processors))
    # Second round, the other order first, to even out a noisy machine.
    tail_s2, _ = timed(lambda: run_pipeline(payloads, pipeline_processors(TAIL)[0]))
    base_s2, _ = timed(lambda: run_pipeline(payloads, pipeline_processors(None)[0]))
    base_s, tail_s = min(base_s, base_s2), min(tail_s, tail_s2)
    if n_base != spans:
        raise SystemExit(f"FAILED: the pipeline passed {n_base} of {spans} spans")
    base_rate, tail_rate = spans / base_s, spans / tail_s
    print("\nthroughput (decode + processors, 1 thread, best of 2)")
    print(f"  pipeline without sampling      {base_rate:>10,.0f} spans/s")
    print(f"  pipeline with the tail sampler {tail_rate:>10,.0f} spans/s   ratio {tail_rate / base_rate:.3f}")

    batches = prepared(payloads)
    alone_s, counters = sampler_alone(batches)
    late_batches = roots_late(prepared(payloads))
    late_s, _ = sampler_alone(late_batches)
    del batches, late_batches
    print(f"  tail sampler alone, as exported {spans / alone_s:>9,.0f} spans/s   "
          f"(kept {sum(v for k, v in counters.items() if k.startswith('traces_kept_'))} traces, "
          f"dropped {counters['traces_dropped_total']})")
    print(f"  tail sampler alone, roots late  {spans / late_s:>9,.0f} spans/s   "
          f"(every trace held once; x{(spans / late_s) / base_rate:.2f} of the pipeline without sampling)")

    mem = held_memory(payloads)
    print(f"\nmemory per 100,000 held spans ({mem['held']} held)")
    print(f"  sampler structures on top of the spans' data   {mem['overhead'] / 1e6:>8.1f} MB (tracemalloc)")
    print(f"  everything the held spans keep alive           {mem['total'] / 1e6:>8.1f} MB (tracemalloc)"
          f"   {mem['rss'] / 1e6:.1f} MB (RSS change)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
