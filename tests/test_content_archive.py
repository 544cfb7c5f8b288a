"""Content by reference through the real collector and embedded store: after retention.content_days, message
content in `spans` becomes a reference and the exact bytes move to genai_content, which only admin keys read,
each read logged in genai_content_access."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import pytest
from access_harness import Key, auth_overrides, export, http
from collector_harness import RunningCollector, start_collector
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector import content_keys
from spanhouse.collector.auth import Principal
from spanhouse.collector.config import ConfigError, RetentionConfig
from spanhouse.collector.query import content as content_mod
from spanhouse.collector.query.tenant_scope import TenantScope
from spanhouse.collector.store import content_archive
from spanhouse.collector.store.content_archive import ContentArchiver

ACME = Key.new("acme")
GLOBEX = Key.new("globex")
ADMIN = Key.new("ops", admin=True)
DAY_NS = 86400 * 10**9
# Content as hostile as OTLP lets it be: quotes, escapes, control characters, other scripts, emoji, a prefix
# that looks like a reference but is not one, JSON in JSON.
PROMPTS = [
    json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Summarise ticket 4711 'now' \\ \"quoted\""}]}]),
    "línea 1\nline 2\ttab \u0000 nul 漢字 🙂",
    "spanhouse:content:sha256:not-a-reference",
    json.dumps({"args": json.dumps({"q": "nested \"json\""})}),
]


def span_request(service: str, days_old: float, attributes: dict[str, str],
                 events: list[tuple[str, dict[str, str]]] = ()) -> tuple[ExportTraceServiceRequest, str, str]:
    """One span `days_old` days back with `attributes` and `events`; (request, trace id hex, span id hex)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = os.urandom(16), os.urandom(8), "chat gpt-4o"
    span.start_time_unix_nano = time.time_ns() - int(days_old * DAY_NS)
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    for key, value in attributes.items():
        attr = span.attributes.add()
        attr.key, attr.value.string_value = key, value
    for name, attrs in events:
        event = span.events.add()
        event.name, event.time_unix_nano = name, span.start_time_unix_nano + 10
        for key, value in attrs.items():
            attr = event.attributes.add()
            attr.key, attr.value.string_value = key, value
    return request, span.trace_id.hex(), span.span_id.hex()


def call_attributes(prompt: str, answer: str) -> dict[str, str]:
    return {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": prompt,
            "gen_ai.output.messages": answer, "gen_ai.system_instructions": "Be brief.",
            "gen_ai.prompt.0.content": f"openllmetry {prompt}", "input.value": f"openinference {answer}",
            "plain.attribute": "stays"}


def send(running: RunningCollector, key: Key, service: str, days_old: float, prompt: str,
         answer: str = "answer") -> tuple[str, str]:
    request, trace_id, span_id = span_request(
        service, days_old, call_attributes(prompt, answer),
        [("gen_ai.user.message", {"content": f"event {prompt}", "role": "user"}),
         ("gen_ai.client.inference.operation.details", {"gen_ai.output.messages": f"details {answer}"}),
         ("exception", {"exception.message": "not content"})])
    export(running.grpc_endpoint, request, metadata=key.metadata)
    return trace_id, span_id


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    with pytest.MonkeyPatch.context() as patch:
        # The collector's own hourly runs stay out of the way: each test runs the archiver when it means to.
        patch.setattr(content_archive, "FIRST_RUN_DELAY_S", 3600.0)
        collector = start_collector(tmp_path_factory.mktemp("content") / "store", **auth_overrides(ACME, GLOBEX, ADMIN),
                                    retention={"content_days": 7, "content_archive_days": 60})
    try:
        yield collector
    finally:
        collector.collector.stop()


def archiver(running: RunningCollector) -> ContentArchiver:
    found = running.collector.content_archiver
    assert found is not None and found.content_days == 7 and found.archive_days == 60
    return found


