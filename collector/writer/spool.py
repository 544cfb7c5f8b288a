"""Disk spool: an append-only, checksummed log of accepted batches, replayed in order.

Every batch the collector acknowledges is first appended here; the writer
inserts batches in spool order and moves a commit cursor past them once the
store has them. What lies beyond the cursor at start-up (a crash, a store that
was down at shutdown) is written first, in order.

Layout of the spool directory:

    LOCK                          flock()ed while a collector uses the spool
    cursor                        two 128-byte slots, see `_Cursor`
    00000000000000000001.seg      segments: records, appended, never rewritten
    quarantine/<seg>-<offset>.bad bytes that failed their checksum, set aside

A record is a 16-byte header, `b"SHS1"`, payload length (u32), span count
(u32), CRC-32 of span count and payload (u32), followed by the payload: the
batch's column dict as `marshal` (version 4) data. marshal is CPython's own
fast format for built-in types (every SpanBatch value is one: str, int,
float, None, list, tuple, dict) and, unlike pickle, cannot run code when read.
Records are never decoded before their checksum matches.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import marshal
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from spanhouse.collector.batch import SpanBatch

log = logging.getLogger("spanhouse.spool")

MAGIC = b"SHS1"
HEADER = struct.Struct(">4sIII")  # magic, payload length, span count, crc32(span count + payload)
MARSHAL_VERSION = 4
SEGMENT_SUFFIX = ".seg"
MAX_SEGMENT_BYTES = 64 * 1024 * 1024

# A position in the spool: (segment number, byte offset). Tuples compare in spool order.
Position = tuple[int, int]


class SpoolError(RuntimeError):
    """The spool cannot take a batch; the collector answers 'retry later'."""


class SpoolFull(SpoolError):
    """The spool holds `max_bytes` already."""


class SpoolWriteError(SpoolError):
    """Writing to the spool's disk failed (disk full, I/O error); nothing was appended."""


class SpoolLocked(SpoolError):
    """Another process uses this spool directory."""


@dataclass(frozen=True)
class SpooledRecord:
    start: Position
    end: Position
    rows: int


@dataclass(frozen=True)
class Intent:
    """An insert that had begun when the spool was last closed: replay exactly these records with this token."""

    end: Position
    token: str


def encode(batch: SpanBatch) -> bytes:
    return marshal.dumps(batch.columns, MARSHAL_VERSION)


def decode(payload: bytes, rows: int) -> SpanBatch:
    """The batch `encode` wrote; raises ValueError if `payload` is not one of `rows` spans."""
    columns = marshal.loads(payload)
    if not isinstance(columns, dict):
        raise ValueError(f"not a batch of columns: {type(columns).__name__}")
    return SpanBatch(columns, rows)


class _Cursor:
    """Committed position plus the insert in progress, in two alternating fixed-size slots.

    Each slot is overwritten in place (no new disk space is needed, so a full disk
    cannot stop commits) and carries a sequence number and a CRC; a torn write
    leaves the other slot valid.
    """

    SLOT = struct.Struct(">QQQBQQ32sI")
    SLOT_BYTES = 128

    def __init__(self, path: Path, sync: bool) -> None:
        self.path = path
        self.sync = sync
        fresh = not path.exists()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.seq = 0
        self.committed: Position = (0, 0)
        self.intent: Intent | None = None
        if fresh or os.fstat(self.fd).st_size < 2 * self.SLOT_BYTES:
            os.pwrite(self.fd, bytes(2 * self.SLOT_BYTES), 0)
            return
        best = None
        for slot in (0, 1):
            raw = os.pread(self.fd, self.SLOT_BYTES, slot * self.SLOT_BYTES)[: self.SLOT.size]
            if len(raw) < self.SLOT.size:
                continue
            *fields, crc = self.SLOT.unpack(raw)
            if zlib.crc32(raw[:-4]) != crc or fields[0] == 0:
                continue
            if best is None or fields[0] > best[0]:
                best = fields
        if best is not None:
            seq, c_seg, c_off, has_intent, e_seg, e_off, token = best
            self.seq = seq
            self.committed = (c_seg, c_off)
            if has_intent:
                self.intent = Intent((e_seg, e_off), token.rstrip(b"\0").decode("ascii"))

    def store(self, committed: Position, intent: Intent | None) -> None:
        self.seq += 1
        token = intent.token.encode("ascii") if intent else b""
        end = intent.end if intent else (0, 0)
        body = self.SLOT.pack(self.seq, *committed, 1 if intent else 0, *end, token, 0)[:-4]
        slot = body + struct.pack(">I", zlib.crc32(body))
        os.pwrite(self.fd, slot.ljust(self.SLOT_BYTES, b"\0"), (self.seq % 2) * self.SLOT_BYTES)
        if self.sync:
            os.fsync(self.fd)
        self.committed = committed
        self.intent = intent

    def close(self) -> None:
        os.close(self.fd)


