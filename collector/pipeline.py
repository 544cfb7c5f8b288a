"""Wires receiver -> processors -> writer and owns the collector's lifecycle."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.config import Config, spool_directory
from spanhouse.collector.processors import Processor
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.processors.price import PriceProcessor
from spanhouse.collector.processors.redact import RedactProcessor
from spanhouse.collector.processors.sampling import SampleProcessor
from spanhouse.collector.receiver.decode import Decoder, DecodeResult
from spanhouse.collector.writer import BatchingWriter, ClickHouseSink, WriterFull
from spanhouse.collector.writer.clickhouse import Sink
from spanhouse.collector.writer.spool import decode

log = logging.getLogger("spanhouse.pipeline")


def default_processors(config: Config) -> list[Processor]:
    """The processors in ARCHITECTURE.md order (normalize -> redact -> price -> sample)."""
    return [*_processors_before_sampling(config), SampleProcessor(config.sampling)]


def worker_processors(config: Config) -> list[Processor]:
    """What a worker process runs: normalize -> redact -> price, and the sampler when it decides by
    trace id alone (head sampling); a tail sampler needs a trace's spans in one place: the store's process."""
    processors = _processors_before_sampling(config)
    sampler = SampleProcessor(config.sampling)
    if sampler.active and not sampler.tail:
        processors.append(sampler)
    return processors


def _processors_before_sampling(config: Config) -> list[Processor]:
    from spanhouse.collector.pricing import build_price_table

    processors: list[Processor] = [NormalizeProcessor(), RedactProcessor(config.redaction)]
    if config.pricing.enabled:
        processors.append(PriceProcessor(build_price_table(config.pricing), config.pricing.operations))
    return processors


def tune_gc() -> None:
    """Cyclic GC settings for a receiving process.

    The hot path allocates many short-lived containers per batch; the default generation-0 threshold (700)
    makes the cyclic collector run hundreds of times per batch for garbage that reference counting frees.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class Pipeline:
    """Decode, process, hand to the writer. Thread-safe: receiver threads call `consume` at once."""

    def __init__(self, decoder: Decoder, processors: list[Processor], writer: BatchingWriter,
                 handoff_processors: list[Processor] | None = None) -> None:
        """`handoff_processors`: what batches from worker processes still go through (`submit_encoded`)."""
        self.decoder = decoder
        self.processors = processors
        self.handoff_processors = handoff_processors or []
        self.writer = writer
        self._lock = threading.Lock()
        self.requests_total = 0
        self.requests_refused_total = 0
        self.spans_accepted_total = 0
        self.spans_rejected_total = 0
        # Processors that hold spans between requests (the tail sampler): polled by a ticker thread.
        self._holders = [p for p in processors if getattr(p, "poll_interval_s", 0)]
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()

    def process(self, batch: SpanBatch) -> SpanBatch:
        for processor in self.processors:
            batch = processor.process(batch)
        return batch

    def consume(self, data: bytes, tenant: str) -> DecodeResult:
        """Raises RequestDecodeError (bad request) or WriterFull (retry later); else spans are accepted."""
        try:
            result = self.decoder.decode_bytes(data, tenant)
            accepted = result.batch.size
            batch = self.process(result.batch)
            self._submit(batch)
        except Exception:
            with self._lock:
                self.requests_total += 1
                self.requests_refused_total += 1
            raise
        with self._lock:
            self.requests_total += 1
            self.spans_accepted_total += accepted
            self.spans_rejected_total += result.rejected_spans
        return result

    def submit_encoded(self, payload: bytes, rows: int) -> None:
        """A batch a worker process decoded and processed, in the spool's format: sample it, hand it on.

        Raises WriterFull like `consume`. With sampling off it goes to the spool as it is.
        """
        if all(getattr(p, "active", True) is False for p in self.handoff_processors):
            self.writer.submit_encoded(payload, rows)
            return
        batch = decode(payload, rows)
        for processor in self.handoff_processors:
            batch = processor.process(batch)
        self._submit(batch)

    def _submit(self, batch: SpanBatch) -> None:
        """Hand `batch` to the writer; if it is full, let holding processors take back what they released."""
        try:
            self.writer.submit(batch)
        except WriterFull:
            for holder in self._holders:
                holder.refused(batch)
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
                left += self._submit_released(holder, batch, deadline, wait=timeout_s > 0)
        return left

    def _submit_released(self, holder: Any, batch: SpanBatch, deadline: float, wait: bool) -> int:
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
                    if not wait:
                        raise
                    return rest.size
                self.writer.flush(min(remaining, 1.0))
        return 0

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
        out.update({f"writer_{k}": v for k, v in self.writer.counters().items()})
        return out