def span_row(running: RunningCollector, span_id: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    ((attributes, events),) = running.query(
        "SELECT CAST(SpanAttributes, 'Map(String, String)'), CAST(`Events.Attributes`, 'Array(Map(String, String))') "
        "FROM spans WHERE SpanId = {s:String}", {"s": span_id})
    return dict(attributes), [dict(e) for e in events]


CONTENT = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
           "gen_ai.prompt.0.content", "input.value")


def test_old_content_becomes_references_and_the_archive_holds_the_exact_bytes(running: RunningCollector) -> None:
    old = [send(running, ACME, "acme-app", 10, prompt) for prompt in PROMPTS]
    recent = send(running, ACME, "acme-app", 2, PROMPTS[0])
    running.flush()
    before = {span: span_row(running, span) for _, span in old}
    archiver(running).run_once()

    kept_until = {str(d) for (d,) in running.query(
        "SELECT toDate(toDateTime(Timestamp) + toIntervalDay(60), 'UTC') FROM spans WHERE SpanId IN {s:Array(String)}",
        {"s": [s for _, s in old]})}
    for trace_id, span_id in old:
        attributes, events = span_row(running, span_id)
        original_attributes, original_events = before[span_id]
        assert attributes["plain.attribute"] == "stays" and attributes["gen_ai.request.model"] == "gpt-4o"
        assert events[2] == original_events[2]  # an exception event is not content
        pairs = [(key, original_attributes[key], attributes[key]) for key in CONTENT]
        pairs += [("event:gen_ai.user.message:content", original_events[0]["content"], events[0]["content"]),
                  ("event:gen_ai.client.inference.operation.details:gen_ai.output.messages",
                   original_events[1]["gen_ai.output.messages"], events[1]["gen_ai.output.messages"])]
        assert events[0]["role"] == "user"
        archived = {key: (content, sha) for key, content, sha in running.query(
            "SELECT Key, Content, Sha256 FROM genai_content FINAL WHERE SpanId = {s:String} AND TraceId = {t:String} "
            "AND TenantId = 'acme'", {"s": span_id, "t": trace_id})}
        for key, original, now in pairs:
            sha = hashlib.sha256(original.encode("utf-8")).hexdigest()
            parsed = content_keys.parse_reference(now)
            assert parsed is not None, (key, now)
            assert parsed[0] == sha and parsed[1] in kept_until
            assert archived[key] == (original, sha)
    # A span younger than content_days keeps its content.
    attributes, events = span_row(running, recent[1])
    assert attributes["gen_ai.input.messages"] == PROMPTS[0] and events[0]["content"] == f"event {PROMPTS[0]}"


def test_a_second_run_changes_nothing(running: RunningCollector) -> None:
    send(running, ACME, "acme-app", 9, "second run")
    running.flush()
    archiver(running).run_once()
    spans = running.query("SELECT SpanId, SpanAttributes, `Events.Attributes` FROM spans ORDER BY SpanId")
    archive = running.query("SELECT count(), sum(cityHash64(Content, Sha256, Key, SpanId)) FROM genai_content")
    assert archiver(running).run_once() == []
    assert running.query("SELECT SpanId, SpanAttributes, `Events.Attributes` FROM spans ORDER BY SpanId") == spans
    assert running.query("SELECT count(), sum(cityHash64(Content, Sha256, Key, SpanId)) FROM genai_content") == archive


def test_a_crash_between_copy_and_rewrite_loses_nothing(running: RunningCollector) -> None:
    _, span_id = send(running, GLOBEX, "globex-app", 12, "crash before the rewrite")
    running.flush()
    archiver(running).run_once(copy_only=True)  # what a crash right after the copy leaves
    attributes, _ = span_row(running, span_id)
    assert attributes["gen_ai.input.messages"] == "crash before the rewrite"
    copied = running.query("SELECT Key, Content FROM genai_content WHERE SpanId = {s:String}", {"s": span_id})
    assert ("gen_ai.input.messages", "crash before the rewrite") in copied and len(copied) == 7
    archiver(running).run_once()
    attributes, _ = span_row(running, span_id)
    assert content_keys.parse_reference(attributes["gen_ai.input.messages"]) is not None
    assert running.query("SELECT count() FROM genai_content FINAL WHERE SpanId = {s:String}", {"s": span_id}) \
        == [(7,)]


