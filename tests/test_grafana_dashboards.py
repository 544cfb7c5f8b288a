"""The Grafana dashboards in deploy/grafana/dashboards, and the data source plugin's own OpenTelemetry dashboards,
run without Grafana: every panel, variable and annotation query is expanded as Grafana and the ClickHouse data
source expand it (grafana_macros.py) and sent to a real collector's query endpoint with an admin key and with a
tenant key, over spans sent through the OTLP receiver. Each result must have the columns its panel reads, and the
cost, token and latency panels the numbers of the spans sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from access_harness import Key, auth_overrides, export
from clickhouse_http_helpers import call
from collector_harness import RunningCollector, start_collector
from grafana_macros import ALL, MacroError, TimeRange, Variable, expand_backend_macros, interpolate
from native_readers import CLICKHOUSE_GO_REVISION, read_at_revision
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector.query import queries

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PLUGIN_FIXTURE = Path(__file__).parent / "grafana" / "otel_plugin_dashboards.json"
PLUGIN_TYPE = "grafana-clickhouse-datasource"

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
MALLORY = Key.new("mallory")  # sends names made to break the quoting of dashboard variables
ADMIN = Key.new("ops", admin=True)

# Everything is sent at fixed offsets from BASE, the start of the hour two hours ago, so calls fall into known
# minutes and hours.
BASE_S = (int(time.time()) // 3600 - 2) * 3600
NS = 1_000_000_000
TRACE_A, TRACE_B, TRACE_C, TRACE_M = "a1" * 16, "b2" * 16, "c3" * 16, "d4" * 16
RANGE = TimeRange(dt.datetime.fromtimestamp(BASE_S - 3600, dt.UTC),
                  dt.datetime.fromtimestamp(int(time.time()) + 600, dt.UTC), interval_ms=60_000)


# --- spans sent --------------------------------------------------------------------------------------------

@dataclass
class SpanSpec:
    trace: str
    span: str
    parent: str
    name: str
    start_s: float  # seconds after BASE_S
    duration_ms: float
    kind: int = 3  # Client
    attributes: dict[str, Any] | None = None
    error: bool = False
    event: str = ""
    link_to: str = ""


def chat(model: str, provider: str, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
         reasoning: int = 0, ttft_s: float | None = None, **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "gen_ai.response.model": model, "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens, **extra}
    for key, value in (("gen_ai.usage.cache_read.input_tokens", cache_read),
                       ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                       ("gen_ai.usage.reasoning.output_tokens", reasoning)):
        if value:
            attributes[key] = value
    if ttft_s is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = ttft_s
    return attributes


ACME_CHAT_API = [  # trace A: a request to an agent that calls two models and a tool
    SpanSpec(TRACE_A, "a000000000000001", "", "POST /chat", 600.0, 3000, kind=2),
    SpanSpec(TRACE_A, "a000000000000002", "a000000000000001", "invoke_agent planner", 600.1, 2500, kind=1,
             attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                         "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                         "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.output_tokens": 600}),
    SpanSpec(TRACE_A, "a000000000000003", "a000000000000002", "chat gpt-4o", 600.2, 1200,
             attributes=chat("gpt-4o", "openai", 1000, 500, cache_read=200, ttft_s=0.25),
             event="gen_ai.choice", link_to=TRACE_B),
    SpanSpec(TRACE_A, "a000000000000004", "a000000000000002", "execute_tool search", 601.5, 300, kind=1,
             attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}),
    SpanSpec(TRACE_A, "a000000000000005", "a000000000000002", "chat gpt-4o-mini", 601.9, 400,
             attributes=chat("gpt-4o-mini", "openai", 2000, 100, cache_read=1000, reasoning=40, ttft_s=0.1)),
]
ACME_BATCH = [  # trace B, an hour later: one call that failed
    SpanSpec(TRACE_B, "b000000000000001", "", "chat gpt-4o", 4200.0, 50,
             attributes=chat("gpt-4o", "openai", 100, 0, **{"error.type": "RateLimitError"}), error=True),
]
GLOBEX_APP = [  # trace C, another tenant
    SpanSpec(TRACE_C, "c000000000000001", "", "chat claude-sonnet-4-5", 1200.0, 800,
             attributes=chat("claude-sonnet-4-5", "anthropic", 500, 50, cache_write=100)),
    SpanSpec(TRACE_C, "c000000000000002", "c000000000000001", "execute_tool lookup", 1201.0, 90, kind=1,
             attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}),
]


# Grafana's singlequote format escapes ' but not \: a name ending in a backslash would end the quoted string early.
HOSTILE_SERVICE = "evil\\' OR 1=1 --"
HOSTILE_MODEL = "gpt-4o\\"
MALLORY_APP = [
    SpanSpec(TRACE_M, "d000000000000001", "", "chat", 1300.0, 20,
             attributes={**chat(HOSTILE_MODEL, "openai", 10, 1), "gen_ai.tool.name": "x\\"}),
]


def otlp(service: str, specs: list[SpanSpec]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (("service.name", service), ("service.version", "1.4.2")):
        resource_spans.resource.attributes.add(key=key).value.string_value = value
    scope = resource_spans.scope_spans.add()
    scope.scope.name, scope.scope.version = "spanhouse.test", "1.0"
    for spec in specs:
        start = int((BASE_S + spec.start_s) * NS)
        span = scope.spans.add(trace_id=bytes.fromhex(spec.trace), span_id=bytes.fromhex(spec.span),
                               parent_span_id=bytes.fromhex(spec.parent) if spec.parent else b"", name=spec.name,
                               kind=spec.kind, start_time_unix_nano=start,
                               end_time_unix_nano=start + int(spec.duration_ms * 1_000_000))
        for key, value in (spec.attributes or {}).items():
            kv = span.attributes.add(key=key)
            if isinstance(value, (bool, str)):
                kv.value.string_value = str(value)
            elif isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.double_value = value
        if spec.error:
            span.status.code, span.status.message = 2, "rate limited"
        if spec.event:
            event = span.events.add(name=spec.event, time_unix_nano=start + 1_000_000)
            event.attributes.add(key="gen_ai.choice.index").value.string_value = "0"
        if spec.link_to:
            link = span.links.add(trace_id=bytes.fromhex(spec.link_to), span_id=bytes.fromhex("b000000000000001"))
            link.attributes.add(key="link.reason").value.string_value = "retry of"
    return request


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("grafana") / "store",
                              **auth_overrides(ACME, GLOBEX, MALLORY, ADMIN))
    try:
        export(running.grpc_endpoint, otlp("chat-api", ACME_CHAT_API), metadata=ACME.metadata)
        export(running.grpc_endpoint, otlp("batch-worker", ACME_BATCH), metadata=ACME.metadata)
        export(running.grpc_endpoint, otlp("globex-app", GLOBEX_APP), metadata=GLOBEX.metadata)
        export(running.grpc_endpoint, otlp(HOSTILE_SERVICE, MALLORY_APP), metadata=MALLORY.metadata)
        running.flush()
        yield running
    finally:
        running.collector.stop()


# --- running a query as Grafana would -------------------------------------------------------------------------

@dataclass
class Result:
    sql: str
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]

    def column(self, name: str) -> list[Any]:
        return [row[self.columns.index(name)] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def run(collector: RunningCollector, key: Key, sql: str) -> Result:
    """`sql` through ClickHouse's HTTP interface, as the data source sends it (user = tenant, key as password)."""
    reply = call(collector.query_endpoint, sql, key=key.key, user=key.tenant,
                 params={"default_format": "JSONCompact"})
    assert reply.status == 200, f"{reply.text}\n--- SQL sent ---\n{sql}"
    decoded = json.loads(reply.body)
    return Result(sql, [m["name"] for m in decoded["meta"]], [m["type"] for m in decoded["meta"]], decoded["data"])