class Collector:
    """A running collector: store, pipeline, OTLP/gRPC receiver and the local query endpoint."""

    def __init__(self, config: Config, sink: Sink | None = None,
                 sink_factory: Callable[[Any], Sink] | None = None) -> None:
        """`sink` replaces the store entirely; `sink_factory(store)` builds the sink over the opened store."""
        self.config = config
        self.store: Any = None
        self.receiver: Any = None
        self.http_receiver: Any = None
        self.query_server: Any = None
        self.spool: Any = None
        self._sink = sink
        self._sink_factory = sink_factory or ClickHouseSink
        self.pipeline: Pipeline | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        from spanhouse.collector.query_server import QueryServer
        from spanhouse.collector.receiver.grpc import GrpcReceiver
        from spanhouse.collector.receiver.http import HttpReceiver
        from spanhouse.collector.pricing import sync_model_prices
        from spanhouse.collector.store import Store

        cfg = self.config
        sink = self._sink
        processors = default_processors(cfg)
        if sink is None:
            self.store = Store.open(cfg.store.url)
            self.store.migrate()
            self.store.apply_retention({
                "spans": cfg.retention.spans_days,
                "spans_trace_id_ts": cfg.retention.spans_days,
                "genai_calls": cfg.retention.genai_calls_days,
                "genai_usage_1m": cfg.retention.rollups_days,
                "genai_usage_1h": cfg.retention.rollups_days,
                "trace_costs": cfg.retention.genai_calls_days,
            })
            price = next((p for p in processors if isinstance(p, PriceProcessor)), None)
            if price is not None:
                sync_model_prices(self.store, price.table)
            sink = self._sink_factory(self.store)
        if cfg.spool.enabled:
            from spanhouse.collector.writer.spool import Spool, SpoolError

            try:
                self.spool = Spool(spool_directory(cfg), cfg.spool.max_size_mib * 1024 * 1024, cfg.spool.fsync)
            except SpoolError:
                if self.store is not None:
                    self.store.close()
                raise
        writer = BatchingWriter(sink, cfg.writer.max_batch_rows, cfg.writer.max_wait_s, cfg.writer.max_pending_rows,
                                cfg.writer.retry_initial_s, cfg.writer.retry_max_s, spool=self.spool,
                                pace_wait_s=cfg.writer.pace_wait_s)
        decoder = Decoder(cfg.receiver.max_attribute_value_length, cfg.receiver.max_spans_per_request,
                          cfg.receiver.max_attributes_per_span, cfg.retention.spans_days,
                          cfg.receiver.max_future_skew_s)
        # Worker processes (receiver.processes) run every processor but a tail sampler, which needs a
        # trace's spans in one place: here.
        tail = [p for p in processors if isinstance(p, SampleProcessor) and p.tail]
        self.pipeline = Pipeline(decoder, processors, writer, handoff_processors=tail)
        self.pipeline.start()
        try:
            if cfg.receiver.processes > 1:
                from spanhouse.collector.workers.owner import WorkerPool

                self.receiver = WorkerPool(self.pipeline, cfg)
            else:
                self.receiver = GrpcReceiver.from_config(self.pipeline, cfg)
            self.receiver.start()
            if cfg.receiver.http.endpoint:
                self.http_receiver = HttpReceiver.from_config(self.pipeline, cfg)
                self.http_receiver.start()
            if cfg.query.endpoint and self.store is not None:
                self.query_server = QueryServer(self, cfg.query.endpoint)
                self.query_server.start()
        except Exception:
            self.stop()
            raise

    @property
    def grpc_port(self) -> int:
        return self.receiver.port

    @property
    def http_url(self) -> str:
        """Where OTLP/HTTP exporters send traces (the full /v1/traces URL)."""
        r = self.http_receiver
        host = r.endpoint.rpartition(":")[0]
        return f"http{'s' if r.ssl_context else ''}://{host}:{r.port}/v1/traces"

    def counters(self) -> dict[str, int]:
        """Everything GET /stats shows: the pipeline's counters, the receiver's prefixed with `receiver_`.

        With worker processes, their counters are summed in (their receivers' already carry the prefix).
        """
        assert self.pipeline is not None
        counters = self.pipeline.counters()
        if self.receiver is None:
            return counters
        if self.config.receiver.processes > 1:
            for key, value in self.receiver.counters().items():
                counters[key] = counters.get(key, 0) + value
        else:
            counters.update({f"receiver_{k}": v for k, v in self.receiver.counters().items()})
        if self.http_receiver is not None:
            for key, value in self.http_receiver.counters().items():
                counters[f"receiver_{key}"] = counters.get(f"receiver_{key}", 0) + value
        return counters

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write everything accepted so far, deciding held traces early (as on shutdown)."""
        assert self.pipeline is not None
        deadline = time.monotonic() + timeout_s
        if self.pipeline.release_held(everything=True, timeout_s=timeout_s):
            return False
        return self.pipeline.writer.flush(max(0.0, deadline - time.monotonic()))

    def stop(self) -> int:
        """Stop receiving, write everything accepted, close the store; returns spans lost."""
        if self._stopped.is_set():
            return 0
        self._stopped.set()
        if self.http_receiver is not None:
            self.http_receiver.stop()
        if self.receiver is not None:
            self.receiver.stop(grace_s=5.0)
        lost = 0
        if self.pipeline is not None:
            deadline = time.monotonic() + self.config.writer.shutdown_timeout_s
            lost = self.pipeline.stop_holding(self.config.writer.shutdown_timeout_s)
            if lost:
                log.error("shutdown: %d held spans found no room in the writer and are lost", lost)
            lost += self.pipeline.writer.close(max(0.0, deadline - time.monotonic()))
        if self.query_server is not None:
            self.query_server.stop()
        if self.store is not None:
            self.store.close()
        log.info("collector stopped (%d spans lost)", lost)
        return lost