def test_the_rewrite_never_replaces_content_the_archive_lacks(running: RunningCollector) -> None:
    # A span that arrives (late) between the copy and the rewrite: the rewrite alone must leave it alone.
    _, span_id = send(running, ACME, "acme-app", 11, "arrived after the copy")
    running.flush()
    found = archiver(running)
    ((partition,),) = running.query("SELECT _partition_id FROM spans WHERE SpanId = {s:String}", {"s": span_id})
    found._rewrite(found._params(partition, found.cutoff(time.time())))
    attributes, events = span_row(running, span_id)
    assert attributes["gen_ai.input.messages"] == "arrived after the copy"
    assert events[0]["content"] == "event arrived after the copy"
    found.run_once()
    assert content_keys.parse_reference(span_row(running, span_id)[0]["gen_ai.input.messages"]) is not None


def test_work_per_run_is_bounded_and_later_runs_finish_it(running: RunningCollector) -> None:
    spans = [send(running, ACME, "acme-app", 8, f"bounded {i}")[1] for i in range(3)]
    running.flush()
    small = ContentArchiver(running.collector.store, 7, 60, max_values_per_run=5)
    first = small.run_once()
    assert sum(r.archived for r in first) == 5 and small.values_pending == 3 * 7 - 5
    runs = 1
    while small.values_pending and runs < 10:
        small.run_once()
        runs += 1
    assert small.values_pending == 0 and runs == 5  # 21 values, 5 a run
    for span_id in spans:
        attributes, _ = span_row(running, span_id)
        assert all(content_keys.parse_reference(attributes[key]) for key in CONTENT)


def rows(running: RunningCollector, key: Key, sql: str) -> tuple[int, Any]:
    status, body = http(running.query_endpoint, "/query", sql, key=key.key)
    return status, (json.loads(body)["data"] if status == 200 else body)


@pytest.mark.parametrize("sql", [
    "SELECT Content FROM genai_content",
    "SELECT count() FROM default.genai_content",
    "SELECT Content FROM `genai_content` AS g WHERE TenantId = 'acme'",
    "SELECT (SELECT any(Content) FROM genai_content)",
    "SELECT count() FROM spans WHERE SpanId IN (SELECT SpanId FROM genai_content)",
    "SELECT count() FROM spans AS s JOIN genai_content AS g ON s.SpanId = g.SpanId",
    "SELECT * FROM (SELECT * FROM genai_content) LIMIT 1",
    "SELECT * FROM spans UNION ALL SELECT * FROM genai_content",
    "SELECT * FROM genai_content_access",
])
def test_a_tenant_key_cannot_read_the_archive(running: RunningCollector, sql: str) -> None:
    status, body = rows(running, ACME, sql)
    assert status == 403, body
    assert "only admin keys may read it" in body and "crash before" not in body


@pytest.mark.parametrize("sql, reason", [
    ("SELECT * FROM merge(currentDatabase(), '^genai_content$')", "table function merge() is not available"),
    ("SELECT * FROM view(SELECT * FROM genai_content)", "table function view()"),
    ("SELECT * FROM remote('127.0.0.1', currentDatabase(), 'genai_content')", "table function remote()"),
    ("SELECT count() FROM spans WHERE (TenantId, SpanId) IN genai_content", "`IN table_name` is not available"),
    ("SELECT count() FROM genai_content SETTINGS additional_table_filters = {}", "only admin keys may read it"),
])
def test_a_tenant_key_cannot_reach_the_archive_another_way(running: RunningCollector, sql: str, reason: str) -> None:
    status, body = rows(running, ACME, sql)
    assert status == 403, body
    assert reason in body


def test_a_view_over_the_archive_is_no_tenant_table(running: RunningCollector) -> None:
    store = running.collector.store
    store.command("CREATE VIEW IF NOT EXISTS v_archive AS SELECT TenantId, Content FROM genai_content")
    try:
        tables = TenantScope(store).tables()
        assert "v_archive" not in tables and "genai_content" not in tables and "spans" in tables
    finally:
        store.command("DROP VIEW IF EXISTS v_archive")