def run_native(collector: RunningCollector, key: Key, sql: str) -> tuple[list[str], list[str], list[Any]]:
    """`sql` the way the plugin's driver (clickhouse-go over HTTP) reads it: Native at its protocol revision."""
    reply = call(collector.query_endpoint, sql, key=key.key, user=key.tenant,
                 params={"default_format": "Native", "client_protocol_version": str(CLICKHOUSE_GO_REVISION)})
    assert reply.status == 200, f"{reply.text}\n--- SQL sent ---\n{sql}"
    return read_at_revision(reply.body, CLICKHOUSE_GO_REVISION)


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))
    yield from walk(board.get("panels", []))


def variable_sql(variable: dict[str, Any]) -> str:
    query = variable.get("query")
    return query["rawSql"] if isinstance(query, dict) else query


def resolve_variables(collector: RunningCollector, key: Key, board: dict[str, Any],
                      chosen: dict[str, str | list[str]] | None = None) -> list[Variable]:
    """The dashboard's variables, in order, as Grafana resolves them: each query variable's options come from its
    query run with the variables before it; every variable is All (or empty) unless `chosen` picks values."""
    chosen = chosen or {}
    resolved: list[Variable] = []
    for spec in board["templating"]["list"]:
        name = spec["name"]
        if spec["type"] == "query":
            result = run(collector, key, interpolate(variable_sql(spec), resolved, RANGE))
            assert 1 <= len(result.columns) <= 2, f"variable {name}: one column (or id and text), got {result.columns}"
            options = [str(v) for v in result.column(result.columns[0])]
            current = chosen.get(name, [ALL] if spec.get("multi") else (options[0] if options else ""))
            resolved.append(Variable(name, current, options, spec.get("allValue")))
        elif spec["type"] == "custom":
            options = [o.strip() for o in spec["query"].split(",") if o.strip()]
            resolved.append(Variable(name, chosen.get(name, [ALL]), options, spec.get("allValue")))
        elif spec["type"] == "textbox":
            resolved.append(Variable(name, chosen.get(name, spec.get("query", ""))))
        else:
            raise AssertionError(f"variable {name}: type {spec['type']} is not modelled here")
    return resolved


def panel_sql(board: dict[str, Any], title: str) -> str:
    matches = [p for p in all_panels(board) if p.get("title") == title]
    assert len(matches) == 1, f"one panel titled {title!r}"
    (target,) = matches[0]["targets"]
    return target["rawSql"]


