"""A worker process: OTLP/gRPC on the shared port -> decode, normalize, redact, price -> the owner's spool.

Started by WorkerPool (owner.py) as `python -m spanhouse.collector.workers.worker`,
with its start-up arguments pickled on standard input. SIGTERM stops it
gracefully (calls in progress finish); SIGINT is left to the owner, which
stops the workers first on Ctrl-C. It exits by itself if the owner goes away.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from spanhouse.collector.config import Config

log = logging.getLogger("spanhouse.workers")

COUNTERS_INTERVAL_S = 1.0
EXIT_CANNOT_START = 3


@dataclass
class WorkerArgs:
    config: Config  # receiver.grpc.endpoint already names the port every worker shares
    index: int
    address: str  # the owner's hand-off socket
    authkey: bytes
    owner_pid: int


def run(args: WorkerArgs) -> int:
    from spanhouse.collector.pipeline import Pipeline, tune_gc
    from spanhouse.collector.processors import registry
    from spanhouse.collector.processors.genai_metrics import GenAIMetricsProcessor, to_wire
    from spanhouse.collector.receiver.grpc import GrpcReceiver
    from spanhouse.collector.workers.handoff import GENAI_SERIES, READY, SECRETS, STATS, HandoffWriter, json_message

    cfg = args.config
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    writer = HandoffWriter(args.address, args.authkey)
    processors = registry.build(cfg).in_worker
    pipeline = Pipeline(processors, writer)  # type: ignore[arg-type]
    receiver = GrpcReceiver.from_config(pipeline, cfg, reuse_port=True)
    tune_gc()
    try:
        control = writer.connect()
        receiver.start()
    except Exception as exc:
        log.error("worker %d cannot start: %s", args.index, exc)
        return EXIT_CANNOT_START

    meter = next((p for p in pipeline.processors if isinstance(p, GenAIMetricsProcessor)), None)
    reported = [-1]  # the meter's table version last sent

    def counters() -> dict[str, Any]:
        out: dict[str, Any] = {"index": args.index, **pipeline.counters()}
        out.update({f"receiver_{k}": v for k, v in receiver.counters().items()})
        if meter is not None and meter.table.version != reported[0]:  # up to max_series rows: only when changed
            reported[0] = meter.table.version
            out[GENAI_SERIES] = to_wire(meter.table.snapshot())
        return out

    send_lock = threading.Lock()  # receiving threads report secret hits on the control connection too

    def send(message: bytes) -> None:
        with send_lock:
            control.send_bytes(message)

    _watch_secrets(cfg, processors, pipeline, send, SECRETS)
    send(json_message(READY, {"index": args.index, "pid": os.getpid()}))
    try:
        while not stop.wait(COUNTERS_INTERVAL_S):
            if os.getppid() != args.owner_pid:
                log.error("worker %d: the collector process is gone; exiting", args.index)
                return 1
            send(json_message(STATS, counters()))
        receiver.stop(grace_s=5.0)
        send(json_message(STATS, counters()))
    except OSError as exc:  # the owner closed the socket: it is stopping or gone
        log.warning("worker %d: lost the collector process (%s); exiting", args.index, exc)
        receiver.stop(grace_s=1.0)
    finally:
        writer.close()
    return 0


def _watch_secrets(cfg: Config, processors: list[Any], pipeline: Any, send: Any, kind: bytes) -> None:
    """Secret hits of this worker's redact processor go to the collector's process at once (its alert engine)."""
    from spanhouse.collector.alerts.secrets import secret_watch
    from spanhouse.collector.processors.redact import RedactProcessor
    from spanhouse.collector.workers.handoff import json_message

    redact = next((p for p in processors if isinstance(p, RedactProcessor)), None)
    if redact is None or not (cfg.alerts.enabled and cfg.alerts.secret_detected.enabled):
        return

    def report(hits: list[Any]) -> None:
        try:
            send(json_message(kind, {"hits": [hit.to_json() for hit in hits]}))
        except OSError as exc:  # the owner is going away; the main loop notices and exits
            log.warning("could not send secret hits to the collector process: %s", exc)

    pipeline.watch_after(redact, secret_watch(redact.credential_rules, report, lambda: redact.credential_hits_total))


def main() -> int:
    args: WorkerArgs = pickle.load(sys.stdin.buffer)  # written by our own parent (owner.py), never by a user
    sys.stdin.close()
    logging.basicConfig(level=args.config.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s[worker {args.index}]: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