def access_rows(running: RunningCollector, path: str) -> list[tuple[Any, ...]]:
    return running.query("SELECT TenantId, Caller, CallerTenant, Admin, TraceId, SpanId, Key, Sha256, Statement "
                         "FROM genai_content_access WHERE Path = {p:String} ORDER BY Timestamp", {"p": path})


def test_an_admins_sql_on_the_archive_runs_and_is_logged(running: RunningCollector) -> None:
    before = len(access_rows(running, "sql"))
    status, data = rows(running, ADMIN, "SELECT count() > 0 FROM genai_content WHERE TenantId = 'globex'")
    assert status == 200 and data == [[True]]
    logged = access_rows(running, "sql")
    assert len(logged) == before + 1
    assert logged[-1][1:4] == ("ops-key", "ops", 1) and "genai_content" in logged[-1][8]
    # A statement that does not touch the archive is not logged.
    assert rows(running, ADMIN, "SELECT count() FROM spans")[0] == 200
    assert len(access_rows(running, "sql")) == before + 1


def test_clickhouse_clients_meet_the_same_rules_and_the_same_log(running: RunningCollector) -> None:
    host, port = running.query_endpoint.rsplit(":", 1)
    tenant = clickhouse_connect.get_client(host=host, port=int(port), username="acme", password=ACME.key)
    with pytest.raises(Exception, match="only admin keys may read it"):
        tenant.query("SELECT Content FROM genai_content WHERE SpanId = {s:String}", parameters={"s": "x"})
    admin = clickhouse_connect.get_client(host=host, port=int(port), username="ops", password=ADMIN.key)
    before = len(access_rows(running, "sql"))
    assert admin.query("SELECT count() > 0 FROM genai_content").result_rows == [(True,)]
    logged = access_rows(running, "sql")
    assert len(logged) == before + 1 and logged[-1][1] == "ops-key"


def ui_trace(running: RunningCollector, key: Key, trace_id: str) -> dict[str, Any]:
    status, body = http(running.query_endpoint, f"/ui/api/trace/{trace_id}", key=key.key)
    assert status == 200, body
    return json.loads(body)


def test_the_trace_page_shows_archived_content_to_admins_only_and_logs_each_read(running: RunningCollector) -> None:
    trace_id, span_id = send(running, ACME, "acme-app", 10, "the ui prompt", "the ui answer")
    running.flush()
    archiver(running).run_once()
    before = len(access_rows(running, "ui"))

    tenant_view = ui_trace(running, ACME, trace_id)
    (span,) = tenant_view["spans"]
    assert "the ui prompt" not in json.dumps(tenant_view)
    assert content_keys.parse_reference(span["attributes"]["gen_ai.input.messages"]) is not None
    notes = [p for m in span["messages"] for p in m["parts"]]
    assert notes and all(p["type"] == "archived" and p["content"].startswith("archived, ask an admin")
                         for p in notes)
    assert len(access_rows(running, "ui")) == before  # a tenant read nothing from the archive

    admin_view = ui_trace(running, ADMIN, trace_id)
    (span,) = admin_view["spans"]
    assert span["attributes"]["gen_ai.input.messages"] == "the ui prompt"
    assert span["attributes"]["plain.attribute"] == "stays"
    texts = [p.get("content") for m in span["messages"] for p in m["parts"]]
    assert "the ui prompt" in texts and "the ui answer" in texts and "Be brief." in texts
    logged = access_rows(running, "ui")[before:]
    assert {(r[0], r[1], r[3], r[4], r[5]) for r in logged} == {("acme", "ops-key", 1, trace_id, span_id)}
    assert {r[6] for r in logged} == {*CONTENT, "event:gen_ai.user.message:content",
                                      "event:gen_ai.client.inference.operation.details:gen_ai.output.messages"}
    archived = dict(running.query("SELECT Sha256, Content FROM genai_content WHERE SpanId = {s:String}",
                                  {"s": span_id}))
    assert all(hashlib.sha256(archived[r[7]].encode()).hexdigest() == r[7] for r in logged)