class Spool:
    """Append from any thread; read, begin and commit from the one writer thread."""

    def __init__(self, directory: str | Path, max_bytes: int, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.segment_bytes = max(1024 * 1024, min(MAX_SEGMENT_BYTES, max_bytes // 8))
        self._lock = threading.Lock()
        self.records_quarantined_total = 0
        self.bytes_quarantined_total = 0
        self.write_errors_total = 0
        self._closed = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "quarantine").mkdir(exist_ok=True)
            self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SpoolLocked(f"spool directory {self.directory} is in use by another collector "
                              "(give each collector its own spool.directory)") from None
        self._cursor = _Cursor(self.directory / "cursor", fsync)
        self._sizes: dict[int, int] = {}  # live segment -> bytes
        self._read_fds: dict[int, int] = {}
        self.recovered: list[SpooledRecord] = []
        self.recovered_intent: Intent | None = None
        self._recover()
        self._active = max(self._sizes, default=self._cursor.committed[0]) + 1
        self._active_fd = self._open_segment(self._active)
        self._sizes[self._active] = 0

    # --- start-up ------------------------------------------------------------------

    def _segment_path(self, seg: int) -> Path:
        return self.directory / f"{seg:020d}{SEGMENT_SUFFIX}"

    def _open_segment(self, seg: int) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        return os.open(self._segment_path(seg), flags, 0o600)

    def _recover(self) -> None:
        committed = self._cursor.committed
        segments = sorted(int(p.stem) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())
        for seg in segments:
            path = self._segment_path(seg)
            if seg < committed[0]:
                path.unlink()
                continue
            data = path.read_bytes()
            self._sizes[seg] = len(data)
            self._scan(seg, data, committed[1] if seg == committed[0] else 0)
        intent = self._cursor.intent
        if intent is not None and any(r.end <= intent.end for r in self.recovered):
            self.recovered_intent = intent
        rows = sum(r.rows for r in self.recovered)
        if rows:
            log.warning("spool %s holds %d spans in %d batches not yet written; writing them first",
                        self.directory, rows, len(self.recovered))

    def _scan(self, seg: int, data: bytes, offset: int) -> None:
        size = len(data)
        while offset < size:
            length = self._valid_record_at(data, offset)
            if length is not None:
                rows = HEADER.unpack_from(data, offset)[2]
                self.recovered.append(SpooledRecord((seg, offset), (seg, offset + length), rows))
                offset += length
                continue
            # Corrupt or torn: set the bytes up to the next valid record aside, never replay them.
            bad_end = offset + 1
            while True:
                bad_end = data.find(MAGIC, bad_end)
                if bad_end < 0:
                    bad_end = size
                    break
                if self._valid_record_at(data, bad_end) is not None:
                    break
                bad_end += 1
            self._quarantine(seg, offset, data[offset:bad_end])
            offset = bad_end

    @staticmethod
    def _valid_record_at(data: bytes, offset: int) -> int | None:
        if len(data) - offset < HEADER.size:
            return None
        magic, length, rows, crc = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + length
        if magic != MAGIC or end > len(data):
            return None
        checked = zlib.crc32(data[offset + HEADER.size:end], zlib.crc32(struct.pack(">I", rows)))
        return HEADER.size + length if checked == crc else None

    def _quarantine(self, seg: int, offset: int, raw: bytes) -> None:
        target = self.directory / "quarantine" / f"{seg:020d}-{offset}.bad"
        try:
            target.write_bytes(raw)
            where = f"moved to {target}"
        except OSError as exc:
            where = f"could not be copied to {target} ({exc.strerror}); left in the segment, skipped"
        self.records_quarantined_total += 1
        self.bytes_quarantined_total += len(raw)
        log.error("spool segment %s: %d bytes at offset %d fail their checksum (corrupt or torn record); "
                  "not replayed, %s", self._segment_path(seg).name, len(raw), offset, where)

    # --- appending (receiver threads) ----------------------------------------------

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def append(self, payload: bytes, rows: int) -> tuple[Position, Position]:
        """Append one record; returns its (start, end). Raises SpoolFull or SpoolWriteError."""
        crc = zlib.crc32(payload, zlib.crc32(struct.pack(">I", rows)))
        record = HEADER.pack(MAGIC, len(payload), rows, crc) + payload
        with self._lock:
            if self._closed:
                raise SpoolError("spool is closed")
            used = sum(self._sizes.values())
            if used + len(record) > self.max_bytes:
                raise SpoolFull(f"spool {self.directory} holds {used} bytes "
                                f"(spool.max_size_mib={self.max_bytes // (1024 * 1024)})")
            if self._sizes[self._active] and self._sizes[self._active] + len(record) > self.segment_bytes:
                self._rotate()
            seg = self._active
            offset = self._sizes[seg]
            try:
                self._write(self._active_fd, record)
                if self.fsync:
                    os.fsync(self._active_fd)
            except OSError as exc:
                self.write_errors_total += 1
                try:  # leave no partial record behind a failed write
                    os.ftruncate(self._active_fd, offset)
                except OSError:
                    pass
                reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
                raise SpoolWriteError(f"cannot write to spool {self.directory}: {reason}") from exc
            self._sizes[seg] = offset + len(record)
            return (seg, offset), (seg, offset + len(record))

    def _write(self, fd: int, data: bytes) -> None:
        """The file-write seam: every spool byte goes through here."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _rotate(self) -> None:
        os.close(self._active_fd)
        self._active += 1
        self._active_fd = self._open_segment(self._active)
        self._sizes[self._active] = 0

    # --- reading and committing (the writer thread) --------------------------------

    def read(self, start: Position) -> SpanBatch:
        seg, offset = start
        fd = self._read_fds.get(seg)
        if fd is None:
            for old in [s for s in self._read_fds if s < seg]:
                os.close(self._read_fds.pop(old))
            fd = self._read_fds[seg] = os.open(self._segment_path(seg), os.O_RDONLY)
        header = os.pread(fd, HEADER.size, offset)
        magic, length, rows, crc = HEADER.unpack(header)
        payload = os.pread(fd, length, offset + HEADER.size)
        if magic != MAGIC or zlib.crc32(payload, zlib.crc32(struct.pack(">I", rows))) != crc:
            raise SpoolError(f"spool record {seg}:{offset} changed on disk since it was written")
        return decode(payload, rows)

    def begin(self, end: Position, token: str) -> None:
        """Record that an insert of everything up to `end` is starting, with this deduplication token."""
        if not token.isascii() or len(token) > 32:
            raise ValueError(f"deduplication token must be at most 32 ASCII characters, got {token!r}")
        with self._lock:
            if not self._closed:
                self._cursor.store(self._cursor.committed, Intent(end, token))

    def commit(self, end: Position) -> None:
        """Everything before `end` is in the store: move the cursor, drop consumed segments."""
        with self._lock:
            if self._closed:
                return
            self._cursor.store(end, None)
            if end == (self._active, self._sizes[self._active]) and end[1]:
                self._rotate()  # all written: start a new segment so the full one can go
            consumed = [s for s in self._sizes if s != self._active and (s < end[0] or end == (s, self._sizes[s]))]
            for seg in consumed:
                del self._sizes[seg]
                fd = self._read_fds.pop(seg, None)
                if fd is not None:
                    os.close(fd)
                try:
                    self._segment_path(seg).unlink()
                except OSError as exc:
                    log.warning("cannot remove written spool segment %s: %s", seg, exc.strerror)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._active_fd)
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
            self._cursor.close()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def counters(self) -> dict[str, int]:
        return {
            "spool_bytes": self.bytes_used,
            "spool_records_quarantined_total": self.records_quarantined_total,
            "spool_bytes_quarantined_total": self.bytes_quarantined_total,
            "spool_write_errors_total": self.write_errors_total,
        }