def run_panel(collector: RunningCollector, key: Key, board_name: str, title: str,
              chosen: dict[str, str | list[str]] | None = None) -> Result:
    board = dashboards()[board_name]
    variables = resolve_variables(collector, key, board, chosen)
    return run(collector, key, interpolate(panel_sql(board, title), variables, RANGE))


# --- result shapes --------------------------------------------------------------------------------------------

_NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*)\)?$")
_TIME = re.compile(r"^(Nullable\()?(DateTime(64)?(\(.*\))?|Date(32)?)\)?$")
_TEXT = re.compile(r"^(Nullable\()?(LowCardinality\()?String\)?\)?$")


def check_time_series(result: Result, where: str) -> None:
    """sqlds turns a long frame into a wide one: a time column first, then string labels and numeric values."""
    assert result.types and _TIME.match(result.types[0]), f"{where}: first column must be a time, got {result.types}"
    rest = list(zip(result.columns[1:], result.types[1:]))
    assert any(_NUMERIC.match(t) for _, t in rest), f"{where}: needs a numeric value column, got {result.types}"
    for name, kind in rest:
        assert _NUMERIC.match(kind) or _TEXT.match(kind), f"{where}: column {name} is {kind}: neither label nor value"


TRACE_COLUMNS = {  # Grafana's trace data frame (the plugin's generateTraceIdQuery aliases and types)
    "traceID": "String", "spanID": "String", "parentSpanID": "String", "serviceName": "LowCardinality(String)",
    "operationName": "LowCardinality(String)", "startTime": "Float64", "duration": "Float64",
    "tags": "Array(Map(String, String))", "serviceTags": "Array(Map(String, String))", "statusCode": "UInt8",
    "logs": "Array(Tuple(name String, timestamp String, fields Array(Map(String, String))))",
    "references": "Array(Tuple(traceID String, spanID String, tags Array(Map(String, String))))",
    "kind": "LowCardinality(String)", "statusMessage": "String", "traceState": "String",
}


def check_result(result: Result, panel_type: str, fmt: int, where: str) -> None:
    if fmt == 0:
        check_time_series(result, where)
    elif fmt == 3:
        assert dict(zip(result.columns, result.types)) == TRACE_COLUMNS, where
    else:
        assert result.columns, where
        if panel_type == "stat":
            assert all(_NUMERIC.match(t) for t in result.types), f"{where}: a stat shows numbers, got {result.types}"


def every_query(board: dict[str, Any]) -> Iterator[tuple[str, str, str, int]]:
    """(kind, title, sql, format) of every panel target, variable and annotation of a dashboard."""
    for spec in board["templating"]["list"]:
        if spec["type"] == "query":
            yield "variable", spec["name"], variable_sql(spec), 1
    for annotation in board["annotations"]["list"]:
        if "target" in annotation:
            yield "annotation", annotation["name"], annotation["target"]["rawSql"], annotation["target"].get("format", 1)
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            yield panel["type"], panel["title"], target["rawSql"], target.get("format", 1)


# --- the macro helper against the plugin's own expectations -----------------------------------------------------

PLUGIN_RANGE = TimeRange(dt.datetime(2014, 11, 12, 11, 45, 26, 123000, dt.UTC),
                         dt.datetime(2015, 11, 12, 11, 45, 26, 456000, dt.UTC), interval_ms=60_000)


@pytest.mark.parametrize("sql, expanded", [  # cases of pkg/macros/macros_test.go
    ("select * from foo where $__timeFilter(cast(sth as timestamp) )",
     ("select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= "
      "toDateTime(1447328726)")),
    ("select * from foo where $__timeFilter_ms(cast(sth as timestamp))",
     ("select * from foo where cast(sth as timestamp) >= fromUnixTimestamp64Milli(1415792726123) AND "
      "cast(sth as timestamp) <= fromUnixTimestamp64Milli(1447328726456)")),
    ("select * from foo where ( date >= $__fromTime_ms and date <= $__toTime_ms ) limit 100",
     ("select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) and date <= "
      "fromUnixTimestamp64Milli(1447328726456) ) limit 100")),
    ("SELECT $__timeInterval($__fromTime) AS from_time",
     "SELECT toStartOfInterval(toDateTime(toDateTime(1415792726)), INTERVAL 60 second) AS from_time"),
    ("SELECT $__timeInterval_ms($__fromTime_ms)",
     ("SELECT toStartOfInterval(toDateTime64(fromUnixTimestamp64Milli(1415792726123), 3), "
      "INTERVAL 60000 millisecond)")),
    ("select * from foo where $__timeFilter(coalesce(closed_at, $__toTime))",
     ("select * from foo where coalesce(closed_at, toDateTime(1447328726)) >= toDateTime(1415792726) AND "
      "coalesce(closed_at, toDateTime(1447328726)) <= toDateTime(1447328726)")),
    # Comments go first (a macro in one is not expanded); unknown macros stay.
    ("SELECT $__dateFilter(d), $__interval_s -- $__fromTime",
     "SELECT d >= toDate('2014-11-12') AND d <= toDate('2015-11-12'), 60 "),
    ("SELECT '$__unknown(x)', $__timeGroup(ts, '5m')",
     "SELECT '$__unknown(x)', toStartOfInterval(toDateTime(ts), INTERVAL 300 second)"),
])
def test_backend_macros_expand_as_the_plugin_does(sql: str, expanded: str) -> None:
    assert expand_backend_macros(sql, PLUGIN_RANGE) == expanded


