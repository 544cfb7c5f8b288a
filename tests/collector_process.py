"""`spanhouse collector` in a real child process, for tests in any folder."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

READY = re.compile(r"^spanhouse collector: OTLP/gRPC on (\S+):(\d+), store ")
QUERIES = re.compile(r", queries on http://(\S+:\d+)")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without SPANHOUSE_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANHOUSE_")}
    env.update(extra)
    return env


class CollectorProcess:
    """`spanhouse collector` in a child process; ready once it printed its listen line.

    The gRPC and HTTP ports are bound by the child itself (port 0) and read back from that line, so no
    other process can take one between choosing and binding; so is the query endpoint's when
    `query_endpoint` has port 0 ("": no query endpoint).
    """

    def __init__(self, store_dir: Path, query_endpoint: str = "", env: dict[str, str] | None = None,
                 ready_timeout_s: float = 60.0, extra_args: tuple[str, ...] = ()) -> None:
        self.store_url = f"chdb://{store_dir}"
        self.query_endpoint = query_endpoint
        self.stderr_path = store_dir.parent / f"collector-{id(self)}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # a file: a full pipe would block the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spanhouse.collector.cli", "collector", "--store", self.store_url,
             "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--query-endpoint", query_endpoint, *extra_args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=clean_env(**(env or {})),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.grpc_endpoint = self._wait_ready(ready_timeout_s)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_ready(self, timeout_s: float) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout_s)
            except queue.Empty:
                self.stop()
                raise AssertionError(f"collector not ready within {timeout_s}s: {self.stderr()}") from None
            if line is None:
                self.proc.wait(10)
                raise AssertionError(f"collector exited with {self.proc.returncode}: {self.stderr()}")
            match = READY.match(line)
            if match:
                queries = QUERIES.search(line)
                if queries:
                    self.query_endpoint = queries.group(1)
                return f"{match.group(1)}:{match.group(2)}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout_s: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._stderr.close()
