"""The collector's counters as Prometheus metric families, read at scrape time (no second copy of any count).

`CollectorMetrics` is a prometheus_client Collector over what GET /stats shows (`counters()`, which sums
worker processes), the GenAI metric series of every process, the writer's insert latency and the
process's resources. Names follow the OpenTelemetry Collector's own metrics where one exists, so the
alerts users already have keep working; docs/metrics.md lists every metric.
"""

from __future__ import annotations

import os
import re
import resource
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PrometheusCollector

from spanhouse.collector.processors.genai_metrics import (
    CALLS,
    COST,
    DURATION_BUCKETS,
    DURATION_BUCKETS_S,
    DURATION_SUM,
    LABELS,
    OTHER,
    TOKEN_KINDS,
    TOKENS,
    TTFT_BUCKETS,
    TTFT_BUCKETS_S,
    TTFT_SUM,
    Series,
    merge_into,
)

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.pipeline import Pipeline

_PROCESSOR_ITEMS = re.compile(r"^processor_(.+)_(incoming|outgoing)_items_total$")
_REDACTION_HITS = re.compile(r"^redact_hits_(.+)_total$")
RECEIVER = "otlp"
EXPORTER = "clickhouse"


class Observed(Protocol):
    """What the metrics read of the running collector (service.Collector is one)."""

    config: Config
    pipeline: Pipeline | None
    spool: Any

    def counters(self) -> dict[str, int]:
        ...

    def genai_series(self) -> list[Series]:
        ...

    def process_ids(self) -> list[int]:
        ...


class SeriesCap:
    """Folds label sets past `max_series` into `other` when the processes' series are merged for a scrape.

    Each process caps its own series; their union can pass the cap. A label set admitted once stays
    admitted, so a series never moves into `other` between scrapes (its counter would go backwards).
    """

    def __init__(self, max_series: int) -> None:
        self.max_series = max_series
        self._admitted: set[tuple[str, ...]] = set()

    def merge(self, parts: list[Series]) -> Series:
        merged: Series = {}
        for part in parts:
            for key in sorted(part):  # the same admission order on every scrape
                values = part[key]
                if key != OTHER and key not in self._admitted:
                    if len(self._admitted) < self.max_series:
                        self._admitted.add(key)
                    else:
                        key = OTHER
                merge_into(merged, {key: values})
        return merged


