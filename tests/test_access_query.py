"""The query endpoint with API keys: a tenant reads only its own rows, whatever SQL it tries."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from spanhouse.collector.query import client as query_client
from spanhouse.collector.config import Config
from spanhouse.collector.query.tenant_scope import ADMIN_ONLY_TABLES, NotAllowed, TenantScope, parse_ast

from access_harness import Key, auth_overrides, export, http, span_request
from collector_harness import RunningCollector, start_collector

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)
SECRET = "globex-private-7f3a"  # a value only globex's rows hold (under a key redaction leaves alone)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("tenants") / "store", **auth_overrides(ACME, GLOBEX, ADMIN))
    try:
        genai = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.usage.input_tokens": "10", "gen_ai.usage.output_tokens": "5"}
        export(running.grpc_endpoint, span_request("acme-app", 3, genai), metadata=ACME.metadata)
        export(running.grpc_endpoint, span_request("globex-app", 5, {**genai, "marker": SECRET}),
               metadata=GLOBEX.metadata)
        running.flush()
        yield running
    finally:
        running.collector.stop()


def rows(running: RunningCollector, key: Key, sql: str) -> list[list[object]]:
    status, body = http(running.query_endpoint, "/query", sql, key=key.key)
    assert status == 200, body
    return json.loads(body)["data"]


def test_the_data_is_there_for_the_admin(tenants: RunningCollector) -> None:
    assert rows(tenants, ADMIN, "SELECT TenantId, count() FROM spans GROUP BY TenantId ORDER BY TenantId") \
        == [["acme", 3], ["globex", 5]]
    assert rows(tenants, ADMIN, "SELECT TenantId, count() FROM genai_calls GROUP BY TenantId ORDER BY TenantId") \
        == [["acme", 3], ["globex", 5]]


@pytest.mark.parametrize("sql, acme_sees", [
    ("SELECT TenantId, count() FROM spans GROUP BY TenantId", [["acme", 3]]),
    ("SELECT count() FROM spans", [[3]]),  # no trivial count from part metadata
    ("SELECT count(), min(TenantId), max(TenantId) FROM spans", [[3, "acme", "acme"]]),
    ("SELECT count() FROM default.spans WHERE TenantId = 'globex'", [[0]]),
    ("SELECT count() FROM genai_calls WHERE TenantId != 'acme'", [[0]]),
    ("SELECT TenantId, sum(Calls) FROM genai_usage_1m GROUP BY TenantId", [["acme", 3]]),
    ("SELECT TenantId, sum(Calls) FROM genai_usage_1h GROUP BY TenantId", [["acme", 3]]),
    ("SELECT (SELECT count() FROM spans WHERE TenantId = 'globex')", [[0]]),
    ("SELECT count() FROM (SELECT * FROM spans) WHERE TenantId = 'globex'", [[0]]),
    ("SELECT count() FROM spans AS a JOIN genai_calls AS b ON a.SpanId = b.SpanId", [[3]]),
    ("SELECT count() FROM genai_calls WHERE SpanId IN (SELECT SpanId FROM spans)", [[3]]),
    ("SELECT count() FROM spans UNION ALL SELECT count() FROM genai_calls", [[3], [3]]),
    # Conditions that fail on another tenant's row would reveal it, if they ever saw one.
    (f"SELECT count() FROM spans WHERE throwIf(SpanAttributes['marker'] = '{SECRET}', 'leak')", [[0]]),
    ("SELECT count() FROM spans WHERE throwIf(TenantId = 'globex', 'leak') = 0", [[3]]),
    ("SELECT count() FROM spans AS a JOIN spans AS b ON a.SpanId = b.SpanId "
     "AND throwIf(b.TenantId = 'globex', 'leak') = 0", [[3]]),
    ("SELECT count() FROM spans GROUP BY TenantId HAVING throwIf(TenantId = 'globex', 'leak') = 0", [[3]]),
    # The exporter-schema views (migration 009) are read like tables, in every position.
    ("SELECT TenantId, count() FROM otel_traces GROUP BY TenantId", [["acme", 3]]),
    ("SELECT count() FROM default.otel_traces WHERE TenantId = 'globex'", [[0]]),
    (f"SELECT count() FROM otel_traces WHERE throwIf(SpanAttributes['marker'] = '{SECRET}', 'leak') = 0", [[3]]),
    ("SELECT count() FROM otel_traces WHERE throwIf(ServiceName = 'globex-app', 'leak') = 0", [[3]]),
    ("SELECT count() FROM (SELECT * FROM otel_traces) WHERE TenantId = 'globex'", [[0]]),
    ("SELECT (SELECT count() FROM otel_traces WHERE ServiceName = 'globex-app')", [[0]]),
    ("SELECT count() FROM otel_traces AS a JOIN spans AS b ON a.SpanId = b.SpanId", [[3]]),
    (("SELECT count() FROM otel_traces AS child JOIN otel_traces AS parent ON child.TraceId = parent.TraceId "
      "AND throwIf(parent.ServiceName = 'globex-app', 'leak') = 0"), [[3]]),
    ("SELECT count() FROM genai_calls WHERE TraceId IN (SELECT TraceId FROM otel_traces_trace_id_ts)", [[3]]),
    ("SELECT TenantId, count() FROM otel_traces_trace_id_ts GROUP BY TenantId", [["acme", 3]]),
    ("SELECT count() FROM otel_traces_trace_id_ts WHERE throwIf(TenantId = 'globex', 'leak') = 0", [[3]]),
    # The data source's trace lookup: the trace's time range from the _trace_id_ts view, then its spans.
    *[((f"WITH (SELECT any(TraceId) FROM otel_traces WHERE ServiceName = '{service}') AS __gf_trace_id, "
        "(SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_start, "
        "(SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE TraceId = __gf_trace_id) AS __gf_trace_end "
        "SELECT count() FROM otel_traces WHERE TraceId = __gf_trace_id AND Timestamp >= __gf_trace_start "
        "AND Timestamp <= __gf_trace_end"), [[found]])
      for service, found in (("acme-app", 1), ("globex-app", 0))],
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_a_tenant_key_sees_only_its_rows(tenants: RunningCollector, sql: str, acme_sees: list[list[object]]) -> None:
    assert sorted(rows(tenants, ACME, sql)) == sorted(acme_sees)


@pytest.mark.parametrize("sql, reason", [
    ("SELECT * FROM merge(currentDatabase(), '^spans$')", "table function merge() is not available"),
    ("SELECT * FROM remote('127.0.0.1', currentDatabase(), 'spans')", "table function remote()"),
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
    ("SELECT * FROM numbers(3)", "table function numbers()"),
    ("SELECT file('/etc/passwd')", "function file() is not available"),
    ("SELECT * FROM view(SELECT * FROM spans)", "table function view()"),
    ("SELECT count() FROM spans WHERE TenantId IN (SELECT 1 FROM system.one)", "not 'system.one'"),
    ("SELECT query FROM system.query_log", "; not 'system.query_log'"),
    ("SELECT * FROM system.parts", "not 'system.parts'"),
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "not 'INFORMATION_SCHEMA.TABLES'"),
    ("SELECT * FROM spans_trace_id_ts", "not 'spans_trace_id_ts'"),
    ("SELECT * FROM genai_usage_1m_mv", "not 'genai_usage_1m_mv'"),
    ("SELECT * FROM spanhouse_migrations", "not 'spanhouse_migrations'"),
    ("SELECT count() FROM spans SETTINGS additional_table_filters = {}", "a SETTINGS clause is not available"),
    ("SELECT count() FROM (SELECT * FROM spans SETTINGS additional_table_filters = {})", "SETTINGS clause"),
    ("SELECT count() FROM spans PREWHERE throwIf(TenantId = 'globex', 'leak') = 0", "PREWHERE is not available"),
    ("WITH s AS (SELECT * FROM spans) SELECT count() FROM s", "names of WITH subqueries cannot be used"),
    ("SELECT count() FROM spans WHERE (TenantId, SpanId) IN spans", "`IN table_name` is not available"),
    ("SELECT dictGet('d', 'x', 1)", "function dictGet() is not available"),
    ("SELECT joinGet('j', 'x', 1)", "function joinGet() is not available"),
    ("SHOW TABLES", "tenant keys may run SELECT statements only"),
    ("EXPLAIN SELECT * FROM spans", "SELECT statements only"),
    ("DESCRIBE TABLE spans", "SELECT statements only"),
    ("SELECT 'x\n TableIdentifier spans' AS a FROM merge(currentDatabase(), '^spans$')", "table function merge()"),
    # A quoted name with a newline and indentation, shaped to re-parent `system.one` in the syntax tree's text.
    ("SELECT count() FROM spans WHERE (SpanName, `y\n    ExpressionList`) IN system.one", "names with escapes"),
    ("SELECT count() FROM spans WHERE (SpanName, \"y\\x0A    ExpressionList\") IN system.one", "names with escapes"),
    ("SELECT count() FROM `spans\n      TableIdentifier spans`", "names with escapes or control characters"),
    ("INSERT INTO spans (TenantId) VALUES ('acme')", "only read-only statements"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_a_tenant_key_cannot_reach_past_its_rows(tenants: RunningCollector, sql: str, reason: str) -> None:
    status, body = http(tenants.query_endpoint, "/query", sql, key=ACME.key)
    assert status == 403, body
    assert reason in body
    assert SECRET not in body


def test_syntax_tree_rows_added_by_a_name_with_a_newline_are_detected() -> None:
    # EXPLAIN AST of `... WHERE (x, \`y<newline>    ExpressionList\`) IN system.one`: the name adds a row that
    # would make `system.one` look like a child of something other than IN's argument list.
    rows = ["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)", "  SelectQuery (children 2)",
            "   TablesInSelectQuery (children 1)", "    TablesInSelectQueryElement (children 1)",
            "     TableExpression (children 1)", "      TableIdentifier spans", "   Function in (children 1)",
            "    ExpressionList (children 2)", "     Function tuple (children 1)", "      ExpressionList (children 2)",
            "       Identifier x", "       Identifier y", "    ExpressionList", "     Identifier system.one"]
    with pytest.raises(NotAllowed, match="could not be checked"):
        parse_ast(rows)
    honest = rows[:13] + ["     Identifier system.one"]
    (root,) = parse_ast(honest)
    assert root.kind == "SelectWithUnionQuery"


def test_tables_a_tenant_may_read_are_those_with_a_tenant_column(tenants: RunningCollector) -> None:
    status, body = http(tenants.query_endpoint, "/query", "SELECT * FROM system.tables", key=ACME.key)
    assert status == 403
    listed = set(body.split("tenant keys may read only these tables: ")[1].split(";")[0].split(", "))
    with_tenant = {name for (name,) in tenants.query(
        "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'TenantId' "
        "AND table IN (SELECT name FROM system.tables WHERE engine LIKE '%MergeTree' OR engine = 'View')")}
    assert listed == with_tenant - set(ADMIN_ONLY_TABLES)  # archived content is for admin keys only
    assert set(ADMIN_ONLY_TABLES) <= with_tenant
    assert {"spans", "genai_calls", "genai_usage_1m", "genai_usage_1h", "otel_traces",
            "otel_traces_trace_id_ts"} <= listed


# Views with a TenantId column that read something the tenant filter does not cover.
UNCONFINED_VIEWS = {
    "v_no_tenant_table": "SELECT 'acme' AS TenantId, TraceId FROM spans_trace_id_ts",
    "v_table_function": "SELECT 'acme' AS TenantId, number FROM numbers(3)",
    "v_system_table": "SELECT 'acme' AS TenantId, name FROM system.tables",
    "v_in_subquery": "SELECT TenantId, SpanId FROM spans WHERE TraceId IN (SELECT TraceId FROM spans_trace_id_ts)",
    "v_over_unconfined": "SELECT TenantId FROM v_no_tenant_table",
}


def test_a_view_is_a_tenant_table_only_when_it_reads_tenant_tables_only(tenants: RunningCollector) -> None:
    store = tenants.collector.store
    confined = {"v_over_spans": "SELECT TenantId, SpanId FROM spans",
                "v_over_view": "SELECT TenantId, TraceId FROM otel_traces_trace_id_ts"}
    try:
        for name, body in {**UNCONFINED_VIEWS, **confined}.items():
            store.command(f"CREATE VIEW {name} AS {body}")
        tables = TenantScope(store).tables()  # a fresh scope: the endpoint's own loaded its list at start
        assert set(confined) <= tables
        assert not set(UNCONFINED_VIEWS) & tables
        assert {"otel_traces", "otel_traces_trace_id_ts", "spans"} <= tables
    finally:
        for name in [*UNCONFINED_VIEWS, *confined][::-1]:
            store.command(f"DROP VIEW IF EXISTS {name}")


def test_errors_carry_only_the_callers_own_values(tenants: RunningCollector) -> None:
    status, body = http(tenants.query_endpoint, "/query", "SELECT CAST(SpanName AS UInt32) FROM spans", key=ACME.key)
    assert status == 400
    assert "acme-app-span" in body and "globex" not in body


def test_admin_reads_every_table_and_the_stats(tenants: RunningCollector) -> None:
    assert rows(tenants, ADMIN, f"SELECT count() FROM spans WHERE SpanAttributes['marker'] = '{SECRET}'") == [[5]]
    assert rows(tenants, ADMIN, "SELECT count() > 0 FROM system.tables") == [[True]]
    status, body = http(tenants.query_endpoint, "/stats", key=ADMIN.key)
    assert status == 200 and json.loads(body)["spans_accepted_total"] >= 8
    status, body = http(tenants.query_endpoint, "/stats", key=ACME.key)
    assert status == 403 and "admin key" in body


@pytest.mark.parametrize("path, body", [("/query", "SELECT 1"), ("/flush", ""), ("/stats", None)])
@pytest.mark.parametrize("key", [None, "shk_unknown"], ids=["no-key", "unknown-key"])
def test_every_path_but_health_needs_a_key(tenants: RunningCollector, path: str, body: str | None,
                                           key: str | None) -> None:
    status, text = http(tenants.query_endpoint, path, body, key=key)
    assert status == 401
    assert ("missing API key" if key is None else "API key not recognised") in text
    assert "SPANHOUSE_API_KEY" in text
    assert http(tenants.query_endpoint, "/health") == (200, "ok\n")


def test_spanhouse_query_sends_the_key_from_the_environment(tenants: RunningCollector,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config()
    cfg.store.url = tenants.store_url
    cfg.query.endpoint = tenants.query_endpoint
    sql = "SELECT DISTINCT TenantId FROM spans"
    monkeypatch.delenv("SPANHOUSE_API_KEY", raising=False)
    with pytest.raises(query_client.QueryError, match="missing API key.*set SPANHOUSE_API_KEY"):
        query_client.run(cfg, sql, "JSONEachRow")
    monkeypatch.setenv("SPANHOUSE_API_KEY", GLOBEX.key)
    assert query_client.run(cfg, sql, "JSONEachRow") == b'{"TenantId":"globex"}\n'
    monkeypatch.setenv("SPANHOUSE_API_KEY", ADMIN.key)
    assert sorted(query_client.run(cfg, sql, "JSONEachRow").split()) == [b'{"TenantId":"acme"}',
                                                                         b'{"TenantId":"globex"}']
