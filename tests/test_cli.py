"""The `spanhouse` command as a user runs it: real processes, real signals, the real OTel SDK."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from spanhouse.collector import cli
from spanhouse.collector.store import Store

from collector_process import CollectorProcess, clean_env

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

    # An hour-long age flush: only shutdown can write these spans.
    collector = CollectorProcess(tmp_path / "store", "127.0.0.1:0",
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
        assert http_post(collector.query_endpoint, "/query?format=CSVWithNames", b"SELECT count() FROM spans") == \
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
        second = run_cli("collector", "--store", first.store_url, "--grpc", "127.0.0.1:0", "--http", "", "--query-endpoint", "")
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
                         "--http", "", "--query-endpoint", "")
    assert result.returncode == 1
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in result.stderr
    assert "--grpc HOST:PORT" in result.stderr  # how to choose another
    assert not (tmp_path / "store").exists()  # nothing created before the ports were checked


@pytest.mark.parametrize(("flag", "what"), [("--http", "OTLP/HTTP"), ("--query-endpoint", "queries")])
def test_every_busy_port_is_named_with_the_flag_that_moves_it(tmp_path: Path, flag: str, what: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = {"--grpc": "127.0.0.1:0", "--http": "", "--query-endpoint": "", flag: f"127.0.0.1:{port}"}
        result = run_cli("collector", "--store", f"chdb://{tmp_path / 'store'}",
                         *[item for pair in args.items() for item in pair])
    assert result.returncode == 1
    assert f"cannot listen for {what} on 127.0.0.1:{port}: address in use" in result.stderr
    assert f"{flag} HOST:PORT" in result.stderr


@pytest.mark.parametrize("fmt, expected", [
    ("csv", '"n","s","x"\n1,"a",0.031979999999999995\n2,"b",0.000021\n'),
    ("json", '[\n{"n":1,"s":"a","x":0.031979999999999995},\n{"n":2,"s":"b","x":0.000021}\n]\n'),
    ("jsonl", '{"n":1,"s":"a","x":0.031979999999999995}\n{"n":2,"s":"b","x":0.000021}\n'),
    ("table", "n  s         x\n-  -  --------\n1  a   0.03198\n2  b  0.000021\n(2 rows)\n"),
])
def test_query_output_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                              fmt: str, expected: str) -> None:
    monkeypatch.setenv("SPANHOUSE_QUERY__ENDPOINT", "")
    made = Store.open(f"chdb://{tmp_path / 'store'}")
    made.migrate()
    made.close()
    sql = ("SELECT number + 1 AS n, ['a', 'b'][number + 1] AS s, [0.031979999999999995, 2.1e-05][number + 1] AS x "
           "FROM numbers(2) ORDER BY n")
    assert cli.main(["query", "--store", f"chdb://{tmp_path / 'store'}", "--format", fmt, sql]) == 0
    out, err = capsys.readouterr()
    assert out == expected  # table cells rounded for reading; csv and JSON keep every digit
    assert err == f"spanhouse: answered by the embedded store {tmp_path / 'store'}\n"