class CollectorMetrics(PrometheusCollector):
    def __init__(self, collector: Observed) -> None:
        self.collector = collector
        self.started = time.time()
        self.cap = SeriesCap(collector.config.metrics.max_series)

    def collect(self) -> Iterator[Metric]:
        counters = self.collector.counters()
        yield from self._receiver(counters)
        yield from self._exporter(counters)
        yield from self._processors(counters)
        yield from self._process()
        yield from self._pipeline(counters)
        yield from self._genai()

    # --- what OpenTelemetry Collector users alert on ------------------------------------------

    def _receiver(self, counters: dict[str, int]) -> Iterator[Metric]:
        accepted = CounterMetricFamily("otelcol_receiver_accepted_spans", "Spans the collector took (the client "
                                       "got OK).", labels=["receiver", "transport"])
        refused = CounterMetricFamily("otelcol_receiver_refused_spans", "Spans refused: requests answered 'retry "
                                      "later' or failed, and spans rejected as invalid.",
                                      labels=["receiver", "transport"])
        for transport, prefix in (("grpc", "receiver_"), ("http", "receiver_http_")):
            accepted.add_metric([RECEIVER, transport], counters.get(f"{prefix}spans_accepted_total", 0))
            refused.add_metric([RECEIVER, transport], counters.get(f"{prefix}spans_refused_total", 0))
        yield accepted
        yield refused

    def _exporter(self, counters: dict[str, int]) -> Iterator[Metric]:
        writer = self._writer()
        yield _counter("otelcol_exporter_sent_spans", "Spans written to the store.",
                       counters.get("writer_spans_written_total", 0))
        yield _counter("otelcol_exporter_send_failed_spans", "Spans the store refused for good (dead-lettered) "
                       "or lost at shutdown without a spool.",
                       counters.get("writer_spans_dead_lettered_total", 0) + counters.get("writer_spans_lost_total", 0))
        # The bound whose filling makes the collector refuse spans: the spool's bytes when there is one,
        # else the spans held in memory.
        if self.collector.spool is not None:
            size, capacity = counters.get("writer_spool_bytes", 0), self.collector.spool.max_bytes
        else:
            size = counters.get("writer_spans_in_memory", 0)
            capacity = writer.max_pending_rows if writer is not None else 0
        yield _gauge("otelcol_exporter_queue_size", "What the writer holds toward its bound: spool bytes with a "
                     "spool, else spans in memory.", size)
        yield _gauge("otelcol_exporter_queue_capacity", "The bound of otelcol_exporter_queue_size: "
                     "spool.max_size_mib in bytes, else writer.max_pending_rows.", capacity)

    def _processors(self, counters: dict[str, int]) -> Iterator[Metric]:
        families = {
            "incoming": CounterMetricFamily("otelcol_processor_incoming_items", "Spans into each processor.",
                                            labels=["processor"]),
            "outgoing": CounterMetricFamily("otelcol_processor_outgoing_items", "Spans out of each processor "
                                            "(the sampler's later releases included).", labels=["processor"]),
        }
        for key, value in sorted(counters.items()):
            match = _PROCESSOR_ITEMS.match(key)
            if match:
                families[match.group(2)].add_metric([match.group(1)], value)
        yield from families.values()

    def _process(self) -> Iterator[Metric]:
        rss, cpu = _resources(self.collector.process_ids())
        yield _gauge("otelcol_process_uptime", "Seconds since the collector started.", time.time() - self.started)
        yield _gauge("otelcol_process_memory_rss", "Resident memory in bytes, worker processes included.", rss)
        yield _counter("otelcol_process_cpu_seconds", "CPU time (user and system), worker processes included.", cpu)

    # --- spanhouse's own ----------------------------------------------------------------------

    def _pipeline(self, counters: dict[str, int]) -> Iterator[Metric]:
        c = counters.get
        yield _gauge("spanhouse_spool_bytes", "Bytes in the spool not yet written to the store.", c("writer_spool_bytes", 0))
        spool = self.collector.spool
        yield _gauge("spanhouse_spool_capacity_bytes", "spool.max_size_mib in bytes (0 without a spool).",
                     spool.max_bytes if spool is not None else 0)
        yield _gauge("spanhouse_spool_batches", "Accepted batches not yet written.", c("writer_batches_pending", 0))
        yield _gauge("spanhouse_writer_spans_pending", "Accepted spans not yet written.", c("writer_spans_pending", 0))
        yield _counter("spanhouse_writer_insert_errors", "Insert attempts that failed (each is retried or split).",
                       c("writer_write_errors_total", 0))
        yield _counter("spanhouse_dead_lettered_spans", "Spans the store refused for good, set aside in the "
                       "dead-letter directory.", c("writer_spans_dead_lettered_total", 0))
        yield _counter("spanhouse_sampled_out_spans", "Spans sampling did not keep.", c("sample_spans_sampled_out_total", 0))
        yield _counter("spanhouse_sampled_out_traces", "Traces sampling did not keep.", c("sample_traces_dropped_total", 0))
        yield _gauge("spanhouse_workers", "Worker processes configured (receiver.processes; 1 without workers).",
                     c("workers", 1))
        yield _gauge("spanhouse_workers_running", "Worker processes running.", c("workers_running", 1))
        yield _counter("spanhouse_worker_restarts", "Worker processes that exited and were started again.",
                       c("workers_restarted_total", 0))
        yield _counter("spanhouse_content_archived", "Content values copied from spans into genai_content "
                       "(retention.content_days).", c("content_archived_total", 0))
        yield _counter("spanhouse_content_referenced", "Content values in spans replaced by a reference to "
                       "genai_content.", c("content_referenced_total", 0))
        yield _gauge("spanhouse_content_pending_values", "Content values older than retention.content_days "
                     "still in spans, as the last archiving run left them.", c("content_values_pending", 0))
        yield _counter("spanhouse_content_archive_runs", "Content archiving runs.", c("content_runs_total", 0))
        yield _counter("spanhouse_content_archive_errors", "Content archiving runs that failed (the next run "
                       "resumes).", c("content_run_errors_total", 0))
        credential = self._credential_rules()
        hits = CounterMetricFamily("spanhouse_redaction_hits", "Values redacted, by rule; kind is credential for "
                                   "rules that find secrets, pii for the others.", labels=["rule", "kind"])
        for key, value in sorted(counters.items()):
            match = _REDACTION_HITS.match(key)
            if match:
                rule = match.group(1)
                hits.add_metric([rule, "credential" if rule in credential else "pii"], value)
        yield hits
        yield self._insert_latency()

    def _insert_latency(self) -> Metric:
        family = HistogramMetricFamily("spanhouse_writer_insert_duration_seconds", "Duration of each insert "
                                       "attempt into the store, failed ones included.")
        writer = self._writer()
        if writer is not None:
            counts, total = writer.insert_latency.snapshot()
            family.add_metric([], _buckets(writer.insert_latency.bounds, counts), total)
        return family

    def _genai(self) -> Iterator[Metric]:
        labels = list(LABELS)
        calls = CounterMetricFamily("spanhouse_genai_calls", "GenAI calls (spans with a gen_ai operation), before "
                                    "sampling, a call traced twice once.", labels=labels)
        tokens = CounterMetricFamily("spanhouse_genai_tokens", "Tokens by kind, as the calls report them (input "
                                     "includes cached_input); agent, workflow and tool spans add none.",
                                     labels=[*labels, "kind"])
        cost = CounterMetricFamily("spanhouse_genai_cost_usd", "Cost in USD from the price table.", labels=labels)
        duration = HistogramMetricFamily("spanhouse_genai_call_duration_seconds", "Duration of GenAI calls.",
                                         labels=labels)
        ttft = HistogramMetricFamily("spanhouse_genai_time_to_first_token_seconds", "Time to the first token of "
                                     "streamed calls that report it.", labels=labels)
        for key, values in sorted(self.cap.merge(self.collector.genai_series()).items()):
            label_values = list(key)
            calls.add_metric(label_values, values[CALLS])
            for i, kind in enumerate(TOKEN_KINDS):
                tokens.add_metric([*label_values, kind], values[TOKENS + i])
            cost.add_metric(label_values, values[COST])
            duration.add_metric(label_values, _buckets(
                DURATION_BUCKETS_S, values[DURATION_BUCKETS:DURATION_BUCKETS + len(DURATION_BUCKETS_S) + 1]),
                values[DURATION_SUM])
            ttft_counts = values[TTFT_BUCKETS:TTFT_BUCKETS + len(TTFT_BUCKETS_S) + 1]
            if any(ttft_counts):
                ttft.add_metric(label_values, _buckets(TTFT_BUCKETS_S, ttft_counts), values[TTFT_SUM])
        yield from (calls, tokens, cost, duration, ttft)

    # --- helpers ------------------------------------------------------------------------------

    def _writer(self) -> Any:
        pipeline = self.collector.pipeline
        return pipeline.writer if pipeline is not None else None

    def _credential_rules(self) -> set[str]:
        pipeline = self.collector.pipeline
        for processor in pipeline.processors if pipeline is not None else ():
            rules = getattr(processor, "credential_rules", None)
            if rules is not None:
                return set(rules)
        return set()


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _buckets(bounds: tuple[float, ...], counts: list[Any]) -> list[tuple[str, float]]:
    """Per-bucket counts (the last above every bound) as Prometheus' cumulative `le` buckets."""
    out: list[tuple[str, float]] = []
    running = 0.0
    for bound, count in zip(bounds, counts):
        running += count
        out.append((repr(float(bound)), running))
    out.append(("+Inf", running + counts[len(bounds)]))
    return out


_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _resources(pids: list[int]) -> tuple[float, float]:
    """(resident bytes, CPU seconds) summed over `pids`, from /proc; this process alone where /proc is missing."""
    rss = cpu = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                rss += int(statm.read().split()[1]) * _PAGE_BYTES
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
                fields = stat.read().rpartition(")")[2].split()
                cpu += (int(fields[11]) + int(fields[12])) / _TICKS
        except (OSError, ValueError, IndexError):
            if pid == os.getpid():
                usage = resource.getrusage(resource.RUSAGE_SELF)
                rss += usage.ru_maxrss * 1024
                cpu += usage.ru_utime + usage.ru_stime
    return rss, cpu
