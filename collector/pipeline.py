"""The data path: a decoded request (the receivers decode) -> processors -> writer.

Assembly (which receivers, which processors, the store, start and stop) is service.py's job;
this module knows only the protocols in component.py and the writer it is given.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from spanhouse.collector.batch import WRITE_SPAN, SpanBatch
from spanhouse.collector.component import HoldingProcessor, Processor, SettlingProcessor
from spanhouse.collector.receiver.decode import DecodeResult
from spanhouse.collector.writer import BatchingWriter, WriterFull
from spanhouse.collector.writer.spool import decode

log = logging.getLogger("spanhouse.pipeline")


def tune_gc() -> None:
    """Cyclic GC settings for a receiving process.

    The hot path allocates many short-lived containers per batch; the default generation-0 threshold (700)
    makes the cyclic collector run hundreds of times per batch for garbage that reference counting frees.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _spans(batch: SpanBatch) -> int:
    """Spans in `batch` whose span row goes on: a row the sampler routes to genai_calls only is no span out."""
    write_span = batch.columns.get(WRITE_SPAN)
    return batch.size if write_span is None else sum(write_span)


class Pipeline:
    """Process decoded requests and hand them to the writer; receiver threads call `consume` at once."""

    def __init__(self, processors: list[Processor], writer: BatchingWriter,
                 handoff_processors: list[Processor] | None = None) -> None:
        """`handoff_processors`: what batches from worker processes still go through (`submit_encoded`);
        see processors/registry.py."""
        self.processors = processors
        self.handoff_processors = handoff_processors or []
        self.writer = writer
        self._lock = threading.Lock()
        self.requests_total = 0
        self.requests_refused_total = 0
        self.spans_accepted_total = 0
        self.spans_rejected_total = 0
        # Processors that hold spans between requests (the tail sampler): polled by a ticker thread.
        self._holders: list[HoldingProcessor] = [
            p for p in processors if isinstance(p, HoldingProcessor) and p.holds]
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self._watch: tuple[Processor, Callable[[SpanBatch], Callable[[], None] | None]] | None = None
        # Spans into and out of each processor (otelcol_processor_{incoming,outgoing}_items_total), by name.
        self._items: dict[str, list[int]] = {p.name: [0, 0] for p in [*processors, *self.handoff_processors]}
        self._settling = [p for p in processors if isinstance(p, SettlingProcessor)]
        self._handoff_settling = [p for p in self.handoff_processors if isinstance(p, SettlingProcessor)]

    def process(self, batch: SpanBatch) -> SpanBatch:
        return self._run(self.processors, batch)[0]

    def _run(self, processors: list[Processor], batch: SpanBatch) -> tuple[SpanBatch, Callable[[], None] | None]:
        """`batch` through `processors`; with a watcher on one of them, also what it found (see watch_after)."""
        # Sizes are noted in a local list and added under the lock once per request, not per processor.
        sizes: list[int] = []
        found: Callable[[], None] | None = None
        try:
            for processor in processors:
                sizes.append(_spans(batch))
                batch = processor.process(batch)
                sizes.append(_spans(batch))
                if self._watch is not None and processor is self._watch[0]:
                    found = self._inspect(self._watch[1], batch)
        finally:
            with self._lock:
                for index, size in enumerate(sizes):
                    self._items[processors[index // 2].name][index % 2] += size
        return batch, found

    def watch_after(self, processor: Processor, inspect: Callable[[SpanBatch], Callable[[], None] | None]) -> None:
        """Call `inspect` on each consumed batch as `processor` returns it (before sampling may drop spans);
        the callable it returns, if any, runs once the writer has accepted the batch. Used by the alert
        engine's secret watch; `inspect` must be quick (it runs on the receiving thread)."""
        self._watch = (processor, inspect)

    def consume(self, result: DecodeResult) -> None:
        """Take a decoded request's spans; raises WriterFull (retry later), else they are accepted."""
        try:
            accepted = result.batch.size
            batch, found = self._run(self.processors, result.batch)
            self._submit(batch)
        except Exception:
            self._settle(self._settling, False)
            with self._lock:
                self.requests_total += 1
                self.requests_refused_total += 1
            raise
        self._settle(self._settling, True)
        with self._lock:
            self.requests_total += 1
            self.spans_accepted_total += accepted
            self.spans_rejected_total += result.rejected_spans
        if found is not None:
            try:
                found()
            except Exception:  # the spans are accepted already: a watcher's failure is logged, never answered
                log.exception("reporting what a batch watcher found failed")

    @staticmethod
    def _inspect(inspect: Callable[[SpanBatch], Callable[[], None] | None],
                 batch: SpanBatch) -> Callable[[], None] | None:
        try:
            return inspect(batch)
        except Exception:  # a watcher must never refuse spans
            log.exception("a batch watcher failed")
            return None

    @staticmethod
    def _settle(processors: list[SettlingProcessor], accepted: bool) -> None:
        for processor in processors:
            processor.settle(accepted)

    def submit_encoded(self, payload: bytes, rows: int) -> None:
        """A batch a worker process decoded and processed, in the spool's format: sample it, hand it on.

        Raises WriterFull like `consume`. With nothing left to run on it, it goes to the spool as it is.
        """
        if not self.handoff_processors:
            self.writer.submit_encoded(payload, rows)
            return
        try:
            self._submit(self._run(self.handoff_processors, decode(payload, rows))[0])
        except Exception:
            self._settle(self._handoff_settling, False)
            raise
        self._settle(self._handoff_settling, True)

    def _submit(self, batch: SpanBatch) -> None:
        """Hand `batch` to the writer; if it is full, let holding processors take back what they released."""
        try:
            self.writer.submit(batch)
        except WriterFull:
            for holder in self._holders:
                holder.refused(batch)
                self._taken_back(holder, _spans(batch))
            raise

    # --- held spans: released by a ticker, and all of them on flush and shutdown --------

    def start(self) -> None:
        if self._holders and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="spanhouse-sample-ticker", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        interval = min(h.poll_interval_s for h in self._holders)
        while not self._ticker_stop.wait(interval):
            try:
                self.release_held(everything=False)
            except WriterFull:
                pass  # kept by the holder; next tick tries again
            except Exception:  # the ticker must survive anything; the next tick retries
                log.exception("releasing held spans failed")

    def release_held(self, everything: bool = False, timeout_s: float = 0.0) -> int:
        """Submit the spans holding processors have decided (with `everything`, decide all they hold).

        With `timeout_s`, waits for room in the writer up to that long; returns the spans
        still not handed to the writer. Raises WriterFull when there is no room and no time.
        """
        deadline = time.monotonic() + timeout_s
        left = 0
        for holder in self._holders:
            batch = holder.poll(everything)
            if batch is not None:
                with self._lock:  # released later, still the holder's output
                    self._items[holder.name][1] += _spans(batch)
                left += self._submit_released(holder, batch, deadline, wait=timeout_s > 0)
        return left

    def _submit_released(self, holder: HoldingProcessor, batch: SpanBatch, deadline: float, wait: bool) -> int:
        """Submit in writer-sized parts, waiting for room until `deadline`; returns spans handed back."""
        step = self.writer.max_batch_rows
        start = 0
        while start < batch.size:
            part = batch if start == 0 and batch.size <= step else batch.take(range(start, min(start + step, batch.size)))
            try:
                self.writer.submit(part)
                start += part.size
            except WriterFull:
                remaining = deadline - time.monotonic()
                if not wait or remaining <= 0:
                    rest = batch if start == 0 else batch.take(range(start, batch.size))
                    holder.refused(rest)
                    self._taken_back(holder, _spans(rest))
                    if not wait:
                        raise
                    return rest.size
                self.writer.flush(min(remaining, 1.0))
        return 0

    def _taken_back(self, holder: HoldingProcessor, spans: int) -> None:
        """Spans a holder released and took back: counted as its output again when it releases them."""
        with self._lock:
            self._items[holder.name][1] -= spans

    def stop_holding(self, timeout_s: float) -> int:
        """Stop the ticker and decide every held trace now; returns spans that found no room in the writer."""
        self._ticker_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if not self._holders:
            return 0
        return self.release_held(everything=True, timeout_s=timeout_s)

    def counters(self) -> dict[str, int]:
        out = {
            "requests_total": self.requests_total,
            "requests_refused_total": self.requests_refused_total,
            "spans_accepted_total": self.spans_accepted_total,
            "spans_rejected_total": self.spans_rejected_total,
        }
        for processor in self.processors:
            out.update({f"{processor.name}_{k}": v for k, v in processor.counters().items()})
        with self._lock:
            for name, (incoming, outgoing) in self._items.items():
                out[f"processor_{name}_incoming_items_total"] = incoming
                out[f"processor_{name}_outgoing_items_total"] = outgoing
        out.update({f"writer_{k}": v for k, v in self.writer.counters().items()})
        return out
