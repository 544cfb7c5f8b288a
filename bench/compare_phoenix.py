"""Side by side: the ingest workload into spanhouse and into Arize Phoenix, both rates and their ratio.

    python bench/compare_phoenix.py                   # spanhouse 153,600 spans, Phoenix 6,144; ~2 minutes
    python bench/compare_phoenix.py --spans 51200 --phoenix-spans 2048
    python bench/compare_phoenix.py --phoenix-python /path/to/venv/bin/python

The payloads are bench/ingest.py's: serialized ExportTraceServiceRequests of 512
GenAI spans (~1.2 KB each, message content included), sent as raw unary
TraceService/Export calls from a few concurrent gRPC streams.

- spanhouse: ingest.py's end-to-end run: a `spanhouse collector` process on a
  fresh embedded store with every processor on (normalize, redact, price, and the
  tail sampler holding every trace until its root arrives) and the disk spool;
  send, POST /flush, count through /query.
- Phoenix: `arize-phoenix` from its own virtualenv (created on first use under
  ~/.cache/spanhouse/bench-phoenix, or --phoenix-python) with its SQLite store in a
  temporary PHOENIX_WORKING_DIR. Its gRPC server binds every interface, so Phoenix
  and the load sent to it run in a loopback-only network namespace: this script
  re-runs itself there (`unshare -rn`, `ip link set lo up`, --phoenix-side), and
  that side counts the rows of Phoenix's `spans` table until they match or a
  deadline passes.

Each rate is spans sent / (first send -> every span queryable in that store).
Phoenix gets a smaller share of the payloads (it ingests far more slowly), so
compare the rates, not the totals. Exits 1 if either store
ends with fewer spans than were sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import (
    SAMPLING,
    SPANS_PER_REQUEST,
    build_payloads,
    end_to_end,
    free_port,
    sampling_env,
    send_all,
    stop_process,
)

RESULT_PREFIX = "PHOENIX_RESULT "
PHOENIX_REQUIREMENT = "arize-phoenix"
_FRAME_HEADER = struct.Struct(">I")


# --- pure helpers -----------------------------------------------------------------


def write_frames(path: Path, payloads: Iterable[bytes]) -> None:
    """Payloads to a file, each prefixed with its length (4 bytes, big-endian)."""
    with open(path, "wb") as f:
        for p in payloads:
            f.write(_FRAME_HEADER.pack(len(p)))
            f.write(p)


def read_frames(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + _FRAME_HEADER.size > len(data):
            raise ValueError(f"{path}: truncated frame header at byte {pos}")
        (size,) = _FRAME_HEADER.unpack_from(data, pos)
        pos += _FRAME_HEADER.size
        if pos + size > len(data):
            raise ValueError(f"{path}: frame at byte {pos - _FRAME_HEADER.size} wants {size} bytes, "
                             f"{len(data) - pos} left")
        out.append(data[pos:pos + size])
        pos += size
    return out


def parse_result(stdout: str) -> dict[str, Any]:
    """The JSON result the Phoenix side printed last on its stdout."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise ValueError(f"no {RESULT_PREFIX.strip()} line in the Phoenix side's output:\n{stdout}")


