"""The `spanhouse` command as a user runs it: real processes, real signals, the real OTel SDK."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from spanhouse.collector import cli
from spanhouse.collector.store import Store

from collector_harness import free_port

READY = re.compile(r"^spanhouse collector: OTLP/gRPC on (\S+):(\d+), store ")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without SPANHOUSE_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANHOUSE_")}
    env.update(extra)
    return env


class CollectorProcess:
    """`spanhouse collector` in a child process; ready once it printed its listen line."""

    def __init__(self, store_dir: Path, query_endpoint: str = "", env: dict[str, str] | None = None,
                 ready_timeout_s: float = 60.0) -> None:
        self.store_url = f"chdb://{store_dir}"
        self.query_endpoint = query_endpoint
        self.stderr_path = store_dir.parent / f"collector-{id(self)}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # a file: a full pipe would block the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spanhouse.collector.cli", "collector", "--store", self.store_url,
             "--grpc", "127.0.0.1:0", "--query-endpoint", query_endpoint],
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


def run_cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], capture_output=True, text=True,
                          env=clean_env(**(env or {})), timeout=timeout_s)


def http_post(endpoint: str, path: str, body: bytes) -> bytes:
    request = urllib.request.Request(f"http://{endpoint}{path}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def test_sigterm_writes_every_acknowledged_span_before_exit(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    query_endpoint = f"127.0.0.1:{free_port()}"
    # An hour-long age flush: only shutdown can write these spans.
    collector = CollectorProcess(tmp_path / "store", query_endpoint,
                                 env={"SPANHOUSE_WRITER__MAX_WAIT_S": "60"})
    provider = TracerProvider(resource=Resource.create({"service.name": "sigterm-check"}))
    try:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint,
                                                                        insecure=True)))
        tracer = provider.get_tracer("tests.sigterm")
        span_ids = set()
        for i in range(120):
            with tracer.start_as_current_span(f"op-{i % 3}") as span:
                span.set_attribute("i", i)
                span_ids.add(f"{span.get_span_context().span_id:016x}")
        assert provider.force_flush(30_000), "the collector did not acknowledge the spans"
        # acknowledged but not written yet: the writer holds them for up to 60 s
        assert http_post(query_endpoint, "/query?format=CSVWithNames", b"SELECT count() FROM spans") == \
            b'"count()"\n0\n'

        assert collector.terminate() == 0, collector.stderr()
    finally:
        provider.shutdown()
        collector.stop()
    assert "(0 spans lost)" in collector.stderr()

    store = Store.open(collector.store_url)
    try:
        rows = store.query_rows("SELECT SpanId FROM spans WHERE ServiceName = 'sigterm-check'")
        genai = store.query_rows("SELECT count() FROM genai_calls")
    finally:
        store.close()
    assert sorted(r[0] for r in rows) == sorted(span_ids)
    assert genai == [(0,)]  # no GenAI attributes: nothing in the calls table


def test_second_collector_on_a_held_store_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    first = CollectorProcess(tmp_path / "store")
    try:
        second = run_cli("collector", "--store", first.store_url, "--grpc", "127.0.0.1:0", "--query-endpoint", "")
        assert second.returncode == 1
        assert "cannot start the collector" in second.stderr
        assert "is in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.proc.poll() is None  # the owner is unharmed
        assert first.terminate() == 0
    finally:
        first.stop()


def test_collector_on_a_busy_port_exits_1_naming_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("collector", "--store", f"chdb://{tmp_path / 'store'}", "--grpc", f"127.0.0.1:{port}",
                         "--query-endpoint", "")
    assert result.returncode == 1
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("fmt, expected", [
    ("csv", '"n","s"\n1,"a"\n2,"b"\n'),
    ("json", '{"n":1,"s":"a"}\n{"n":2,"s":"b"}\n'),
    ("table", "n  s\n-  -\n1  a\n2  b\n(2 rows)\n"),
])
def test_query_output_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                              fmt: str, expected: str) -> None:
    monkeypatch.setenv("SPANHOUSE_QUERY__ENDPOINT", "")
    sql = "SELECT number + 1 AS n, ['a', 'b'][number + 1] AS s FROM numbers(2) ORDER BY n"
    assert cli.main(["query", "--store", f"chdb://{tmp_path / 'store'}", "--format", fmt, sql]) == 0
    assert capsys.readouterr().out == expected