def test_resolve_puts_back_content_in_rows_of_any_shape_for_an_export(running: RunningCollector) -> None:
    trace_id, span_id = send(running, GLOBEX, "globex-app", 10, "exported prompt")
    running.flush()
    original = span_row(running, span_id)
    archiver(running).run_once()
    attributes, events = span_row(running, span_id)
    assert attributes != original[0]
    rows_in = [{"TenantId": "globex", "TraceId": trace_id, "SpanId": span_id, "SpanAttributes": attributes,
                "Events.Attributes": events},
               {"only": (attributes["gen_ai.input.messages"], 1)}]  # no span named: found by its hash
    policy = running.collector.query_server._server.policy
    before = len(access_rows(running, "export"))
    out = content_mod.resolve_archived(rows_in, policy, Principal("globex", admin=True, name="auditor"), "export")
    assert out[0]["SpanAttributes"] == original[0] and out[0]["Events.Attributes"] == original[1]
    assert out[1] == {"only": ("exported prompt", 1)}
    assert rows_in[0]["SpanAttributes"] == attributes  # the caller's rows are not changed
    logged = access_rows(running, "export")[before:]
    assert len(logged) == 8 and {r[1] for r in logged} == {"auditor"} and {r[0] for r in logged} == {"globex"}


def test_resolve_leaves_references_for_tenant_keys_and_checks_the_path(running: RunningCollector) -> None:
    reference = "spanhouse:content:sha256:" + "0" * 64 + ";kept-until:2030-01-01"
    row = [{"SpanId": "x", "Attributes": {"gen_ai.input.messages": reference}}]
    policy = running.collector.query_server._server.policy
    assert content_mod.resolve_archived(row, policy, Principal("acme"), "export") is row
    with pytest.raises(ValueError, match="path must be one of ui, export, cli, sql"):
        content_mod.resolve_archived(row, policy, Principal("", admin=True), "web")
    # An admin's reference to content that is gone stays a reference, and no read is logged.
    before = len(access_rows(running, "export"))
    assert content_mod.resolve_archived(row, policy, Principal("", admin=True), "export") == row
    assert len(access_rows(running, "export")) == before


def test_counters_reach_stats_and_metrics(running: RunningCollector) -> None:
    send(running, ACME, "acme-app", 10, "a counted prompt")  # 7 content values, whichever test ran before
    running.flush()
    archiver(running).run_once()
    status, body = http(running.query_endpoint, "/stats", key=ADMIN.key)
    stats = json.loads(body)
    assert status == 200 and stats["content_archived_total"] >= 7 and stats["content_referenced_total"] >= 7
    assert stats["content_archived_total"] == archiver(running).values_archived_total
    status, body = http(running.query_endpoint, "/metrics", key=ADMIN.key)
    assert status == 200
    line = next(line for line in body.splitlines() if line.startswith("spanhouse_content_archived_total "))
    assert float(line.split()[1]) == stats["content_archived_total"]


