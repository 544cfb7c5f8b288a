"""The writer's configuration: batching, pacing, retries, dead letters, and the disk spool."""

from __future__ import annotations

from dataclasses import dataclass

from spanhouse.collector.settings import ConfigError, require_positive


@dataclass
class WriterConfig:
    max_batch_rows: int = 20000
    max_wait_s: float = 1.0
    # Spans kept in memory until written; beyond it they wait only in the spool (or, without one,
    # the receiver answers UNAVAILABLE).
    max_pending_rows: int = 200000
    # A receiving call waits up to this long while 1.5 batches are already queued for the writer,
    # so clients send at the store's pace; 0 accepts at once (the queue then grows under overload).
    pace_wait_s: float = 2.0
    shutdown_timeout_s: float = 30.0
    # Backoff between insert attempts: doubles from retry_initial_s up to retry_max_s, with jitter.
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    # Rows the store refuses for good go here with the reason ("" = `dead-letter` in the spool directory).
    dead_letter_directory: str = ""
    # Failures of a kind the writer does not know, while the store answers, before a batch is split.
    unknown_error_attempts: int = 5

    def validate(self) -> None:
        positive: dict[str, float] = {
            "writer.max_batch_rows": self.max_batch_rows,
            "writer.max_wait_s": self.max_wait_s,
            "writer.max_pending_rows": self.max_pending_rows,
            "writer.shutdown_timeout_s": self.shutdown_timeout_s,
            "writer.retry_initial_s": self.retry_initial_s,
            "writer.retry_max_s": self.retry_max_s,
            "writer.unknown_error_attempts": self.unknown_error_attempts,
        }
        require_positive(positive)
        if self.max_pending_rows < self.max_batch_rows:
            raise ConfigError(
                f"writer.max_pending_rows ({self.max_pending_rows}) must be at least "
                f"writer.max_batch_rows ({self.max_batch_rows})"
            )
        if self.retry_max_s < self.retry_initial_s:
            raise ConfigError(f"writer.retry_max_s ({self.retry_max_s}) must be at least "
                              f"writer.retry_initial_s ({self.retry_initial_s})")
        if not 0 <= self.pace_wait_s <= 10:
            raise ConfigError(f"writer.pace_wait_s: must be between 0 (no pacing) and 10 seconds "
                              f"(OTLP exporters give up on a call after 10 s by default), "
                              f"got {self.pace_wait_s}")


@dataclass
class SpoolConfig:
    # Append-only disk log of every acknowledged batch until the store has it (see docs/durability.md).
    enabled: bool = True
    # "" = a `spool` folder inside the embedded store's directory, or ./spanhouse-spool for a server URL.
    directory: str = ""
    # At this size new requests get UNAVAILABLE until the store catches up.
    max_size_mib: int = 1024
    # fsync every record before answering OK: survives power loss too, at a cost per request.
    fsync: bool = False

    def validate(self) -> None:
        if self.max_size_mib <= 0:
            raise ConfigError(f"spool.max_size_mib: must be greater than 0, got {self.max_size_mib}")
