"""The collector as a running service: the only module that knows every component.

It opens the store (migrations, retention, prices), builds the processors from the registry, the
writer with its spool and dead letters, the pipeline, the receivers (in-process, or worker
processes) and the query endpoint, and owns their start and stop order:

    start: store -> writer (spool replayed first) -> pipeline -> alert engine -> content archiver
           -> receivers -> query and metrics endpoints
    stop:  receivers -> held spans -> writer (drained within writer.shutdown_timeout_s) -> query and metrics
           endpoints -> alert engine -> content archiver -> store

Nothing below this module imports it; components meet only through the protocols in component.py.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from spanhouse.collector.component import ListenError, Sink
from spanhouse.collector.config import Config, check_query_endpoint, dead_letter_directory, spool_directory
from spanhouse.collector.pipeline import Pipeline
from spanhouse.collector.processors import registry
from spanhouse.collector.processors.price import PriceProcessor
from spanhouse.collector.writer import BatchingWriter, ClickHouseSink, WriterFull
from spanhouse.collector.writer.dead_letter import DeadLetters

log = logging.getLogger("spanhouse.service")


# (what listens, its config key, the command-line flag that moves it)
_LISTENERS = (("OTLP/gRPC", "receiver.grpc.endpoint", "--grpc"), ("OTLP/HTTP", "receiver.http.endpoint", "--http"),
              ("queries", "query.endpoint", "--query-endpoint"), ("metrics", "metrics.endpoint", "metrics.endpoint"))


def check_ports_free(cfg: Config) -> None:
    """Raise ListenError naming the listener, the port and how to move it when a configured port is taken.

    4317 and 4318 are the standard OTLP ports: a local OpenTelemetry Collector, Jaeger or Phoenix often
    holds them. Port 0 (a free port) is not checked; the receivers' own bind still decides.
    """
    endpoints = {"receiver.grpc.endpoint": cfg.receiver.grpc.endpoint,
                 "receiver.http.endpoint": cfg.receiver.http.endpoint, "query.endpoint": cfg.query.endpoint,
                 "metrics.endpoint": cfg.metrics.endpoint}
    for what, key, flag in _LISTENERS:
        endpoint = endpoints[key]
        host, _, port = endpoint.rpartition(":")
        if not endpoint or int(port) == 0:
            continue
        host = host.strip("[]")
        try:
            family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, int(port)))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                continue  # not ours to judge here: the receiver's bind reports it
            raise ListenError(
                f"cannot listen for {what} on {endpoint}: address in use by another process (an OpenTelemetry "
                f"Collector, Jaeger or Phoenix often holds port {port}). Stop it, or choose another port with "
                f"{flag} HOST:PORT (or `{key}` in the config file)") from None


def _submit_replays(writer: BatchingWriter) -> None:
    """Dead-letter files an operator queued for replay (`spanhouse dead-letters replay`): in again, like new spans."""
    dead_letters = writer.dead_letters
    if dead_letters is None:
        return
    try:
        pending = dead_letters.pending_replays()
    except Exception as exc:  # a damaged file must not keep the collector from starting
        log.error("cannot replay dead letters: %s", exc)
        return
    for path, batches in pending:
        try:
            for batch in batches:
                writer.submit(batch)
        except WriterFull as exc:
            log.error("cannot replay %s now (%s); it stays queued for the next start", path, exc)
            return
        path.unlink()
        log.info("replaying %d dead-lettered spans from %s", sum(b.size for b in batches), path.name)


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
        self.alerts: Any = None
        self.content_archiver: Any = None
        self._sink = sink
        self._sink_factory = sink_factory or ClickHouseSink
        self.pipeline: Pipeline | None = None
        self.metrics_server: Any = None
        self._stopped = threading.Event()
        from spanhouse.collector.metrics.http import MetricsEndpoint

        self.metrics = MetricsEndpoint(self)  # GET /metrics and /ready, on the query endpoint and metrics.endpoint

    def start(self) -> None:
        from spanhouse.collector.query.server import QueryServer
        from spanhouse.collector.receiver.decode import describe as describe_decoder
        from spanhouse.collector.receiver.grpc import GrpcReceiver
        from spanhouse.collector.receiver.http import HttpReceiver
        from spanhouse.collector.pricing import sync_model_prices
        from spanhouse.collector.store import Store

        cfg = self.config
        sink = self._sink
        check_ports_free(cfg)  # before the store is created: a busy port is the commonest first-run failure
        check_query_endpoint(cfg)
        processors = registry.build(cfg)
        if sink is None:
            from spanhouse.collector.store.cluster import retention_days

            self.store = Store.open(cfg.store.url)
            if cfg.store.cluster:
                # A cluster's schema (and its TTLs) comes from `spanhouse migrate --print`, run once by the
                # operator; the collector only checks it is there (docs/cluster.md).
                self.store.check_cluster_schema(cfg.store.cluster)
            else:
                self.store.migrate()
                self.store.apply_retention(retention_days(cfg.retention))
            price = next((p for p in processors.all if isinstance(p, PriceProcessor)), None)
            if price is not None:
                sync_model_prices(self.store, price.table, cfg.store.cluster)
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
                                pace_wait_s=cfg.writer.pace_wait_s,
                                dead_letters=DeadLetters(dead_letter_directory(cfg)),
                                unknown_error_attempts=cfg.writer.unknown_error_attempts)
        _submit_replays(writer)
        # Worker processes (receiver.processes) run their own `in_worker` processors; what must see a
        # trace's spans in one place (a tail sampler) runs here on what they hand over.
        self.pipeline = Pipeline(processors.all, writer, handoff_processors=processors.after_handoff)
        self.pipeline.start()
        try:
            self._start_alerts(processors.all)
            self._start_content_archive()
            if cfg.receiver.processes > 1:
                from spanhouse.collector.workers.owner import WorkerPool

                self.receiver = WorkerPool(self.pipeline, cfg)
                if self.alerts is not None:  # the workers redact, and send their secret hits here
                    self.receiver.on_secret_hits = self._worker_secret_hits
            else:
                self.receiver = GrpcReceiver.from_config(self.pipeline, cfg)
            self.receiver.start()
            log.info("OTLP decoding: %s", describe_decoder(cfg.receiver.native_decode))
            if cfg.receiver.http.endpoint:
                self.http_receiver = HttpReceiver.from_config(self.pipeline, cfg)
                self.http_receiver.start()
            if cfg.query.endpoint and self.store is not None:
                self.query_server = QueryServer(self, cfg.query.endpoint)
                self.query_server.start()
            if cfg.metrics.endpoint:
                from spanhouse.collector.metrics.http import MetricsServer

                self.metrics_server = MetricsServer(self.metrics, cfg.metrics.endpoint)
                self.metrics_server.start()
        except Exception:
            self.stop()
            raise

    def _start_alerts(self, processors: list[Any]) -> None:
        """The alert engine over the store and the counters; secret hits of the redact processor go to it at once."""
        from spanhouse.collector.alerts.engine import AlertEngine
        from spanhouse.collector.alerts.secrets import secret_watch
        from spanhouse.collector.processors.redact import RedactProcessor

        cfg = self.config
        if not cfg.alerts.enabled:
            return
        capacity = cfg.spool.max_size_mib * 1024 * 1024 if cfg.spool.enabled else None
        self.alerts = AlertEngine.from_config(cfg.alerts, self.store, self.counters, capacity)
        redact = next((p for p in processors if isinstance(p, RedactProcessor)), None)
        if redact is not None and cfg.alerts.secret_detected.enabled and self.pipeline is not None:
            self.pipeline.watch_after(redact, secret_watch(
                redact.credential_rules, self.alerts.report_secrets, lambda: redact.credential_hits_total))
        self.alerts.start()

    def _start_content_archive(self) -> None:
        """Content by reference (retention.content_days): in the process that owns the store, never on a
        cluster, whose tables the operator changes on every node (docs/security.md)."""
        from spanhouse.collector.store.content_archive import ContentArchiver

        retention = self.config.retention
        if self.store is None or not retention.content_days:
            return
        if self.config.store.cluster:
            log.info("retention.content_days is set but store.cluster is too: content is not replaced by "
                        "references on a cluster (docs/security.md); spans keep it for retention.spans_days")
            return
        self.content_archiver = ContentArchiver(self.store, retention.content_days, retention.content_archive_days)
        self.content_archiver.start()

    def _worker_secret_hits(self, docs: list[dict[str, Any]]) -> None:
        from spanhouse.collector.alerts.rules import SecretHit

        self.alerts.report_secrets([SecretHit.from_json(doc) for doc in docs])

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
        if self.alerts is not None:
            counters.update({f"alerts_{k}": v for k, v in self.alerts.counters().items()})
        if self.content_archiver is not None:
            counters.update({f"content_{k}": v for k, v in self.content_archiver.counters().items()})
        return counters

    def genai_series(self) -> list[Any]:
        """The GenAI metric series each process counted (this one's: OTLP/HTTP and a one-process receiver)."""
        from spanhouse.collector.processors.genai_metrics import GenAIMetricsProcessor

        assert self.pipeline is not None
        parts = [p.table.snapshot() for p in self.pipeline.processors if isinstance(p, GenAIMetricsProcessor)]
        if self.config.receiver.processes > 1 and self.receiver is not None:
            parts.extend(self.receiver.genai_series())
        return parts

    def process_ids(self) -> list[int]:
        """This process and its worker processes: what otelcol_process_* add up."""
        import os

        pids = [os.getpid()]
        if self.config.receiver.processes > 1 and self.receiver is not None:
            pids.extend(self.receiver.worker_pids())
        return pids

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

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
            self.http_receiver.stop(grace_s=5.0)
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
        if self.metrics_server is not None:
            self.metrics_server.stop()
        if self.alerts is not None:
            self.alerts.stop()
        if self.content_archiver is not None:
            self.content_archiver.stop()
        if self.store is not None:
            self.store.close()
        log.info("collector stopped (%d spans lost)", lost)
        return lost