@pytest.mark.parametrize("values, message", [
    ({"content_days": 7, "content_archive_days": 3}, "retention.content_archive_days: 3 is less than"),
    ({"content_days": -1}, "retention.content_days: must be 0 (never replace content) or a number of days"),
    ({"content_archive_days": -5}, "retention.content_archive_days: must be 0 (keep forever)"),
    ({"content_access_days": -1}, "retention.content_access_days: must be 0 (keep forever)"),
])
def test_bad_retention_is_refused_naming_the_option(values: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetentionConfig(**values).validate()


@pytest.mark.parametrize("values", [{}, {"content_days": 0}, {"content_days": 7, "content_archive_days": 0},
                                    {"content_days": 30, "content_archive_days": 30}])
def test_retention_values_that_make_sense_are_accepted(values: dict[str, int]) -> None:
    RetentionConfig(**values).validate()


def test_the_content_key_table_covers_every_dialect() -> None:
    for key in ("gen_ai.input.messages", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
                "gen_ai.prompt.3.content", "gen_ai.completion.0.content", "llm.input_messages.2.message.content",
                "llm.output_messages.0.message.contents.1.message_content.text", "input.value", "output.value",
                "gen_ai.prompt", "traceloop.entity.input"):
        assert content_keys.is_content_key(key), key
    for key in ("gen_ai.prompt.0.role", "gen_ai.request.model", "llm.input_messages.0.message.role", "content",
                "gen_ai.input.messages.extra", "xgen_ai.prompt"):
        assert not content_keys.is_content_key(key), key
    assert content_keys.is_content_key("content", "gen_ai.user.message")
    assert not content_keys.is_content_key("content", "exception")
    assert content_keys.parse_reference("spanhouse:content:sha256:" + "a" * 64 + ";kept-until:forever")
    assert content_keys.parse_reference("spanhouse:content:sha256:" + "a" * 63 + ";kept-until:forever") is None
    assert dt.date.fromisoformat("2030-01-01")  # kept-until dates are ISO dates


def test_the_archive_and_its_access_log_expire_by_their_own_retention(running: RunningCollector) -> None:
    engines = dict(running.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
                                 "AND name IN ('genai_content', 'genai_content_access')"))
    assert "TTL toDateTime(Timestamp) + toIntervalDay(60)" in engines["genai_content"]
    assert "TTL toDateTime(Timestamp) + toIntervalDay(400)" in engines["genai_content_access"]


def test_content_moves_when_the_clock_passes_content_days(running: RunningCollector) -> None:
    # Last in this module: the clock moved ahead archives every span younger than that too.
    _, span_id = send(running, GLOBEX, "globex-app", 2, "two days old")
    running.flush()
    archiver(running).run_once(now=time.time() + 4.9 * 86400)  # 6.9 days after the span: not yet
    assert span_row(running, span_id)[0]["gen_ai.input.messages"] == "two days old"
    archiver(running).run_once(now=time.time() + 5.1 * 86400)  # 7.1 days after it
    parsed = content_keys.parse_reference(span_row(running, span_id)[0]["gen_ai.input.messages"])
    assert parsed is not None and parsed[0] == hashlib.sha256(b"two days old").hexdigest()


def test_spanhouse_export_gives_archived_content_to_admin_keys_only(
        running: RunningCollector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from spanhouse.collector import cli

    trace_id, span_id = send(running, ACME, "acme-app", 10, "an exported prompt", "an exported answer")
    running.flush()
    archiver(running).run_once()
    assert content_keys.parse_reference(span_row(running, span_id)[0]["gen_ai.input.messages"]) is not None

    def export_as(key: Key, fmt: str) -> list[dict[str, Any]]:
        monkeypatch.setenv("SPANHOUSE_API_KEY", key.key)
        capsys.readouterr()
        code = cli.main(["export", "--query-endpoint", running.query_endpoint, "--store", running.store_url,
                         "--quiet", "--trace-id", trace_id, "--format", fmt])
        out, err = capsys.readouterr()
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    before = len(access_rows(running, "export"))
    (tenant_record,) = export_as(ACME, "records")
    assert "an exported prompt" not in json.dumps(tenant_record)
    assert "spanhouse:content:sha256:" in json.dumps(tenant_record)
    assert len(access_rows(running, "export")) == before  # a tenant key read nothing from the archive

    (admin_record,) = export_as(ADMIN, "records")
    assert "an exported prompt" in json.dumps(admin_record) and "an exported answer" in json.dumps(admin_record)
    assert "spanhouse:content:sha256:" not in json.dumps(admin_record)
    (admin_trace,) = export_as(ADMIN, "otlp-json")
    assert "an exported prompt" in json.dumps(admin_trace)
    logged = access_rows(running, "export")[before:]
    assert logged and {(r[0], r[1], r[4], r[5]) for r in logged} == {("acme", "ops-key", trace_id, span_id)}
