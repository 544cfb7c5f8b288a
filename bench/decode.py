"""Decode benchmark: OTLP request bytes -> SpanBatch, the native (C) decoder against the pure-Python one.

    python bench/decode.py                 # 51,200 spans, best of 3 rounds; about 20 s on 2 cores
    python bench/decode.py --spans 10240 --rounds 5

Both decoders get the same payloads, built by bench/ingest.py's builder (512 GenAI-shaped spans
per request, about 1.2 KB per span, each request's root spans one request late), and the
collector's default receiver settings. Before timing, every request is decoded by both and the
batches are compared column by column; the run fails if they differ or if the native decoder
handed any request to the reference (these payloads are all well-formed). Each round decodes all
payloads once per decoder, one thread, keeping one result alive at a time (as the collector frees
a batch once written), the heap frozen as in ingest.py, and counts the thread's CPU time (not wall
time: the machine may be shared); the best round counts.

With `ptars` installed (not a dependency of spanhouse: `pip install ptars`), its conversion of the
same request bytes to an Arrow record batch is timed too, for comparison (see bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from ingest import build_payloads  # noqa: E402


def cpu_timed(fn: Callable[[], Any]) -> float:
    """This thread's CPU seconds for fn(): on a shared machine, time spent preempted is not the decoder's."""
    gc.collect()
    gc.freeze()  # the payloads and results are the bench's heap, not the decoder's: keep the GC off them
    try:
        t0 = time.thread_time()
        fn()
        return time.thread_time() - t0
    finally:
        gc.unfreeze()


def best(rounds: int, fn: Callable[[], Any]) -> float:
    return min(cpu_timed(fn) for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=51_200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanhouse.collector.config import Config
    from spanhouse.collector.receiver.decode import Decoder

    t0 = time.perf_counter()
    payloads = build_payloads(args.spans, roots_late=True)
    size = sum(map(len, payloads))
    r = Config().receiver
    limits = (r.max_attribute_value_length, r.max_spans_per_request, r.max_attributes_per_span)
    native = Decoder(*limits, native_decode="auto")
    reference = Decoder(*limits, native_decode="off")
    if not native.native:
        raise SystemExit("FAILED: the native decoder is not built (pip install -e . with a C compiler)")
    spans = 0
    for data in payloads:
        a, b = native.decode_bytes(data, "t"), reference.decode_bytes(data, "t")
        if (
            a.batch.columns != b.batch.columns
            or a.problems != b.problems
            or a.rejected_spans != b.rejected_spans
        ):
            raise SystemExit("FAILED: the native and the reference decoder disagree on a payload")
        spans += a.batch.size
    if native.reference_requests_total:
        raise SystemExit(
            f"FAILED: {native.reference_requests_total} well-formed requests went to the reference"
        )
    print(
        f"payloads: {len(payloads)} requests, {spans:,} spans, {size / spans:,.0f} B/span, "
        f"built and checked in {time.perf_counter() - t0:.1f}s; best of {args.rounds} rounds"
    )

    def each(fn: Callable[[bytes], Any]) -> Callable[[], None]:
        # One result alive at a time, as in the collector, where a batch is written and freed while
        # later requests arrive: holding every result would time the allocator's and the GC's growth.
        def run() -> None:
            for p in payloads:
                fn(p)

        return run

    rows: list[tuple[str, float]] = []
    rows.append(("protobuf parse only (upb)", best(args.rounds, each(ExportTraceServiceRequest.FromString))))
    native_s = best(args.rounds, each(lambda p: native.decode_bytes(p, "t")))
    reference_s = best(args.rounds, each(lambda p: reference.decode_bytes(p, "t")))
    rows.append(("native decode_bytes -> SpanBatch", native_s))
    rows.append(("reference decode_bytes -> SpanBatch", reference_s))
    try:
        import ptars
    except ImportError:
        ptars = None
    if ptars is not None:
        handler = ptars.HandlerPool([ExportTraceServiceRequest.DESCRIPTOR.file]).get_for_message(
            ExportTraceServiceRequest.DESCRIPTOR
        )
        rows.append(
            (
                f"ptars {ptars.__version__} bytes -> nested Arrow",
                best(args.rounds, each(lambda p: handler.list_to_record_batch([p]))),
            )
        )

    print(f"{'stage (1 thread, CPU time)':40} {'spans/s':>12} {'us/span':>8}")
    for name, seconds in rows:
        print(f"{name:40} {spans / seconds:12,.0f} {seconds / spans * 1e6:8.2f}")
    print(f"native / reference: {reference_s / native_s:.1f}x the spans per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
