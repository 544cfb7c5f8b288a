"""The seams between the collector's components: small protocols, nothing else.

Receivers, workers, processors, the writer and the read side depend on these and
never on one another or on the service that assembles them (service.py):

    Receiver (decodes) --SpanBatch--> Consumer (the pipeline) --> Processor* --> Sink (behind the writer)
                                                        HoldingProcessor: keeps spans between requests
                                                        SettlingProcessor: counts once the writer took them

Every component has a `counters()` of monotonic `<thing>_total` numbers for GET /stats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from spanhouse.collector.batch import SpanBatch
    from spanhouse.collector.receiver.decode import DecodeResult


class ListenError(RuntimeError):
    """A listener (a receiver, the worker pool, the query endpoint) could not bind its address."""


class Receiver(Protocol):
    """Listens for OTLP and hands each request to a Consumer."""

    port: int | None

    def start(self) -> int:
        """Start listening; returns the bound port (the configured one, or the one port 0 picked)."""
        ...

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; calls in progress get `grace_s` to finish."""
        ...

    def counters(self) -> dict[str, int]:
        ...


class Consumer(Protocol):
    """What a receiver hands a request to."""

    def consume(self, result: DecodeResult) -> None:
        """Take the spans a receiver decoded from one request (`result.batch`; the refused ones are counted).

        Raises WriterFull (retry later); otherwise the spans are kept.
        """
        ...


class EncodedConsumer(Protocol):
    """What the worker pool hands batches that worker processes already decoded and processed."""

    def submit_encoded(self, payload: bytes, rows: int) -> None:
        """Take a batch in the spool's format; raises WriterFull (retry later)."""
        ...


@runtime_checkable
class Processor(Protocol):
    """One stage of the data path: a batch in, a batch out (the same object changed, or a new one)."""

    name: str

    def process(self, batch: SpanBatch) -> SpanBatch:
        ...

    def counters(self) -> dict[str, int]:
        ...


@runtime_checkable
class HoldingProcessor(Processor, Protocol):
    """A processor that may keep spans between batches (the tail sampler) and release them later.

    The pipeline polls it every `poll_interval_s` while `holds` is true, and gives back with
    `refused` what it released when the writer could not take it.
    """

    holds: bool
    poll_interval_s: float

    def poll(self, everything: bool = False) -> SpanBatch | None:
        """Spans decided since the last poll (with `everything`, decide all held spans now)."""
        ...

    def refused(self, batch: SpanBatch) -> None:
        """Take back spans released by `poll` that the writer refused."""
        ...


@runtime_checkable
class SettlingProcessor(Processor, Protocol):
    """A processor whose counts must hold only for spans the writer took (the GenAI metrics).

    After each request's batch has gone through it, the pipeline calls `settle` on the same thread:
    True when the writer took the spans, False when they were refused (the client sends them again).
    """

    def settle(self, accepted: bool) -> None:
        ...


class Sink(Protocol):
    """Where the writer's merged batches go."""

    def write(self, batch: SpanBatch, token: str | None = None) -> None:
        """Store the whole batch or raise; a raise means nothing may be assumed stored.

        `token` identifies the batch: writing it again with the same token must not store a second copy.
        Raises RowsNotStorable, before storing anything, for rows the store cannot hold.
        """
        ...

    def probe(self) -> None:
        """Raise unless the store answers a trivial query (a failing batch is then the batch's fault)."""
        ...
