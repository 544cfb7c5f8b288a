"""Tenant keys stay confined to their tenant's rows on every way into the ClickHouse interface: each way
ClickHouse clients present a key, the query in the URL, query parameters and settings in the URL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from access_harness import Key, auth_overrides, export, span_request
from clickhouse_http_helpers import Reply, call
from collector_harness import RunningCollector, start_collector

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)
SECRET = "globex-private-5b1e"
BY_TENANT = "SELECT TenantId, count() FROM spans GROUP BY TenantId ORDER BY TenantId FORMAT JSONCompact"


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("chttp-access") / "store",
                              **auth_overrides(ACME, GLOBEX, ADMIN))
    try:
        export(running.grpc_endpoint, span_request("acme-app", 3), metadata=ACME.metadata)
        export(running.grpc_endpoint, span_request("globex-app", 5, {"marker": SECRET}), metadata=GLOBEX.metadata)
        running.flush()
        yield running
    finally:
        running.collector.stop()


def data(reply: Reply) -> list[list[Any]]:
    assert reply.status == 200, reply.text
    return json.loads(reply.body)["data"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_admin_sees_both_tenants(tenants: RunningCollector) -> None:
    assert data(call(tenants.query_endpoint, BY_TENANT, key=ADMIN.key)) == [["acme", 3], ["globex", 5]]


# Every way a ClickHouse client presents credentials: (headers, URL parameters, method).
AUTH_PATHS = {
    "basic, tenant as user": (basic("acme", ACME.key), {}, "POST"),
    "basic, any user": (basic("default", ACME.key), {}, "POST"),
    "basic, user globex": (basic("globex", ACME.key), {}, "POST"),  # the key decides, never the user name
    "x-clickhouse-key": ({"X-ClickHouse-User": "globex", "X-ClickHouse-Key": ACME.key}, {}, "POST"),
    "url user/password": ({}, {"user": "globex", "password": ACME.key}, "POST"),
    "bearer": ({"Authorization": f"Bearer {ACME.key}"}, {}, "POST"),
    "get with basic": (basic("acme", ACME.key), {"query": BY_TENANT}, "GET"),
}


@pytest.mark.parametrize("path", list(AUTH_PATHS))
def test_every_auth_path_confines_a_tenant_key(tenants: RunningCollector, path: str) -> None:
    headers, params, method = AUTH_PATHS[path]
    reply = call(tenants.query_endpoint, BY_TENANT if method == "POST" else None, headers=headers, params=params,
                 method=method)
    assert data(reply) == [["acme", 3]]
    leak = call(tenants.query_endpoint, f"SELECT count() FROM spans WHERE SpanAttributes['marker'] = '{SECRET}'",
                headers=headers, params={k: v for k, v in params.items() if k != "query"})
    assert (leak.status, leak.text) == (200, "0\n")


@pytest.mark.parametrize("sql, params, code", [
    # An Identifier parameter names a table: the tree checked is the one with the value in it.
    ("SELECT count() FROM {t:Identifier}", {"param_t": "system.tables"}, "497"),
    ("SELECT * FROM {t:Identifier}", {"param_t": "system.settings"}, "497"),
    ("SELECT count() FROM {t:Identifier}", {"param_t": "`spans\n Identifier x`"}, "497"),
    ("SELECT count() FROM {t:Identifier}", {"param_t": "spans SETTINGS additional_table_filters = {}"}, "497"),
    # A value parameter is a value, never SQL.
    ("SELECT count() FROM spans WHERE TenantId = {t:String}", {"param_t": "globex' OR '1' = '1"}, None),
    # Settings in the URL cannot lift the filter, the limits or read-only.
    ("SELECT count() FROM spans", {"additional_table_filters": "{'spans': '1'}"}, "164"),
    ("SELECT count() FROM spans", {"optimize_move_to_prewhere": "1"}, "164"),
    ("SELECT count() FROM spans", {"optimize_trivial_count_query": "1"}, "164"),
    ("SELECT count() FROM spans", {"max_result_rows": "100000000000"}, "164"),
    ("SELECT count() FROM spans", {"readonly": "0"}, "164"),
    ("SELECT count() FROM spans", {"allow_introspection_functions": "1"}, "164"),
    # Nor can a SETTINGS clause, in the URL's part of the query or the body's.
    ("SETTINGS additional_table_filters = {'spans': '1'}", {"query": "SELECT count() FROM spans"}, "497"),
    ("SELECT count() FROM spans SETTINGS additional_table_filters = {'spans': '1'}", {}, "497"),
    ("SELECT * FROM system.settings", {}, "497"),
    ("SELECT name, value, readonly, description FROM system.settings", {}, "497"),
])
def test_parameters_and_settings_cannot_widen_a_tenant(tenants: RunningCollector, sql: str, params: dict[str, str],
                                                       code: str | None) -> None:
    reply = call(tenants.query_endpoint, sql, key=ACME.key, params=params)
    if code is None:
        assert (reply.status, reply.text) == (200, "0\n")
    else:
        assert reply.header("X-ClickHouse-Exception-Code") == code, reply.text
        assert reply.status == 403


def test_an_identifier_parameter_naming_the_tenants_table_is_filtered(tenants: RunningCollector) -> None:
    reply = call(tenants.query_endpoint, "SELECT count() FROM {t:Identifier}", key=ACME.key,
                 params={"param_t": "spans"})
    assert (reply.status, reply.text) == (200, "3\n")


def test_lowering_a_limit_still_keeps_the_filter(tenants: RunningCollector) -> None:
    reply = call(tenants.query_endpoint, "SELECT TenantId FROM spans", key=ACME.key,
                 params={"max_result_rows": "10", "default_format": "JSONEachRow"})
    assert reply.status == 200 and reply.text == '{"TenantId":"acme"}\n' * 3


def client(tenants: RunningCollector, key: Key, **kwargs: Any) -> Any:
    host, port = tenants.query_endpoint.rsplit(":", 1)
    return clickhouse_connect.get_client(host=host, port=int(port), username=key.tenant, password=key.key, **kwargs)


def test_clickhouse_connect_with_a_tenant_key(tenants: RunningCollector) -> None:
    c = client(tenants, ACME)  # connecting reads version, timezone and system.settings
    assert c.query("SELECT TenantId, count() FROM spans GROUP BY TenantId").result_rows == [("acme", 3)]
    assert c.query("SELECT count() FROM spans WHERE TenantId = {t:String}", parameters={"t": "globex"}) \
        .result_rows == [(0,)]
    with pytest.raises(DatabaseError) as refused:
        c.query("SELECT count() FROM system.tables")
    assert refused.value.code == 497


def test_clickhouse_connect_learns_which_settings_it_may_send(tenants: RunningCollector) -> None:
    c = client(tenants, ACME)
    assert c.server_settings["output_format_json_quote_64bit_integers"].readonly == 0
    assert c.server_settings["additional_table_filters"].readonly == 1
    assert c.server_settings["max_result_rows"].value == "1000000"
    # The client refuses to send a read-only setting itself, before the collector would.
    with pytest.raises(ProgrammingError):
        c.query("SELECT count() FROM spans", settings={"additional_table_filters": {"spans": "1"}})
    c.query("SELECT count() FROM spans", settings={"max_result_rows": 5})


def test_a_tenant_key_cannot_read_the_counters(tenants: RunningCollector) -> None:
    from access_harness import http

    status, _ = http(tenants.query_endpoint, "/stats", key=ACME.key)
    assert status == 403


def test_form_fields_are_checked_like_url_parameters(tenants: RunningCollector) -> None:
    boundary = "f0rm"

    def form(fields: dict[str, str]) -> bytes:
        parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                        for name, value in fields.items())
        return (parts + f"--{boundary}--\r\n").encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-ClickHouse-Key": ACME.key}
    widened = call(tenants.query_endpoint, body=form({"query": "SELECT count() FROM {t:Identifier}",
                                                      "param_t": "system.tables"}), headers=headers)
    assert (widened.status, widened.header("X-ClickHouse-Exception-Code")) == (403, "497")
    confined = call(tenants.query_endpoint, body=form({"query": "SELECT TenantId, count() FROM spans GROUP BY TenantId",
                                                       "additional_table_filters": "{'spans': '1'}"}), headers=headers)
    assert confined.header("X-ClickHouse-Exception-Code") == "164"
    own = call(tenants.query_endpoint, body=form({"query": "SELECT count() FROM spans WHERE TenantId != {t:String}",
                                                  "param_t": "acme"}), headers=headers)
    assert (own.status, own.text) == (200, "0\n")


def test_a_tenant_is_not_told_how_many_rows_were_read(tenants: RunningCollector) -> None:
    # The engine reads globex's rows in the granules it shares with acme's, then filters them out.
    reply = call(tenants.query_endpoint, "SELECT count() AS n FROM spans FORMAT JSON", key=ACME.key)
    doc = json.loads(reply.body)
    assert doc["data"] == [{"n": 3}] and "statistics" not in doc
    summary = json.loads(reply.header("X-ClickHouse-Summary"))
    assert (summary["read_rows"], summary["read_bytes"], summary["total_rows_to_read"]) == ("0", "0", "0")
    assert summary["result_rows"] == "1"
    forced = call(tenants.query_endpoint, "SELECT count() AS n FROM spans FORMAT JSON", key=ACME.key,
                  params={"output_format_write_statistics": "1"})
    assert "statistics" not in json.loads(forced.body)
    probe = call(tenants.query_endpoint, "SELECT count() FROM spans", key=ACME.key, params={"max_rows_to_read": "4"})
    assert probe.header("X-ClickHouse-Exception-Code") == "164"
    admin = json.loads(call(tenants.query_endpoint, "SELECT count() FROM spans WHERE ServiceName != '' FORMAT JSON",
                            key=ADMIN.key).body)
    assert admin["statistics"]["rows_read"] == 8  # an admin sees every tenant anyway


def test_nor_on_the_query_path(tenants: RunningCollector) -> None:
    from access_harness import http

    status, body = http(tenants.query_endpoint, "/query", "SELECT count() FROM spans", key=ACME.key)
    assert status == 200 and json.loads(body)["data"] == [[3]] and "statistics" not in json.loads(body)