def test_a_macro_with_the_wrong_arguments_is_refused_like_the_plugin_refuses_it() -> None:
    with pytest.raises(MacroError, match=r"\$__timeFilter expected 1 argument"):
        expand_backend_macros("SELECT 1 WHERE $__timeFilter(a, b)", PLUGIN_RANGE)


@pytest.mark.parametrize("sql, variables, expanded", [
    ("$__conditionalAll(ServiceName IN ($service), $service)", [Variable("service", [ALL], ["a", "b"])], "1=1"),
    ("$__conditionalAll(ServiceName IN ($service), $service)", [Variable("service", ["a", "b"], ["a", "b"])],
     "ServiceName IN ('a','b')"),
    ("$__conditionalAll(x >= toFloat64OrZero(${v:singlequote}), $v)", [Variable("v", "")], "1=1"),
    ("$__conditionalAll(x >= toFloat64OrZero(${v:singlequote}), $v)", [Variable("v", "it's")],
     "x >= toFloat64OrZero('it\\'s')"),
    ("ServiceName IN (${service:singlequote})", [Variable("service", [ALL], ["a", "o'b"])],
     "ServiceName IN ('a','o\\'b')"),
    ("ServiceName = '${service}' AND k = $kind", [Variable("service", "api"), Variable("kind", [ALL], ["x"], "'*'")],
     "ServiceName = 'api' AND k = '*'"),
    ("SELECT $unknown, [[service]]", [Variable("service", "api")], "SELECT $unknown, api"),
    ("'${v:percentencode}'", [Variable("v", "1.5' OR (x)*!~\\ é")], "'1.5%27%20OR%20%28x%29%2A%21~%5C%20%C3%A9'"),
])
def test_variables_expand_as_grafana_and_the_plugin_do(sql: str, variables: list[Variable], expanded: str) -> None:
    assert interpolate(sql, variables, PLUGIN_RANGE) == expanded


# --- provisioning and dashboard files ---------------------------------------------------------------------------

def test_the_provisioned_data_source_is_the_plugins_http_setup_with_the_key_as_password() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "spanhouse.yaml").read_text())
    (source,) = config["datasources"]
    assert (source["type"], source["uid"]) == (PLUGIN_TYPE, "spanhouse")
    data = source["jsonData"]
    assert data["protocol"] == "http" and data["secure"] is False
    assert (data["host"], data["port"]) == ("${SPANHOUSE_QUERY_HOST}", "${SPANHOUSE_QUERY_PORT}")
    assert source["secureJsonData"]["password"] == "${SPANHOUSE_API_KEY}"
    traces = data["traces"]
    assert (traces["defaultTable"], traces["otelEnabled"], traces["otelVersion"]) == ("otel_traces", True, "1.29.0")
    assert (traces["traceEventsColumnPrefix"], traces["traceLinksColumnPrefix"]) == ("Events", "Links")
    # Every setting read from the environment is explained where users look.
    guide = (ROOT / "docs" / "grafana.md").read_text()
    for name in set(re.findall(r"\$\{(\w+)\}", (PROVISIONING / "datasources" / "spanhouse.yaml").read_text())):
        assert name in guide, f"docs/grafana.md does not explain {name}"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "spanhouse.yaml").read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"] and providers[0]["options"]["path"]


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_each_dashboard_is_grafana_json_on_the_provisioned_data_source(name: str) -> None:
    board = dashboards()[name]
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]) and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in all_panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in all_panels(board):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": PLUGIN_TYPE, "uid": "spanhouse"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "spanhouse" and target["editorType"] == "sql", panel["title"]
            assert target["format"] in (0, 1, 3) and target["rawSql"].strip(), panel["title"]
    variable_names = set()
    for spec in board["templating"]["list"]:
        if spec["type"] == "query":
            assert spec["datasource"]["uid"] == "spanhouse" and spec["multi"] and spec["includeAll"], spec["name"]
        variable_names.add(spec["name"])
    # Every variable a query names exists (a typo would reach ClickHouse as `$name`).
    for _, title, sql, _ in every_query(board):
        used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(?!__)(\w+)", sql))
        assert {a or b for a, b in used} <= variable_names, f"{title}: unknown variable in {sql}"


