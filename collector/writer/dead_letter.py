"""Dead letters: rows the store refused for good, kept on disk with the reason, for an operator to read and replay.

When an insert fails in a way retrying cannot fix (see errors.py), the writer finds the failing rows
and writes every other row of the batch. The failing rows go here, one file per batch:

    <dead-letter directory>/<UTC time>-<token>.jsonl    one JSON object per row:
        {"error": "why the store refused it", "batch": "<token>", "columns": {"TraceId": "...", ...}}

The columns are the row as the writer held it (after redaction, pricing and sampling), so nothing is
stored that the tables would not have stored. To replay rows (after an upgrade that fixes their cause),
`spanhouse dead-letters replay FILE` moves the file into `replay/`; the collector submits files found
there when it starts, like new spans, and deletes each once the spool holds it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanhouse.collector.batch import SpanBatch

log = logging.getLogger("spanhouse.writer")

SUFFIX = ".jsonl"
REPLAY = "replay"


class DeadLetterError(RuntimeError):
    """A dead-letter file cannot be read or written; the message names it."""


@dataclass(frozen=True)
class DeadLetterFile:
    path: Path
    rows: int
    errors: dict[str, int]  # reason -> rows


class DeadLetters:
    """One directory of dead-letter files."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(self, token: str, batch: SpanBatch, reasons: list[str]) -> Path:
        """Write the rows of `batch` with their reasons; the same token always names the same file.

        The writer may write a batch's dead letters again after a crash (it replays the batch with its
        token): the file is replaced whole, never appended, so the rows are kept once.
        """
        existing = sorted(self.directory.glob(f"*-{token}{SUFFIX}")) if self.directory.is_dir() else []
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = existing[0] if existing else self.directory / f"{stamp}-{token}{SUFFIX}"
        names = list(batch.columns)
        lines = []
        for row, reason in enumerate(reasons):
            columns = {name: batch.columns[name][row] for name in names}
            lines.append(json.dumps({"error": reason, "batch": token, "columns": columns},
                                    ensure_ascii=True, separators=(",", ":"), default=_jsonable))
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with open(partial, "w", encoding="ascii") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, target)
        return target

    def files(self) -> list[DeadLetterFile]:
        """The dead-letter files not queued for replay, oldest first, with their row counts and reasons."""
        if not self.directory.is_dir():
            return []
        return [self._summary(path) for path in sorted(self.directory.glob(f"*{SUFFIX}"))]

    def _summary(self, path: Path) -> DeadLetterFile:
        errors: Counter[str] = Counter()
        for record in _records(path):
            errors[str(record.get("error", ""))] += 1
        return DeadLetterFile(path, sum(errors.values()), dict(errors))

    def queue_for_replay(self, name: str) -> Path:
        """Move the file `name` (a name in the directory, or a path to one) into replay/."""
        source = Path(name)
        if not source.is_absolute() and source.parent == Path("."):
            source = self.directory / source
        if source.parent.resolve() != self.directory.resolve() or source.suffix != SUFFIX or not source.is_file():
            raise DeadLetterError(f"{name} is not a dead-letter file in {self.directory} "
                                  "(see `spanhouse dead-letters` for the list)")
        queue = self.directory / REPLAY
        queue.mkdir(exist_ok=True)
        target = queue / source.name
        os.replace(source, target)
        return target

    def pending_replays(self) -> list[tuple[Path, list[SpanBatch]]]:
        """The files queued in replay/, each as the batches of its rows (rows grouped by their columns)."""
        queue = self.directory / REPLAY
        if not queue.is_dir():
            return []
        out = []
        for path in sorted(queue.glob(f"*{SUFFIX}")):
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for record in _records(path):
                columns = record.get("columns")
                if not isinstance(columns, dict):
                    raise DeadLetterError(f"{path}: a line has no 'columns' object")
                groups.setdefault(tuple(columns), []).append(columns)
            batches = [SpanBatch({name: [_restore(row[name]) for row in rows] for name in names}, len(rows))
                       for names, rows in groups.items()]
            out.append((path, batches))
        return out


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeadLetterError(f"cannot read dead-letter file {path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DeadLetterError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DeadLetterError(f"{path}:{number}: not a JSON object")
        records.append(record)
    return records


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    raise TypeError(f"a {type(value).__name__} value cannot be written to a dead-letter file")


def _restore(value: Any) -> Any:
    """JSON gives lists where the batch held tuples (its shared empty Array values): both insert alike."""
    return () if value == [] else value
