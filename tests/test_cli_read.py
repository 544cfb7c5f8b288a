"""The read commands (`spanhouse query`, `usage`, `traces`, `trace`) and `spanhouse demo` as a user runs them:
a real collector in a child process on a non-default query port, real `spanhouse` processes, the embedded store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from access_harness import Key, auth_overrides, export, span_request
from collector_harness import free_port, start_collector
from collector_process import CollectorProcess, clean_env
from test_cli import http_post

READ_COMMANDS = [
    ["query", "SELECT count() FROM spans"],
    ["usage"],
    ["traces"],
    ["sessions"],
    ["trace", "0" * 32],
]


def spanhouse(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`spanhouse ARGS` run from `cwd`, with no SPANHOUSE_* settings but `env`."""
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=clean_env(**(env or {})), timeout=120)


def make_store(path: Path) -> str:
    """An empty migrated embedded store at `path`, made in a process of its own; its URL."""
    url = f"chdb://{path}"
    code = ("import sys; from spanhouse.collector.store import Store; s = Store.open(sys.argv[1]); s.migrate(); "
            "s.close()")
    subprocess.run([sys.executable, "-c", code, url], check=True, timeout=120, env=clean_env())
    return url


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector owning an embedded store with 5 spans, its query endpoint on a free (non-default) port."""
    process = CollectorProcess(tmp_path_factory.mktemp("owned") / "store", "127.0.0.1:0")
    try:
        response = export(process.grpc_endpoint, span_request("owned", 5))
        assert not response.HasField("partial_success")
        http_post(process.query_endpoint, "/flush", b"")
        assert process.query_endpoint != "127.0.0.1:4319"
        yield process
    finally:
        process.stop()


def test_query_endpoint_flag_reaches_a_collector_on_another_port(collector: CollectorProcess,
                                                                 tmp_path: Path) -> None:
    result = spanhouse("query", "--query-endpoint", collector.query_endpoint, "--format", "csv",
                       "SELECT ServiceName, count() FROM spans GROUP BY ServiceName", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '"ServiceName","count()"\n"owned",5\n'
    assert result.stderr == (f"spanhouse: answered by the collector at {collector.query_endpoint} "
                             f"(store {collector.store_url})\n")
    assert not (tmp_path / "spanhouse-data").exists()

    quiet = spanhouse("query", "--query-endpoint", collector.query_endpoint, "--quiet", "SELECT 1", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_query_endpoint_off_this_machine_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    result = spanhouse("query", "--query-endpoint", "192.0.2.1:4319", "SELECT 1", cwd=tmp_path,
                       env={"SPANHOUSE_API_KEY": "shk_secret"})
    assert result.returncode == 1
    assert result.stderr == ("spanhouse query: query endpoint 192.0.2.1:4319 is not a loopback address: the "
                             "read commands reach a collector on this machine only, at 127.0.0.1, ::1 or "
                             "localhost (--query-endpoint, query.endpoint); from elsewhere, use a ClickHouse "
                             "client over TLS (docs/queries.md)\n")


def test_a_named_store_is_not_answered_by_a_collector_serving_another(collector: CollectorProcess,
                                                                     tmp_path: Path) -> None:
    other = make_store(tmp_path / "other")
    result = spanhouse("query", "--store", other, "--query-endpoint", collector.query_endpoint, "--format", "csv",
                       "SELECT count() FROM spans", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '"count()"\n0\n'  # the named store's rows, not the collector's 5
    assert result.stderr == f"spanhouse: answered by the embedded store {tmp_path / 'other'}\n"


def test_a_relative_store_in_a_config_file_takes_the_collectors_answer(collector: CollectorProcess,
                                                                        tmp_path: Path) -> None:
    # The collector ran from its own directory: "./data" there is not "./data" here.
    config = tmp_path / "spanhouse.yaml"
    config.write_text(f"store:\n  url: chdb://./data\nquery:\n  endpoint: {collector.query_endpoint}\n")
    result = spanhouse("query", "--config", str(config), "--format", "csv", "SELECT count() FROM spans", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, '"count()"\n5\n'), result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=[c[0] for c in READ_COMMANDS])
def test_every_read_command_honours_the_collectors_config_file(collector: CollectorProcess, tmp_path: Path,
                                                               argv: list[str]) -> None:
    config = tmp_path / "spanhouse.yaml"
    config.write_text(f"store:\n  url: {collector.store_url}\nquery:\n  endpoint: {collector.query_endpoint}\n")
    result = spanhouse(*argv, "--config", str(config), cwd=tmp_path)
    assert result.stderr.splitlines()[0] == (f"spanhouse: answered by the collector at {collector.query_endpoint} "
                                             f"(store {collector.store_url})")
    if argv[0] == "trace":
        assert result.returncode == 1 and result.stdout.endswith("no spans found\n")
    else:
        assert result.returncode == 0, result.stderr
    if argv[0] == "query":
        assert result.stdout.splitlines()[2].strip() == "5"


def test_write_is_refused_while_a_collector_runs(collector: CollectorProcess, tmp_path: Path) -> None:
    result = spanhouse("query", "--store", collector.store_url, "--query-endpoint", collector.query_endpoint,
                       "--write", "DROP TABLE spans", cwd=tmp_path)
    assert result.returncode == 1
    assert f"a collector is running (its query endpoint at {collector.query_endpoint} answered)" in result.stderr
    assert "Stop the collector, then run `spanhouse query --write` again" in result.stderr
    assert http_post(collector.query_endpoint, "/query?format=CSVWithNames",
                     b"SELECT count() FROM spans") == b'"count()"\n5\n'


def test_engine_errors_are_one_clean_line_through_the_collector(collector: CollectorProcess,
                                                                tmp_path: Path) -> None:
    result = spanhouse("query", "--query-endpoint", collector.query_endpoint, "SELECT * FROM spanz", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"spanhouse: answered by the collector at {collector.query_endpoint} (store {collector.store_url})"
    assert len(lines) == 2, result.stderr
    assert lines[1].startswith("spanhouse query: the query failed: Unknown table expression identifier 'spanz'")
    assert "spans" in lines[1]  # the engine's did-you-mean stays
    for noise in ("DB::Exception", "Code: 60", "Stack trace", "Traceback"):
        assert noise not in result.stderr


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=[c[0] for c in READ_COMMANDS])
def test_no_store_is_an_error_naming_the_path_and_nothing_is_created(tmp_path: Path, argv: list[str]) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # no collector answers there
    default = spanhouse(*argv, "--query-endpoint", nobody, cwd=tmp_path)
    typo = tmp_path / "typo"
    explicit = spanhouse(*argv, "--store", f"chdb://{typo}", "--query-endpoint", nobody, cwd=tmp_path)
    for result, path in ((default, tmp_path / "spanhouse-data"), (explicit, typo)):
        assert result.returncode == 1
        assert result.stdout == ""
        assert f"no store at {path} (the directory does not exist)" in result.stderr
        assert "--store" in result.stderr and "--config" in result.stderr and "spanhouse collector" in result.stderr
        assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_writes_need_write_and_go_to_the_store_directly(tmp_path: Path) -> None:
    url = make_store(tmp_path / "store")
    no_collector = f"127.0.0.1:{free_port()}"
    args = ["--store", url, "--query-endpoint", no_collector]

    refused = spanhouse("query", *args, "DROP TABLE spans", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == f"spanhouse: answered by the embedded store {tmp_path / 'store'}"
    assert "only read-only statements" in refused.stderr and "this statement is DropQuery" in refused.stderr
    assert "spanhouse query --write" in refused.stderr
    exists = spanhouse("query", *args, "--format", "csv", "--quiet", "EXISTS TABLE spans", cwd=tmp_path)
    assert exists.stdout.splitlines()[1] == "1"

    clean = spanhouse("query", *args, "SELECT * FROM spanz", cwd=tmp_path)
    assert clean.returncode == 1
    assert clean.stderr.splitlines()[1].startswith("spanhouse query: the query failed: Unknown table expression")
    assert "DB::Exception" not in clean.stderr and len(clean.stderr.splitlines()) == 2

    dropped = spanhouse("query", *args, "--write", "DROP TABLE spans", cwd=tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stderr.splitlines()[-1] == "spanhouse: the statement ran"
    exists = spanhouse("query", *args, "--format", "csv", "--quiet", "EXISTS TABLE spans", cwd=tmp_path)
    assert exists.stdout.splitlines()[1] == "0"

    # --write is not a way around the host-access guard, and still one statement at a time.
    host = spanhouse("query", *args, "--write", "SELECT * FROM file('/etc/hostname', 'LineAsString')", cwd=tmp_path)
    assert host.returncode == 1 and "table function file() is not available" in host.stderr
    two = spanhouse("query", *args, "--write", "DROP TABLE genai_calls; SELECT 1", cwd=tmp_path)
    assert two.returncode == 1 and "send one SQL statement at a time" in two.stderr


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    result = spanhouse("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"spanhouse {version('spanhouse')}\n")


def test_demo_reports_refused_spans_and_its_summary_is_the_usage_table(tmp_path: Path) -> None:
    admin = Key.new("ops", admin=True)
    running = start_collector(tmp_path / "store", **auth_overrides(admin))
    try:
        refused = spanhouse("demo", "--endpoint", running.grpc_endpoint, "--query-endpoint", running.query_endpoint,
                            "--traces", "6", cwd=tmp_path)
        assert refused.returncode == 1
        assert "sent" not in refused.stdout
        assert "spans did not get into the collector" in refused.stderr
        assert "no span got through" in refused.stderr
        assert "OTEL_EXPORTER_OTLP_HEADERS" in refused.stderr
        assert "UNAUTHENTICATED" in refused.stderr and "missing API key" in refused.stderr  # the collector's reason
        assert len(refused.stderr.splitlines()) == 2, refused.stderr  # said once, not per failed export
        assert running.query("SELECT count() FROM spans") == [(0,)]

        # A model without a price: its cost must show empty in both tables, never 0.
        unpriced = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "in-house",
                    "gen_ai.request.model": "house-llm-1", "gen_ai.usage.input_tokens": "100",
                    "gen_ai.usage.output_tokens": "10"}
        export(running.grpc_endpoint, span_request("house-app", 2, unpriced), metadata=admin.metadata)
        env = {"SPANHOUSE_API_KEY": admin.key}  # the demo sends the read commands' key too
        sent = spanhouse("demo", "--endpoint", running.grpc_endpoint, "--query-endpoint", running.query_endpoint,
                         "--traces", "20", cwd=tmp_path, env=env)
        assert sent.returncode == 0, sent.stderr
        demo_spans = running.query("SELECT count() FROM spans WHERE ServiceName != 'house-app'")[0][0]
        assert sent.stdout.splitlines()[0] == f"sent {demo_spans} spans to {running.grpc_endpoint}"
        summary = sent.stdout.splitlines()[2:]

        usage = spanhouse("usage", "--query-endpoint", running.query_endpoint, "--quiet", cwd=tmp_path, env=env)
        assert usage.returncode == 0, usage.stderr
        assert summary == usage.stdout.splitlines()
        house = next(line for line in summary if line.startswith("house-llm-1"))
        as_json = spanhouse("usage", "--query-endpoint", running.query_endpoint, "--quiet", "--format", "json",
                            cwd=tmp_path, env=env)
        row = next(r for r in json.loads(as_json.stdout) if r["model"] == "house-llm-1")
        as_jsonl = spanhouse("usage", "--query-endpoint", running.query_endpoint, "--quiet", "--format", "jsonl",
                             cwd=tmp_path, env=env)
        assert [json.loads(line) for line in as_jsonl.stdout.splitlines()] == json.loads(as_json.stdout)
        assert len(as_jsonl.stdout.splitlines()) == len(summary) - 3  # header, dashes, "(N rows)"
        assert row["cost_usd"] is None and row["unpriced"] == 2
        columns = [m.span() for m in re.finditer(r"-+", summary[1])]  # the dashes under each column name
        cost = columns[summary[0].split().index("cost_usd")]
        assert house[cost[0]:cost[1]].strip() == ""
        # Every model with a priced call shows its cost (a model whose calls all failed has none to price).
        priced = [r["model"] for r in json.loads(as_json.stdout) if r["calls"] > r["unpriced"]]
        assert priced and all(line[cost[0]:cost[1]].strip() for line in summary[2:-1]
                              if line.split()[0] in priced)
    finally:
        running.collector.stop()


@pytest.mark.parametrize("value, shown", [
    (0.031979999999999995, "0.03198"),
    (2.1e-05, "0.000021"),
    (-2.1e-05, "-0.000021"),
    (734.215, "734.2"),
    (123456.7, "123457"),  # whole digits are never cut
    (1.0, "1"),
    (0.0, "0"),
    (0.99996, "1"),
    (1e-12, "1e-12"),  # all zeros as a decimal: keeps its exponent
    (2.5e20, "2.5e+20"),
    (float("nan"), "nan"),
])
def test_table_cells_round_floats_for_reading(value: float, shown: str) -> None:
    from spanhouse.collector.query.render import format_table

    table = format_table(["x"], [[value]]).splitlines()
    assert table[2].strip() == shown


@pytest.mark.parametrize("raw, shown", [
    ("Code: 60. DB::Exception: Unknown table expression identifier 'spanz'. Maybe you meant default.spans? "
     "(UNKNOWN_TABLE) (version 25.8.1.1)",
     "Unknown table expression identifier 'spanz'. Maybe you meant default.spans? (UNKNOWN_TABLE)"),
    # a server's driver: its preamble, then the engine's message, then a stack trace
    ("HTTPDriver for http://db:8123 received ClickHouse error code 60\n Code: 60. DB::Exception: Unknown table "
     "default.spanz. (UNKNOWN_TABLE) (version 24.8.1.1)\nStack trace:\n0. 0x000000000d2a3b1c DB::Exception\n",
     "Unknown table default.spanz. (UNKNOWN_TABLE)"),
    # the engine quotes the statement over several lines
    ("Code: 62. DB::Exception: Syntax error: failed at position 8:\nSELECT 1\n FROM. (SYNTAX_ERROR)",
     "Syntax error: failed at position 8: SELECT 1 FROM. (SYNTAX_ERROR)"),
    # spanhouse's own explanation keeps its words; only the engine part inside is cleaned
    ("the query ran longer than query.max_execution_s = 30 s (engine: Code: 159. DB::Exception: Timeout "
     "exceeded: elapsed 30 seconds. (TIMEOUT_EXCEEDED))",
     "the query ran longer than query.max_execution_s = 30 s (engine: Timeout exceeded: elapsed 30 seconds. "
     "(TIMEOUT_EXCEEDED))"),
])
def test_engine_errors_become_one_line_of_the_engines_words(raw: str, shown: str) -> None:
    from spanhouse.collector.query.engine_errors import engine_message

    assert engine_message(raw) == shown