def plugin_trace_query(database: str, trace_id_literal: str, with_lookup: bool) -> str:
    """The SQL the data source builds to open one trace (src/data/sqlGenerator.ts generateTraceIdQuery), for the
    provisioned traces settings: OTel 1.29 columns on otel_traces, nanosecond durations, Events and Links not
    flattened. `with_lookup` when it found the _trace_id_ts table (SHOW TABLES, which an admin key may run)."""
    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"' if name else ""

    def table(name: str) -> str:
        return f"{ident(database)}{'.' if database else ''}{ident(name)}"

    def key_values(column: str) -> str:
        return f"arrayMap(key -> map('key', key, 'value',{ident(column)}[key]), mapKeys({ident(column)}))"

    fields = "arrayMap(key -> map('key', key, 'value', attributes[key]), mapKeys(attributes))"
    select = [
        '"TraceId" as traceID', '"SpanId" as spanID', '"ParentSpanId" as parentSpanID', '"ServiceName" as serviceName',
        '"SpanName" as operationName', 'multiply(toUnixTimestamp64Nano("Timestamp"), 0.000001) as startTime',
        'multiply("Duration", 0.000001) as duration', f"{key_values('SpanAttributes')} as tags",
        f"{key_values('ResourceAttributes')} as serviceTags",
        """if("StatusCode" IN ('Error', 'STATUS_CODE_ERROR'), 2, 0) as statusCode""",
        " ".join(["arrayMap((name, timestamp, attributes) -> tuple(name, toString(toUnixTimestamp64Milli(timestamp)),",
                  f"{fields})::Tuple(name String, timestamp String, fields Array(Map(String, String))),",
                  '"Events".Name, "Events".Timestamp,', '"Events".Attributes) AS logs']),
        " ".join([(f"arrayMap((traceID, spanID, attributes) -> tuple(traceID, spanID, {fields})"
                   "::Tuple(traceID String, spanID String, tags Array(Map(String, String))),"),
                  '"Links".TraceId, "Links".SpanId,', '"Links".Attributes) AS references']),
        '"SpanKind" as kind', '"StatusMessage" as statusMessage', '"TraceState" as traceState',
    ]
    parts: list[str] = []
    if with_lookup:
        lookup = table("otel_traces_trace_id_ts")
        parts += ["WITH", f"{trace_id_literal} as __gf_trace_id,",
                  f"(SELECT min(Start) FROM {lookup} WHERE TraceId = __gf_trace_id) as __gf_trace_start,",
                  f"(SELECT max(End) + 1 FROM {lookup} WHERE TraceId = __gf_trace_id) as __gf_trace_end"]
    parts += ["SELECT", ", ".join(select), "FROM", table("otel_traces"), "WHERE"]
    if with_lookup:
        parts += ["traceID = __gf_trace_id", "AND", '"Timestamp" >= __gf_trace_start', "AND",
                  '"Timestamp" <= __gf_trace_end']
    else:
        parts.append(f"traceID = {trace_id_literal}")
    return " ".join(parts)


def test_the_trace_panel_query_is_the_data_sources_trace_query() -> None:
    """The trace panel runs, word for word, the query the data source builds for its trace view."""
    sql = panel_sql(dashboards()["traces.json"], "Trace ${trace_id}")
    # The one difference: the trace id is sent URL-encoded, so no text typed into the box can end the string.
    literal = "decodeURLComponent('${trace_id:percentencode}')"
    assert " ".join(sql.split()) == plugin_trace_query("", literal, with_lookup=True)
    select = sql[sql.index("\nSELECT"):sql.index("\nFROM")]
    assert re.findall(r"\b(?:as|AS) (\w+)\s*(?:,|$)", select) == list(TRACE_COLUMNS)


@pytest.mark.parametrize("key, with_lookup", [(ADMIN, True), (ADMIN, False), (ACME, False)])
def test_the_data_sources_view_trace_link_opens_a_trace(collector: RunningCollector, key: Key,
                                                         with_lookup: bool) -> None:
    """A TraceId column gets a "View trace" link whose query reads otel_traces in the provisioned database."""
    config = yaml.safe_load((PROVISIONING / "datasources" / "spanhouse.yaml").read_text())
    assert config["datasources"][0]["jsonData"]["traces"]["defaultDatabase"] == "${SPANHOUSE_DATABASE}"
    result = run(collector, key, plugin_trace_query("default", f"'{TRACE_A}'", with_lookup))
    assert dict(zip(result.columns, result.types)) == TRACE_COLUMNS
    assert sorted(result.column("spanID")) == sorted(s.span for s in ACME_CHAT_API)


# --- every query of every dashboard runs ---------------------------------------------------------------------

QUERIES = [(name, *q) for name, board in dashboards().items() for q in every_query(board)]


@pytest.mark.parametrize("key", [ADMIN, ACME], ids=["admin", "tenant"])
@pytest.mark.parametrize("board_name, kind, title, sql, fmt", QUERIES, ids=[f"{q[0]}:{q[2]}" for q in QUERIES])
def test_every_query_runs_and_has_the_columns_its_panel_reads(collector: RunningCollector, key: Key, board_name: str,
                                                               kind: str, title: str, sql: str, fmt: int) -> None:
    board = dashboards()[board_name]
    chosen = {"trace_id": TRACE_A}
    everything = resolve_variables(collector, key, board, chosen)
    for variables in (everything,
                      resolve_variables(collector, key, board, {**chosen, "tenant": ["acme"], "service": ["chat-api"],
                                                                "model": ["gpt-4o", "gpt-4o-mini"], "tool": ["search"],
                                                                "status": ["Ok"], "min_cost": "0.0001",
                                                                "min_duration_ms": "10"})):
        expanded = interpolate(sql, variables, RANGE)
        result = run(collector, key, expanded)
        where = f"{board_name} {kind} {title!r}"
        # The plugin's own read of the same query: Native for clickhouse-go, the same columns and rows (an
        # empty result is an empty body in Native, as a server sends it).
        names, types, rows = run_native(collector, key, expanded)
        if result.rows:
            assert (names, types, len(rows)) == (result.columns, result.types, len(result.rows)), where
        else:
            assert rows == [], where
        if kind == "annotation":
            assert _TIME.match(result.types[0]) and "text" in result.columns, where
        elif kind != "variable":
            check_result(result, kind, fmt, where)
        if variables is everything:  # with every filter at All, every query has something to show
            assert result.rows, f"{where} shows nothing for the spans sent:\n{result.sql}"