def default_phoenix_venv(env: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "spanhouse" / "bench-phoenix"


def sqlite_span_count(db: Path) -> int:
    """Rows in Phoenix's `spans` table; 0 while the database or the table does not exist yet."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    finally:
        conn.close()


def wait_for_count(count: Callable[[], int], expected: int, deadline: float, poll_s: float = 0.25,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[int, float]:
    """Poll `count()` until it reaches `expected` or `clock()` passes `deadline`: (last count, clock then)."""
    while True:
        n = count()
        now = clock()
        if n >= expected or now >= deadline:
            return n, now
        sleep(min(poll_s, max(0.0, deadline - now)))


# --- Phoenix's virtualenv -----------------------------------------------------------


def phoenix_version(python: str) -> str | None:
    """arize-phoenix's version as `python` sees it, None if that interpreter cannot import its server."""
    probe = ("import importlib.metadata as m, phoenix.server.main; "
             "print(m.version('arize-phoenix'))")
    try:
        out = subprocess.run([python, "-c", probe], check=False, capture_output=True, text=True, timeout=300)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_phoenix_python(given: str | None) -> tuple[str, str]:
    """(python, Phoenix version): the interpreter given, or the cached venv, created on first use."""
    if given:
        version = phoenix_version(given)
        if version is None:
            raise SystemExit(f"--phoenix-python {given}: cannot import phoenix.server.main with it; "
                             f"give the python of a virtualenv where `pip install {PHOENIX_REQUIREMENT}` ran")
        return given, version
    venv = default_phoenix_venv()
    python = str(venv / "bin" / "python")
    version = phoenix_version(python) if Path(python).exists() else None
    if version is not None:
        return python, version
    print(f"Phoenix's virtualenv: {venv} (its dependencies are kept apart from ours)", flush=True)
    if not Path(python).exists():
        print(f"  {sys.executable} -m venv {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"  {python} -m pip install -q {PHOENIX_REQUIREMENT}   (from the configured package index; "
          f"about a minute)", flush=True)
    subprocess.run([python, "-m", "pip", "install", "-q", PHOENIX_REQUIREMENT], check=True)
    version = phoenix_version(python)
    if version is None:
        raise SystemExit(f"{PHOENIX_REQUIREMENT} installed in {venv} but phoenix.server.main does not import; "
                         f"remove {venv} to start over, or pass --phoenix-python")
    return python, version


# --- the Phoenix side, inside a loopback-only network namespace -----------------------


def loopback_only() -> bool:
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


class PhoenixProcess:
    """`phoenix serve` on free ports, its SQLite store in `working_dir`."""

    def __init__(self, python: str, working_dir: Path) -> None:
        self.working_dir = working_dir
        self.http_port = free_port()
        self.grpc = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PHOENIX_", "OTEL_"))}  # nothing inherited may point it elsewhere
        env.update({
            "PHOENIX_WORKING_DIR": str(working_dir),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.http_port),
            "PHOENIX_GRPC_PORT": self.grpc.rsplit(":", 1)[1],
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        })
        self.log_path = working_dir.parent / "phoenix.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([python, "-m", "phoenix.server.main", "serve"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)

    @property
    def db(self) -> Path:
        return self.working_dir / "phoenix.db"

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until /healthz answers and the gRPC port accepts a channel."""
        import grpc

        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"Phoenix exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"Phoenix not ready after {timeout_s:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)
        with grpc.insecure_channel(self.grpc) as channel:
            grpc.channel_ready_future(channel).result(timeout=max(1.0, deadline - time.monotonic()))
        return time.monotonic() - t0

    def stop(self) -> None:
        stop_process(self.proc, 30)
        self.log.close()


def phoenix_side(args: argparse.Namespace) -> int:
    if not loopback_only():
        raise SystemExit("--phoenix-side runs only in a loopback-only network namespace "
                         "(Phoenix's gRPC server binds every interface); run the script without it")
    work = Path(args.work)
    payloads = read_frames(Path(args.payloads))
    spans = len(payloads) * SPANS_PER_REQUEST
    (work / "phoenix").mkdir()
    phoenix = PhoenixProcess(args.phoenix_python, work / "phoenix")
    try:
        ready_s = phoenix.wait_ready(args.phoenix_start_timeout)
        print(f"  Phoenix ready in {ready_s:.1f}s; sending {spans} spans", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        retries = send_all(phoenix.grpc, payloads, args.streams)
        t_sent = time.monotonic()
        print(f"  sent in {t_sent - t0:.1f}s; waiting for Phoenix's `spans` table to hold them "
              f"(at most {args.phoenix_deadline:.0f}s)", file=sys.stderr, flush=True)
        stored, t_done = wait_for_count(lambda: sqlite_span_count(phoenix.db), spans,
                                        t0 + args.phoenix_deadline)
        if phoenix.proc.poll() is not None:
            raise SystemExit(f"Phoenix exited with {phoenix.proc.returncode} during the run:\n{phoenix.log_tail()}")
    finally:
        phoenix.stop()
    print(RESULT_PREFIX + json.dumps({
        "spans": spans, "stored": stored, "total_s": t_done - t0, "send_s": t_sent - t0,
        "store_s": t_done - t_sent, "retries": retries, "spans_per_s": spans / (t_done - t0),
        "ready_s": ready_s}), flush=True)
    return 0


def run_phoenix_side(payloads: list[bytes], work: Path, python: str, args: argparse.Namespace) -> dict[str, Any]:
    """This script's --phoenix-side in a new loopback-only network namespace; its result."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"`{tool}` not found: Phoenix runs in a loopback-only network namespace "
                             f"(`unshare -rn`, `ip link set lo up`); install util-linux and iproute2")
    frames = work / "phoenix-payloads.bin"
    write_frames(frames, payloads)
    cmd = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, str(Path(__file__).resolve()), "--phoenix-side", "--payloads", str(frames),
           "--work", str(work), "--phoenix-python", python, "--streams", str(args.streams),
           "--phoenix-deadline", str(args.phoenix_deadline),
           "--phoenix-start-timeout", str(args.phoenix_start_timeout)]
    proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)  # stderr (progress, errors) passes through
    if proc.returncode != 0:
        raise SystemExit(f"FAILED: the Phoenix side exited with {proc.returncode} "
                         f"(Phoenix's log: {work}/phoenix.log; rerun with --keep to keep it)\n{proc.stdout}")
    return parse_result(proc.stdout)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=153_600,
                        help="spans sent to spanhouse (rounded down to 512 per request; default 153,600)")
    parser.add_argument("--phoenix-spans", type=int, default=6_144,
                        help="spans sent to Phoenix (default 6,144: about a minute at ~100 spans/s)")
    parser.add_argument("--streams", type=int, default=4, help="concurrent gRPC streams to each (default 4)")
    parser.add_argument("--phoenix-python", help="python of a virtualenv with arize-phoenix "
                        "(default: one created on first use under ~/.cache/spanhouse/bench-phoenix)")
    parser.add_argument("--phoenix-deadline", type=float, default=600.0,
                        help="seconds from Phoenix's first send until its spans must be stored (default 600)")
    parser.add_argument("--phoenix-start-timeout", type=float, default=180.0,
                        help="seconds Phoenix may take to start (default 180)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--phoenix-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("spans", "phoenix_spans"):
        if getattr(args, name) < SPANS_PER_REQUEST:
            parser.error(f"--{name.replace('_', '-')} must be at least {SPANS_PER_REQUEST} (one request)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phoenix_side:
        return phoenix_side(args)

    python, version = ensure_phoenix_python(args.phoenix_python)
    sh_requests = args.spans // SPANS_PER_REQUEST
    ph_requests = args.phoenix_spans // SPANS_PER_REQUEST
    sh_spans, ph_spans = sh_requests * SPANS_PER_REQUEST, ph_requests * SPANS_PER_REQUEST

    t0 = time.perf_counter()
    # One seed: Phoenix's share is the start of spanhouse's (but for the roots its last request keeps).
    sh_payloads = build_payloads(sh_spans, roots_late=True)
    ph_payloads = build_payloads(ph_spans, roots_late=True)
    mb = sum(map(len, sh_payloads)) / 1e6
    print(f"payloads: requests of {SPANS_PER_REQUEST} spans as ingest.py sends them (roots one request late), "
          f"{mb * 1e6 / sh_spans:.0f} B/span, built in {time.perf_counter() - t0:.1f}s; "
          f"{args.streams} streams; {os.cpu_count()} CPUs", flush=True)
    print(f"spanhouse gets {sh_spans:,} spans, Phoenix {ph_spans:,} (arize-phoenix {version}, {python})",
          flush=True)

    work = Path(tempfile.mkdtemp(prefix="spanhouse-vs-phoenix-"))
    try:
        print(f"spanhouse collector (fresh embedded store; normalize, redact, price, sample {SAMPLING}, "
              f"spool on) ...", flush=True)
        # exits if spans are missing
        sh = end_to_end(sh_payloads, sh_spans, args.streams, work, sampling_env())
        print(f"  {sh['spans_per_s']:,.0f} spans/s", flush=True)
        print("Phoenix (its SQLite store, in a loopback-only network namespace) ...", flush=True)
        ph = run_phoenix_side(ph_payloads, work, python, args)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'sent -> queryable':<22}{'spans':>10}{'seconds':>10}{'spans/s':>12}  detail")
    print(f"{'spanhouse':<22}{sh_spans:>10,}{sh['total_s']:>10.2f}{sh['spans_per_s']:>12,.0f}  "
          f"send {sh['send_s']:.2f}s, flush+count {sh['flush_s']:.2f}s, {sh['retries']} UNAVAILABLE retries")
    complete = ph["stored"] >= ph_spans
    print(f"{'Phoenix ' + version:<22}{ph_spans:>10,}{ph['total_s']:>10.2f}"
          f"{format(ph['spans_per_s'], ',.1f') if complete else 'incomplete':>12}  "
          f"send {ph['send_s']:.2f}s, until stored {ph['store_s']:.2f}s, {ph['retries']} UNAVAILABLE retries")
    if not complete:
        print(f"FAILED: sent {ph_spans} spans to Phoenix, {ph['stored']} were in its store after "
              f"{args.phoenix_deadline:.0f}s (raise --phoenix-deadline if it was still catching up)")
        return 1
    ratio = sh["spans_per_s"] / ph["spans_per_s"]
    print(f"\nspanhouse / Phoenix: {ratio:,.1f}x the spans per second "
          f"(rates compared; each store got its own share of the same payloads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
