"""WorkerPool: the owner's side. Starts the workers, takes their batches, restarts the ones that die.

It stands where the GrpcReceiver stands in a one-process collector (start,
stop, port, counters), so the Collector's lifecycle is the same: the pool
stops first (workers finish their calls in progress, whose batches still
reach the spool), then the writer drains.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, Listener
from typing import TYPE_CHECKING, Any

from spanhouse.collector.component import ListenError
from spanhouse.collector.workers import ports
from spanhouse.collector.processors.genai_metrics import Series, from_wire, merge_into
from spanhouse.collector.workers.handoff import (
    BATCH,
    ERROR,
    GENAI_SERIES,
    OK,
    READY,
    ROWS,
    SECRETS,
    STATS,
    full_answer,
)
from spanhouse.collector.workers.worker import WorkerArgs
from spanhouse.collector.writer import WriterFull

if TYPE_CHECKING:
    from spanhouse.collector.config import Config
    from spanhouse.collector.component import EncodedConsumer

log = logging.getLogger("spanhouse.workers")

READY_TIMEOUT_S = 60.0
# A worker that dies sooner than this after its start is restarted after a pause, not in a tight loop.
QUICK_DEATH_S = 5.0
RESTART_PAUSE_S = 1.0
# How often the port is checked for listeners that are not ours (another program binding it with SO_REUSEPORT).
PORT_CHECK_INTERVAL_S = 5.0


class _Worker:
    def __init__(self, index: int, proc: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.proc = proc
        self.started = time.monotonic()
        self.ready = threading.Event()


class WorkerPool:
    def __init__(self, pipeline: EncodedConsumer, config: Config) -> None:
        self.pipeline = pipeline
        self.config = config
        self.count = config.receiver.processes
        self.port: int | None = None
        self.restarts_total = 0
        self.handoff_errors_total = 0
        self.foreign_listeners = 0  # sockets on our port that are not our workers', at the last check
        self._workers: dict[int, _Worker] = {}
        self._counters: dict[int, dict[str, Any]] = {}  # latest report of each running worker
        self._retired: Counter[str] = Counter()  # what workers that exited had counted
        self._series: dict[int, Series] = {}  # latest GenAI metric series of each running worker
        self._retired_series: Series = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._authkey = secrets.token_bytes(32)
        self._dir = tempfile.mkdtemp(prefix="spanhouse-workers-")
        self._address = os.path.join(self._dir, "handoff.sock")
        self._listener = Listener(self._address, "AF_UNIX", authkey=self._authkey)
        self._threads: list[threading.Thread] = []
        # Where secret hits the workers find go (the alert engine); None: workers send none.
        self.on_secret_hits: Callable[[list[dict[str, Any]]], None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> int:
        host, _, port = self.config.receiver.grpc.endpoint.rpartition(":")
        try:
            self.port = ports.claim_port(host, int(port))
        except OSError as exc:
            self._close_listener()
            raise ListenError(f"cannot listen for OTLP/gRPC on {self.config.receiver.grpc.endpoint}: "
                              f"{exc.strerror}") from None
        self._worker_config = replace(self.config, receiver=replace(
            self.config.receiver, grpc=replace(self.config.receiver.grpc, endpoint=f"{host}:{self.port}")))
        self._spawn_thread(self._accept, "spanhouse-handoff-accept")
        try:
            for index in range(self.count):
                self._workers[index] = self._spawn(index)
            self._wait_ready()
            foreign = ports.foreign_listeners(self.port, [w.proc.pid for w in self._workers.values()])
            if foreign:
                raise ListenError(f"cannot listen for OTLP/gRPC on {host}:{self.port}: another process also "
                                  f"listens on this port with SO_REUSEPORT ({foreign} socket(s)) and would take "
                                  "part of its connections; stop it or choose another port")
        except Exception:
            self.stop(grace_s=0.0)
            raise
        for index in self._workers:
            self._spawn_thread(lambda i=index: self._watch(i), f"spanhouse-worker-watch-{index}")
        self._spawn_thread(self._check_port, "spanhouse-port-check")
        log.info("%d worker processes receive OTLP/gRPC on %s:%d", self.count, host, self.port)
        return self.port

    def _spawn(self, index: int) -> _Worker:
        args = WorkerArgs(self._worker_config, index, self._address, self._authkey, os.getpid())
        proc = subprocess.Popen([sys.executable, "-m", "spanhouse.collector.workers.worker"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(args))
        proc.stdin.close()
        return _Worker(index, proc)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for worker in self._workers.values():
            while not worker.ready.wait(0.05):
                code = worker.proc.poll()
                if code is not None:
                    raise ListenError(f"worker process {worker.index} exited with code {code} while starting "
                                      "(its error is logged above)")
                if time.monotonic() > deadline:
                    raise ListenError(f"worker process {worker.index} did not start within {READY_TIMEOUT_S:.0f}s")

    def _watch(self, index: int) -> None:
        """Wait for worker `index` to exit; unless the pool is stopping, report it and start a new one."""
        while True:
            worker = self._workers[index]
            code = worker.proc.wait()
            if self._stopping.is_set():
                return
            with self._lock:
                self._retired.update(self._counters.pop(index, {}))
                merge_into(self._retired_series, self._series.pop(index, {}))
                self.restarts_total += 1
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            log.error("worker process %d (pid %d) %s; starting a new one (%d restarts so far)",
                      index, worker.proc.pid, how, self.restarts_total)
            if time.monotonic() - worker.started < QUICK_DEATH_S and self._stopping.wait(RESTART_PAUSE_S):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._workers[index] = self._spawn(index)

    def _check_port(self) -> None:
        """Keep checking that only our workers listen on the port; say so loudly when another program joins."""
        assert self.port is not None
        while not self._stopping.wait(PORT_CHECK_INTERVAL_S):
            with self._lock:
                pids = [w.proc.pid for w in self._workers.values()]
            foreign = ports.foreign_listeners(self.port, pids)
            if foreign and not self.foreign_listeners:
                log.error("another process now also listens on the OTLP/gRPC port %d with SO_REUSEPORT (%d "
                          "socket(s)) and takes part of its connections: stop it, or move one of the two to "
                          "another port", self.port, foreign)
            self.foreign_listeners = foreign

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the workers (their calls in progress get `grace_s` to finish), then the hand-off socket."""
        with self._lock:
            self._stopping.set()
            workers = list(self._workers.values())
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.proc.wait(grace_s + 5.0)
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop within %.0fs; killing it", worker.index, grace_s + 5.0)
                worker.proc.kill()
                worker.proc.wait()
        self._close_listener()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(5.0)

    def _close_listener(self) -> None:
        # Closing a socket does not wake a thread blocked in accept(): a connection does.
        try:
            with socket.socket(socket.AF_UNIX) as wake:
                wake.connect(self._address)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        shutil.rmtree(self._dir, ignore_errors=True)

    def counters(self) -> dict[str, int]:
        """The workers' counters summed (pipeline's unprefixed, receiver's with `receiver_`), and the pool's own."""
        with self._lock:
            total: Counter[str] = Counter(self._retired)
            for counters in self._counters.values():
                total.update(counters)
            out = dict(total)
            out.update({"workers": self.count, "workers_running": sum(w.proc.poll() is None
                                                                       for w in self._workers.values()),
                        "workers_restarted_total": self.restarts_total,
                        "workers_handoff_errors_total": self.handoff_errors_total,
                        "workers_port_foreign_listeners": self.foreign_listeners})
        return out

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._workers.values() if w.proc.poll() is None]

    def genai_series(self) -> list[Series]:
        """Each worker's GenAI metric series (cumulative), and what exited workers had counted."""
        with self._lock:
            return [self._retired_series, *self._series.values()]

    # --- the hand-off socket ---------------------------------------------------------

    def _spawn_thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = self._listener.accept()
            except OSError:  # closed by stop()
                return
            except Exception as exc:  # a failed handshake: not one of our workers (or stop() waking us)
                if self._stopping.is_set():
                    return
                log.warning("refused a connection to the workers' hand-off socket: %s", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), name="spanhouse-handoff", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    message = conn.recv_bytes()
                except (OSError, EOFError):
                    return
                kind = message[:1]
                if kind == BATCH:
                    answer = self._take_batch(message)
                    try:
                        conn.send_bytes(answer)
                    except OSError:
                        return
                elif kind == STATS:
                    doc = json.loads(message[1:])
                    index = doc.pop("index", None)
                    series = doc.pop(GENAI_SERIES, None)
                    if index is not None:
                        with self._lock:
                            self._counters[index] = doc
                            if series is not None:
                                self._series[index] = from_wire(series)
                elif kind == SECRETS:
                    if self.on_secret_hits is not None:
                        try:
                            self.on_secret_hits(json.loads(message[1:])["hits"])
                        except Exception:  # a bad report must not end the worker's connection
                            log.exception("could not take secret hits from a worker")
                elif kind == READY:
                    doc = json.loads(message[1:])
                    worker = self._workers.get(doc["index"])
                    if worker is not None and worker.proc.pid == doc["pid"]:
                        worker.ready.set()

    def _take_batch(self, message: bytes) -> bytes:
        (rows,) = ROWS.unpack_from(message, 1)
        try:
            self.pipeline.submit_encoded(message[1 + ROWS.size:], rows)
        except WriterFull as exc:
            return full_answer(exc)
        except Exception as exc:  # a bug, not the client's fault: the worker answers an internal error
            with self._lock:
                self.handoff_errors_total += 1
            log.exception("could not take a batch of %d spans from a worker", rows)
            return ERROR + str(exc).encode()
        return OK