# --- the numbers ------------------------------------------------------------------------------------------------

LLM_CALLS = [s for s in ACME_CHAT_API + ACME_BATCH if s.attributes and s.attributes.get("gen_ai.operation.name") == "chat"]


def prices(collector: RunningCollector) -> dict[str, tuple[float, float, float, float]]:
    """Model -> USD per million (input, cache read, cache write, output), as the collector loaded them."""
    rows = collector.query("SELECT Model, argMax((InputPerMTok, CacheReadPerMTok, CacheWritePerMTok, OutputPerMTok), "
                           "EffectiveFrom) FROM model_prices WHERE EffectiveFrom <= now() GROUP BY Model")
    return {model: tuple(rates) for model, rates in rows}


def expected_cost(collector: RunningCollector, specs: list[SpanSpec]) -> float:
    table = prices(collector)
    total = 0.0
    for spec in specs:
        a = spec.attributes or {}
        rates = table[a["gen_ai.response.model"]]
        read = a.get("gen_ai.usage.cache_read.input_tokens", 0)
        write = a.get("gen_ai.usage.cache_creation.input_tokens", 0)
        uncached = a["gen_ai.usage.input_tokens"] - read - write
        total += (uncached * rates[0] + read * rates[1] + write * rates[2]
                  + a["gen_ai.usage.output_tokens"] * rates[3]) / 1e6
    return total


def test_totals_count_llm_calls_once_and_leave_agent_spans_out(collector: RunningCollector) -> None:
    (row,) = run_panel(collector, ADMIN, "genai-usage.json", "Totals", {"tenant": ["acme"]}).records()
    assert row["LLM calls"] == 3 and row["Unpriced calls"] == 0
    assert row["Error rate"] == pytest.approx(1 / 3)
    assert row["Tokens"] == 3100 + 600  # the agent span's 3000 + 600 repeat its children's and are not added
    assert row["Cost (USD)"] == pytest.approx(expected_cost(collector, LLM_CALLS), abs=1e-6)


