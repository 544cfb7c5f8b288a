"""The processors in pipeline order, and where each may run.

One entry per processor: its name, how it is made from the configuration (None when the
configuration turns it off) and whether it may run in a worker process. Worker processes
(`receiver.processes` > 1) run the longest leading run of processors that may run there; the
rest runs in the store's process on the batches the workers hand over. Adding a processor is one
module under processors/ and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spanhouse.collector.component import HoldingProcessor, Processor
from spanhouse.collector.config import Config


@dataclass(frozen=True)
class ProcessorFactory:
    name: str
    create: Callable[[Config], Processor | None]
    # Whether this instance can do its job seeing one request's spans at a time. A processor that
    # holds spans until a trace is complete (the tail sampler) needs every span in one place.
    runs_in_worker: Callable[[Processor], bool]


def _normalize(config: Config) -> Processor:
    from spanhouse.collector.processors.normalize import NormalizeProcessor

    return NormalizeProcessor()


def _redact(config: Config) -> Processor:
    from spanhouse.collector.processors.redact import RedactProcessor

    return RedactProcessor(config.redaction)


def _price(config: Config) -> Processor | None:
    if not config.pricing.enabled:
        return None
    from spanhouse.collector.pricing import build_price_table
    from spanhouse.collector.processors.price import PriceProcessor

    return PriceProcessor(build_price_table(config.pricing), config.pricing.operations)


def _dedup(config: Config) -> Processor | None:
    if not config.dedup.enabled:
        return None
    from spanhouse.collector.processors.dedup import DedupProcessor

    return DedupProcessor(config.dedup)


def _genai_metrics(config: Config) -> Processor:
    from spanhouse.collector.processors.genai_metrics import GenAIMetricsProcessor

    return GenAIMetricsProcessor(config.metrics.max_series)


def _sample(config: Config) -> Processor:
    from spanhouse.collector.processors.sampling import SampleProcessor

    return SampleProcessor(config.sampling)


def _anywhere(processor: Processor) -> bool:
    return True


def _unless_holding(processor: Processor) -> bool:
    return not (isinstance(processor, HoldingProcessor) and processor.holds)


# ARCHITECTURE.md order: normalize -> redact -> price -> (dedup) -> sample; the GenAI metrics count
# priced, deduplicated calls before sampling drops any.
FACTORIES: tuple[ProcessorFactory, ...] = (
    ProcessorFactory("normalize", _normalize, _anywhere),
    ProcessorFactory("redact", _redact, _anywhere),
    ProcessorFactory("price", _price, _anywhere),
    # Its pairs come from one process's exporter, over one connection, so to one worker.
    ProcessorFactory("dedup", _dedup, _anywhere),
    # Counts per process; worker processes report their series to the owner with their counters.
    ProcessorFactory("genai_metrics", _genai_metrics, _anywhere),
    ProcessorFactory("sample", _sample, _unless_holding),
)


@dataclass(frozen=True)
class Processors:
    """The configured processors, and how they divide between worker processes and the store's process."""

    all: list[Processor]  # in order: what one process runs
    in_worker: list[Processor]  # what each worker process runs (a separate instance per worker)
    after_handoff: list[Processor]  # what the store's process runs on batches the workers hand over


def build(config: Config) -> Processors:
    made = [(factory, factory.create(config)) for factory in FACTORIES]
    present = [(factory, processor) for factory, processor in made if processor is not None]
    split = next((i for i, (factory, processor) in enumerate(present) if not factory.runs_in_worker(processor)),
                 len(present))
    processors = [processor for _, processor in present]
    return Processors(processors, processors[:split], processors[split:])
