"""The local socket between worker processes and the process that owns the store.

Messages are `multiprocessing.connection` frames on a Unix socket in a private
directory, with the connection's HMAC handshake (a random key known only to
the collector and its workers):

    worker -> owner   b"B" + rows (u32) + payload   a processed batch, payload as the spool stores it
                      b"R" + JSON                    ready: the worker listens on the gRPC port
                      b"S" + JSON                    the worker's counters (no answer); its GenAI metric
                                                     series under "genai_series" when they changed
                      b"A" + JSON                    secret hits for the alert engine (no answer)
    owner -> worker   b"K"                           in the spool: answer OK to the client
                      b"F" + delay (f64) + text      writer or spool full: retry after `delay`
                      b"E" + text                    the owner could not take it
"""

from __future__ import annotations

import json
import logging
import struct
import threading
from multiprocessing.connection import Client, Connection
from typing import Any

from spanhouse.collector.batch import SpanBatch
from spanhouse.collector.writer import WriterFull
from spanhouse.collector.writer.spool import encode

log = logging.getLogger("spanhouse.workers")

BATCH, READY, STATS, SECRETS = b"B", b"R", b"S", b"A"
GENAI_SERIES = "genai_series"  # the STATS key of a worker's GenAI metric series (processors/genai_metrics.py)
OK, FULL, ERROR = b"K", b"F", b"E"
ROWS = struct.Struct(">I")
DELAY = struct.Struct(">d")


def batch_message(payload: bytes, rows: int) -> bytes:
    return BATCH + ROWS.pack(rows) + payload


def json_message(kind: bytes, doc: dict[str, Any]) -> bytes:
    return kind + json.dumps(doc).encode()


def full_answer(exc: WriterFull) -> bytes:
    return FULL + DELAY.pack(exc.retry_after_s) + str(exc).encode()


class OwnerUnreachable(WriterFull):
    """The owner process does not answer (restarting or stopping): the client retries later."""


class HandoffWriter:
    """The worker side: stands where a pipeline's BatchingWriter stands, and hands batches to the owner.

    Each receiver thread keeps its own connection, so calls run side by side.
    """

    max_batch_rows = 0  # no held spans in a worker: the sampler runs in the owner

    def __init__(self, address: str, authkey: bytes) -> None:
        self.address = address
        self.authkey = authkey
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []

    def connect(self) -> Connection:
        conn = Client(self.address, "AF_UNIX", authkey=self.authkey)
        with self._lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    def submit(self, batch: SpanBatch) -> None:
        """Return once the owner has `batch` in its spool; raise WriterFull when it cannot take it."""
        if not batch.size:
            return
        message = batch_message(encode(batch), batch.size)
        try:
            conn = self._connection()
            conn.send_bytes(message)
            answer = conn.recv_bytes()
        except (OSError, EOFError) as exc:
            self._drop()
            raise OwnerUnreachable(f"the collector's writer process is not reachable ({exc})") from None
        kind = answer[:1]
        if kind == OK:
            return
        if kind == FULL:
            (delay,) = DELAY.unpack_from(answer, 1)
            raise WriterFull(answer[1 + DELAY.size:].decode(), delay)
        raise RuntimeError(f"the collector's writer process refused the batch: {answer[1:].decode()}")

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()

    def counters(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