def test_cost_panels_agree_with_the_price_table_and_the_cli_query(collector: RunningCollector) -> None:
    by_model = run_panel(collector, ADMIN, "genai-usage.json", "Cost per hour by model", {"tenant": ["acme"]})
    check_time_series(by_model, "cost per hour")
    hours = {(row["time"], row["Model"]): row["cost_usd"] for row in by_model.records()}
    # DateTime values come as text in the engine's time zone (Grafana reads them as instants).
    (zone,) = run(collector, ADMIN, "SELECT timezone()").rows[0]
    first_hour, next_hour = (dt.datetime.fromtimestamp(BASE_S + h, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
                             for h in (0, 3600))
    assert set(hours) == {(first_hour, "gpt-4o"), (first_hour, "gpt-4o-mini"), (next_hour, "gpt-4o")}
    assert hours[(first_hour, "gpt-4o")] == pytest.approx(expected_cost(collector, [ACME_CHAT_API[2]]), abs=1e-9)
    assert hours[(first_hour, "gpt-4o-mini")] == pytest.approx(expected_cost(collector, [ACME_CHAT_API[4]]), abs=1e-9)
    assert hours[(next_hour, "gpt-4o")] == pytest.approx(expected_cost(collector, ACME_BATCH), abs=1e-9)

    # Per day and tenant, the same numbers as `spanhouse usage` (schemas/queries/cost_by_day.sql), all tenants.
    by_tenant = run_panel(collector, ADMIN, "genai-usage.json", "Cost per day by tenant")
    panel = {}
    for row in by_tenant.records():
        panel[row["TenantId"]] = panel.get(row["TenantId"], 0.0) + row["cost_usd"]
    cli_sql = queries.render("cost_by_day", since=RANGE.start, until=RANGE.end)
    cli: dict[str, float] = {}
    for row in run(collector, ADMIN, cli_sql).records():
        cli[row["tenant"]] = cli.get(row["tenant"], 0.0) + row["cost_usd"]
    assert panel.keys() == cli.keys() == {"acme", "globex", "mallory"}
    for tenant, cost in cli.items():
        assert panel[tenant] == pytest.approx(cost, abs=1e-6)
    assert panel["globex"] == pytest.approx(expected_cost(collector, GLOBEX_APP[:1]), abs=1e-6)


def test_tokens_by_kind_count_each_token_once(collector: RunningCollector) -> None:
    result = run_panel(collector, ADMIN, "genai-usage.json", "Tokens by kind", {"tenant": ["acme"]})
    kinds = ["Uncached input", "Cached input", "Cache writes", "Output (excl. reasoning)", "Reasoning"]
    totals = {kind: sum(result.column(kind)) for kind in kinds}
    assert totals == {"Uncached input": 3100 - 1200, "Cached input": 1200, "Cache writes": 0,
                      "Output (excl. reasoning)": 600 - 40, "Reasoning": 40}
    (globex,) = run_panel(collector, GLOBEX, "genai-usage.json", "Usage by model").records()
    assert (globex["Model"], globex["uncached_input"], globex["cache_writes"], globex["output"]) \
        == ("claude-sonnet-4-5", 400, 100, 50)


def exact_quantile(values: list[float], q: float) -> float:
    """ClickHouse's quantileExactInclusive: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def test_latency_and_time_to_first_token_are_exact_per_model_and_tool(collector: RunningCollector) -> None:
    rows = {r["Model"]: r for r in run_panel(collector, ACME, "genai-usage.json",
                                             "Latency and time to first token by model").records()}
    assert set(rows) == {"gpt-4o", "gpt-4o-mini"}
    durations = {"gpt-4o": [1200.0, 50.0], "gpt-4o-mini": [400.0]}
    for model, values in durations.items():
        for q, column in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            assert rows[model][column] == pytest.approx(exact_quantile(values, q), abs=1e-3), (model, column)
    assert (rows["gpt-4o"]["streamed_calls"], rows["gpt-4o"]["ttft_p50_ms"]) == (1, 250.0)
    assert rows["gpt-4o-mini"]["ttft_p99_ms"] == 100.0
    # The CLI's latency query gives the same percentiles.
    cli = {r["model"]: r["p50_p95_p99_ms"] for r in run(collector, ACME, queries.render(
        "latency_by_model", since=RANGE.start, until=RANGE.end)).records()}
    assert cli["gpt-4o"] == [rows["gpt-4o"]["p50_ms"], rows["gpt-4o"]["p95_ms"], rows["gpt-4o"]["p99_ms"]]

    tools = run_panel(collector, ADMIN, "genai-usage.json", "Latency by tool").records()
    assert [(t["tool"], t["calls"], t["p50_ms"]) for t in tools] == [("lookup", 1, 90.0), ("search", 1, 300.0)]
    p95 = run_panel(collector, ACME, "genai-usage.json", "Latency p95 by model", {"model": ["gpt-4o-mini"]})
    assert p95.column("p95_ms") == [pytest.approx(400.0)]


def test_the_most_expensive_traces_come_first_and_a_tenant_sees_its_own(collector: RunningCollector) -> None:
    admin = run_panel(collector, ADMIN, "genai-usage.json", "Most expensive traces").records()
    costs = [r["cost_usd"] for r in admin]
    assert costs == sorted(costs, reverse=True) and {r["TraceId"] for r in admin} \
        == {TRACE_A, TRACE_B, TRACE_C, TRACE_M}
    acme = run_panel(collector, ACME, "genai-usage.json", "Most expensive traces").records()
    assert [r["TraceId"] for r in acme] == [TRACE_A, TRACE_B]
    assert acme[0]["cost_usd"] == pytest.approx(expected_cost(collector, [ACME_CHAT_API[2], ACME_CHAT_API[4]]), abs=1e-6)
    assert acme[0]["llm_calls"] == 2 and sorted(acme[0]["models"]) == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize("chosen, found", [
    ({}, [TRACE_B, TRACE_A]),  # newest first
    ({"status": ["Error"]}, [TRACE_B]),
    ({"status": ["Ok"]}, [TRACE_A]),
    ({"model": ["gpt-4o-mini"]}, [TRACE_A]),
    ({"tool": ["search"]}, [TRACE_A]),
    ({"service": ["batch-worker"]}, [TRACE_B]),
    ({"min_cost": "0.001"}, [TRACE_A]),
    ({"min_duration_ms": "1000"}, [TRACE_A]),  # from the first GenAI span's start to the last one's end: 2.5 s
    ({"min_duration_ms": "2600"}, []),
    # Text that is not a number filters nothing, and nothing typed ends the string it is put in.
    ({"min_cost": "x' OR 1=1 OR '"}, [TRACE_B, TRACE_A]),
    ({"min_cost": "\\' OR 1=0) --"}, [TRACE_B, TRACE_A]),
    ({"min_duration_ms": "1e3\\"}, [TRACE_B, TRACE_A]),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else None)
def test_the_trace_search_filters(collector: RunningCollector, chosen: dict[str, Any], found: list[str]) -> None:
    result = run_panel(collector, ACME, "traces.json", "Traces", chosen)
    assert result.column("TraceId") == found


def test_the_trace_panel_returns_the_trace_in_the_trace_views_frame(collector: RunningCollector) -> None:
    result = run_panel(collector, ACME, "traces.json", "Trace ${trace_id}", {"trace_id": TRACE_A})
    spans = {r["spanID"]: r for r in result.records()}
    assert set(spans) == {s.span for s in ACME_CHAT_API}
    root, llm = spans["a000000000000001"], spans["a000000000000003"]
    assert (root["parentSpanID"], root["serviceName"], root["operationName"]) == ("", "chat-api", "POST /chat")
    assert root["duration"] == pytest.approx(3000.0) and root["kind"] == "Server"
    assert root["startTime"] == pytest.approx((BASE_S + 600) * 1000.0)
    assert {"key": "gen_ai.request.model", "value": "gpt-4o"} in llm["tags"]
    assert {"key": "service.version", "value": "1.4.2"} in llm["serviceTags"]
    assert llm["logs"][0]["name"] == "gen_ai.choice" and llm["logs"][0]["fields"] == [
        {"key": "gen_ai.choice.index", "value": "0"}]
    assert llm["references"][0]["traceID"] == TRACE_B
    error = run_panel(collector, ACME, "traces.json", "Trace ${trace_id}", {"trace_id": TRACE_B}).records()
    assert [(r["statusCode"], r["statusMessage"]) for r in error] == [(2, "rate limited")]
    # Another tenant's trace is not there for this key, and the box's text never leaves its string.
    assert run_panel(collector, ACME, "traces.json", "Trace ${trace_id}", {"trace_id": TRACE_C}).rows == []
    for hostile in (f"{TRACE_A}' OR 1=1 --", f"{TRACE_A}\\' OR 1=1 --", "\\"):
        for title in ("Trace ${trace_id}", "GenAI spans of the trace"):
            assert run_panel(collector, ADMIN, "traces.json", title, {"trace_id": hostile}).rows == []
    spans_table = run_panel(collector, ACME, "traces.json", "GenAI spans of the trace", {"trace_id": TRACE_A})
    assert sorted(spans_table.column("operation")) == ["chat", "chat", "execute_tool", "invoke_agent"]


def test_a_tenant_key_sees_only_its_tenant_in_every_variable(collector: RunningCollector) -> None:
    variables = {v.name: v.options for v in resolve_variables(collector, ACME, dashboards()["genai-usage.json"])}
    assert variables == {"tenant": ["acme"], "service": ["batch-worker", "chat-api"],
                         "model": ["gpt-4o", "gpt-4o-mini"], "tool": ["search"]}
    admin = {v.name: v.options for v in resolve_variables(collector, ADMIN, dashboards()["genai-usage.json"])}
    assert admin["tenant"] == ["acme", "globex", "mallory"] and admin["tool"] == ["lookup", "search"]
    # Names the variables' quoting could not carry are not offered; their rows still count under All.
    assert HOSTILE_SERVICE not in admin["service"] and HOSTILE_MODEL not in admin["model"]


# --- the plugin's own OpenTelemetry dashboards over the otel_traces views ---------------------------------------

PLUGIN = json.loads(PLUGIN_FIXTURE.read_text())
PLUGIN_QUERIES = [(board["uid"], q) for board in PLUGIN["dashboards"] for q in board["queries"]]


def plugin_variables(board_uid: str, service: str) -> list[Variable]:
    board = next(b for b in PLUGIN["dashboards"] if b["uid"] == board_uid)
    values: dict[str, str | list[str]] = {"service": [service] if board_uid == "otel-traces-explorer" else service,
                                          "operation": [ALL], "status": [ALL], "min_duration": "", "search": ""}
    out = []
    for spec in board["variables"]:
        if spec["name"] in values:
            out.append(Variable(spec["name"], values[spec["name"]], [service]))
    return out


@pytest.mark.parametrize("key", [ADMIN, ACME], ids=["admin", "tenant"])
@pytest.mark.parametrize("board_uid, query", PLUGIN_QUERIES, ids=[f"{b}:{q['title']}" for b, q in PLUGIN_QUERIES])
def test_the_plugins_otel_dashboards_run_on_the_otel_traces_views(collector: RunningCollector, key: Key,
                                                                   board_uid: str, query: dict[str, Any]) -> None:
    if "otel_logs" in query["sql"]:
        pytest.skip("spanhouse stores traces, not logs: otel_logs does not exist")
    sql = interpolate(query["sql"], plugin_variables(board_uid, "chat-api"), RANGE)
    result = run(collector, key, sql)
    if query["kind"] == "panel" and query["format"] == 0:
        check_time_series(result, f"{board_uid} {query['title']}")


def test_the_plugins_dashboards_see_spanhouse_spans(collector: RunningCollector) -> None:
    def plugin_query(board_uid: str, title: str, key: Key = ADMIN) -> Result:
        (query,) = [q for b, q in PLUGIN_QUERIES if b == board_uid and q["title"] == title][:1]
        return run(collector, key, interpolate(query["sql"], plugin_variables(board_uid, "chat-api"), RANGE))

    services = plugin_query("otel-traces-explorer", "Service Map").column("id")
    assert set(services) == {"chat-api", "batch-worker", "globex-app", HOSTILE_SERVICE}
    search = plugin_query("otel-traces-explorer", "Trace Search Results", ACME).records()
    assert [(r["TraceId"], r["Spans"], r["Duration"]) for r in search] == [(TRACE_A, 5, 3_000_000_000)]
    server = plugin_query("otel-service-dashboard", "Slowest Server Operations", ACME).records()
    assert [(r["Operation"], r["Count"]) for r in server] == [("POST /chat", 1)]
    errors = run(collector, ACME, interpolate(
        next(q["sql"] for b, q in PLUGIN_QUERIES if q["title"] == "Top Errors"),
        plugin_variables("otel-service-dashboard", "batch-worker"), RANGE)).records()
    assert [(r["Operation"], r["Error"], r["Count"]) for r in errors] == [("chat gpt-4o", "rate limited", 1)]
