"""Content by reference: message content older than retention.content_days moves out of `spans`.

Each run looks at the day partitions of `spans` with rows older than the cutoff (now - content_days), oldest
first, and for each:

1. counts its content values by state (schemas/admin/content_state.sql);
2. copies the values not yet archived into genai_content (content_copy.sql), the exact bytes and their
   SHA-256, in statements of COPY_STEP_VALUES values, at most `max_values_per_run` values a run (the rest
   waits for the next run);
3. counts again: what was copied is what now counts as archived;
4. replaces, in `spans`, each value genai_content holds by its reference (content_rewrite.sql, a mutation
   that the engine runs in the background; the run waits for it to finish).

Safe by construction rather than by order alone: the rewrite replaces a value only when genai_content holds
that very value (tenant, trace, span, key and SHA-256), so a crash between the steps, a partial copy or spans
that arrive late never lose content; running it again copies what is missing and rewrites what is archived.
A partition found clean is skipped until its parts change. Runs in the process that owns the store, every
`interval_s`, and never on a cluster (store.cluster), whose tables are changed on every node by the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spanhouse.collector import content_keys
from spanhouse.collector.store.errors import sql_file

log = logging.getLogger("spanhouse.content")

# How long a run waits for the engine to finish a rewrite before leaving it to finish on its own.
MUTATION_WAIT_S = 600.0
MUTATION_POLL_S = 0.2
# Values one copy statement takes at most (a run takes several, up to max_values_per_run).
COPY_STEP_VALUES = 50_000
# The first run waits this long after start-up (spool replay and first inserts go first).
FIRST_RUN_DELAY_S = 60.0


@dataclass
class PartitionResult:
    partition: str
    archived: int  # values copied into genai_content
    referenced: int  # values replaced by a reference in spans
    left: int  # content values still unarchived (the budget ran out, or late spans)


class ContentArchiver:
    """Runs the archiving steps over the store; `start()` every `interval_s`, tests call `run_once(now)`."""

    def __init__(self, store: Any, content_days: int, archive_days: int, interval_s: float = 3600.0,
                 max_values_per_run: int = 1_000_000, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.content_days = content_days
        self.archive_days = archive_days
        self.interval_s = interval_s
        self.max_values_per_run = max_values_per_run
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        # partition id -> (rows, parts, last change) when it was last found with nothing to do
        self._clean: dict[str, tuple[int, int, str]] = {}
        self.runs_total = 0
        self.run_errors_total = 0
        self.values_archived_total = 0
        self.values_referenced_total = 0
        self.partitions_checked_total = 0
        self.values_pending = 0

    @property
    def enabled(self) -> bool:
        return self.content_days > 0

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="spanhouse-content-archive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)

    def _loop(self) -> None:
        delay = min(FIRST_RUN_DELAY_S, self.interval_s)
        while not self._stop.wait(delay):
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:  # the archiver must outlive any one failure; the next run resumes
                log.exception("content archiving failed; the next run resumes where this one stopped")
            delay = max(0.0, self.interval_s - (time.monotonic() - started))

    def counters(self) -> dict[str, int]:
        return {"runs_total": self.runs_total, "run_errors_total": self.run_errors_total,
                "archived_total": self.values_archived_total, "referenced_total": self.values_referenced_total,
                "partitions_checked_total": self.partitions_checked_total, "values_pending": self.values_pending}

    def cutoff(self, now: float) -> int:
        """Spans that started before this (Unix nanoseconds) have their content archived.

        A number rather than a date-time: the engine reads a date-time parameter in its own time zone."""
        return int(now * 1e9) - self.content_days * 86400 * 10**9

    def run_once(self, now: float | None = None, copy_only: bool = False) -> list[PartitionResult]:
        """One pass over the partitions older than the cutoff; returns what it did in each one worked on.

        `copy_only` stops after the copy (what a crash between the two steps leaves behind).
        """
        if not self.enabled:
            return []
        with self._run_lock:
            self.runs_total += 1
            try:
                return self._run(self.cutoff(self.clock() if now is None else now), copy_only)
            except Exception:
                self.run_errors_total += 1
                raise

    def _run(self, cutoff: int, copy_only: bool) -> list[PartitionResult]:
        budget = self.max_values_per_run
        results = []
        pending = 0
        for partition, rows, parts, changed, whole in self.store.query_rows(
                sql_file("admin/content_partitions.sql"), {"cutoff_ns": cutoff}):
            fingerprint = (int(rows), int(parts), str(changed))
            if whole and self._clean.get(partition) == fingerprint:
                continue
            self.partitions_checked_total += 1
            result = self._partition(partition, cutoff, budget, copy_only)
            pending += result.left
            if result.archived or result.referenced:
                results.append(result)
                log.info("content archive: partition %s: %d values archived, %d replaced by references, %d left",
                         partition, result.archived, result.referenced, result.left)
            elif result.left == 0 and whole:
                self._clean[partition] = fingerprint
            budget -= result.archived
            if budget <= 0:
                break
        self.values_pending = pending
        return results

    def _params(self, partition: str, cutoff: int) -> dict[str, Any]:
        return {**content_keys.sql_parameters(), "partition": partition,
                "cutoff_ns": cutoff, "archive_days": self.archive_days}

    def _state(self, params: dict[str, Any]) -> tuple[int, int, int]:
        ((unarchived, archived, referenced),) = self.store.query_rows(sql_file("admin/content_state.sql"), params)
        return int(unarchived), int(archived), int(referenced)

    def _partition(self, partition: str, cutoff: int, budget: int, copy_only: bool) -> PartitionResult:
        params = self._params(partition, cutoff)
        unarchived, archived, referenced = self._state(params)
        copied = 0
        if unarchived and budget > 0:
            # In steps: the store answers one statement at a time, and queries wait while a copy runs.
            wanted = min(unarchived, budget)
            for start in range(0, wanted, COPY_STEP_VALUES):
                step = min(COPY_STEP_VALUES, wanted - start)
                self.store.command(sql_file("admin/content_copy.sql"), {**params, "max_values": step})
            before = unarchived
            unarchived, archived, referenced = self._state(params)
            copied = max(0, before - unarchived)
            self.values_archived_total += copied
        if copy_only or not archived:
            return PartitionResult(partition, copied, 0, unarchived)
        self._rewrite(params)
        after = self._state(params)
        replaced = max(0, after[2] - referenced)
        self.values_referenced_total += replaced
        if after[1]:
            log.warning("content archive: partition %s: %d archived values still unreplaced after the rewrite; "
                        "the next run tries again", partition, after[1])
        return PartitionResult(partition, copied, replaced, after[0])

    def _rewrite(self, params: dict[str, Any]) -> None:
        """Start the rewrite mutation and wait until the engine has finished it (or fails it)."""
        if self.store.query_rows(sql_file("admin/content_mutations.sql")):
            # Another mutation of spans is still running (an earlier rewrite left to finish on its own): one at
            # a time, so that the counts after this one are its own.
            self._wait_for_mutations()
        self.store.command(sql_file("admin/content_rewrite.sql"), params)
        self._wait_for_mutations()

    def _wait_for_mutations(self) -> None:
        deadline = time.monotonic() + MUTATION_WAIT_S
        while True:
            running = self.store.query_rows(sql_file("admin/content_mutations.sql"))
            if not running:
                return
            for mutation_id, ours, reason in running:
                if reason and ours:
                    # A rewrite the engine cannot apply would be retried forever and hold back merges.
                    log.error("content archive: mutation %s of spans fails (%s); stopping it: content stays in "
                              "spans until the next run", mutation_id, str(reason)[:300])
                    self.store.command(sql_file("admin/content_kill_mutation.sql"), {"id": mutation_id})
            if time.monotonic() > deadline or self._stop.wait(MUTATION_POLL_S):
                log.warning("content archive: a rewrite of spans is still running; it finishes on its own")
                return
