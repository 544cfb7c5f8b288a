"""Alerts through a real running collector: a credential in an exported span reaches a real webhook
within 10 s of the export's OK (one process, and worker processes), a hanging webhook does not slow
ingestion, and `spanhouse alerts` lists what was recorded, through the collector and from the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from access_harness import export, span_request
from alerts_helpers import Webhook, webhook
from collector_harness import RunningCollector, start_collector

SECRET = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"
DEADLINE_S = 10.0


def alerting_collector(path: Path, hook: Webhook, **overrides: Any) -> RunningCollector:
    alerts = {"webhook_url": hook.url, "retry_initial_s": 0.1, "retry_max_s": 0.5, "interval_s": 3600,
              **overrides.pop("alerts", {})}
    return start_collector(path, alerts=alerts, **overrides)


def secret_request(service: str, span_name: str = "chat gpt-4o") -> Any:
    request = span_request(service, 3, attributes={"note": "harmless"})
    span = request.resource_spans[0].scope_spans[0].spans[1]
    span.name = span_name
    attr = span.attributes.add()
    attr.key, attr.value.string_value = "gen_ai.prompt", f"use this key: {SECRET} thanks"
    return request


def secret_alerts(received: list) -> list[dict[str, Any]]:
    return [a for r in received for a in r.json()["alerts"] if a["labels"]["alertname"] == "secret_detected"]


def spanhouse(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANHOUSE_")}
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("processes", [1, 2])
def test_secret_alert_arrives_within_10s_of_the_exports_ok(tmp_path: Path, processes: int) -> None:
    with webhook() as hook:
        running = alerting_collector(tmp_path / "store", hook, receiver={"processes": processes})
        try:
            # PII is redacted too, but is not a credential: no alert for it.
            export(running.grpc_endpoint, span_request("billing-bot", 1, {"user": "jane.doe@example.com"}))
            request = secret_request("billing-bot")
            trace_id = request.resource_spans[0].scope_spans[0].spans[1].trace_id.hex()
            export(running.grpc_endpoint, request)
            ok_at = time.monotonic()
            got = hook.wait_for(lambda r: bool(secret_alerts(r)), timeout_s=DEADLINE_S)
            latency = next(r.at for r in got if secret_alerts([r])) - ok_at
            print(f"secret alert latency with receiver.processes={processes}: {latency * 1000:.0f} ms")
            assert latency < DEADLINE_S
            (alert,) = secret_alerts(got)
            assert alert["status"] == "firing"
            assert alert["labels"] == {"alertname": "secret_detected", "severity": "critical", "tenant": "default",
                                       "service": "billing-bot", "rule": "openai_api_key"}
            assert alert["annotations"]["trace_id"] == trace_id
            assert SECRET not in json.dumps([r.json() for r in got])  # the value itself is never sent

            export(running.grpc_endpoint, secret_request("billing-bot"))  # the same alert again: deduplicated
            running.flush()
            recorded = running.query("SELECT AlertName, Event, TenantId, Labels['service'] FROM alerts "
                                     "WHERE AlertName = 'secret_detected'")
            assert recorded == [("secret_detected", "fired", "default", "billing-bot")]
            assert len(secret_alerts(hook.received)) == 1
            # The e-mail was found and redacted (so the missing alert for it means something).
            assert running.query("SELECT count() FROM spans WHERE SpanAttributes['spanhouse.redaction.rules'] = "
                                 "'email'") == [(1,)]
            assert SECRET not in str(running.query("SELECT * FROM alerts"))
        finally:
            running.collector.stop()


def test_a_hanging_webhook_does_not_slow_ingestion_and_alerts_list_from_cli(tmp_path: Path) -> None:
    with webhook() as hook:
        hook.hang.set()  # every POST is held open and never answered
        running = alerting_collector(tmp_path / "store", hook, alerts={"webhook_timeout_s": 30})
        try:
            hostile = "svc\"'\n<script>alert(1)</script>"
            started = time.monotonic()
            for i in range(20):
                export(running.grpc_endpoint, secret_request(f"svc-{i}" if i else hostile))
            for _ in range(20):
                export(running.grpc_endpoint, span_request("plain", 50))
            running.flush()
            elapsed = time.monotonic() - started
            assert running.query("SELECT count() FROM spans WHERE ServiceName = 'plain'") == [(1000,)]
            assert elapsed < 20, f"ingestion took {elapsed:.1f} s with a hanging webhook"
            deadline = time.monotonic() + DEADLINE_S
            while running.query("SELECT count() FROM alerts")[0][0] < 20:
                assert time.monotonic() < deadline, "secret alerts were not recorded while the webhook hung"
                time.sleep(0.05)
            counters = running.collector.counters()
            assert counters["alerts_notifications_sent_total"] == 0 and counters["alerts_firing"] == 20

            listed = spanhouse("alerts", "--firing", "--format", "json", "--query-endpoint", running.query_endpoint)
            assert listed.returncode == 0, listed.stderr
            rows = json.loads(listed.stdout)
            assert len(rows) == 20 and {r["status"] for r in rows} == {"firing"}
            assert hostile in {r["labels"]["service"] for r in rows}
            assert "answered by the collector" in listed.stderr
            table = spanhouse("alerts", "--query-endpoint", running.query_endpoint, "--quiet")
            assert table.returncode == 0 and table.stdout.count("secret_detected") == 20
        finally:
            stopping = time.monotonic()
            running.collector.stop()
            assert time.monotonic() - stopping < 15, "stop waited for the hanging webhook"
        # With the collector stopped, the same command reads the store itself.
        stored = spanhouse("alerts", "--store", running.store_url, "--query-endpoint", "", "--format", "jsonl",
                           "--since", "1h")
        assert stored.returncode == 0, stored.stderr
        assert len(stored.stdout.splitlines()) == 20
        none = spanhouse("alerts", "--store", running.store_url, "--query-endpoint", "", "--since", "1h",
                         "--tenant", "nobody", "--format", "json")
        assert json.loads(none.stdout) == []


def test_a_tenant_key_reads_only_its_own_alerts(tmp_path: Path) -> None:
    from access_harness import Key, auth_overrides, http

    from spanhouse.collector.query.queries import render

    acme, globex, admin = Key.new("acme"), Key.new("globex"), Key.new("ops", admin=True)
    with webhook() as hook:
        running = alerting_collector(tmp_path / "store", hook, retention={"alerts_days": 90},
                                     **auth_overrides(acme, globex, admin))
        try:
            ((engine,),) = running.query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
                                         "AND name = 'alerts'")
            assert "TTL toDateTime(Timestamp) + toIntervalDay(90)" in engine  # retention.alerts_days
            export(running.grpc_endpoint, secret_request("acme-app"), metadata=acme.metadata)
            export(running.grpc_endpoint, secret_request("globex-app"), metadata=globex.metadata)
            hook.wait_for(lambda r: len(secret_alerts(r)) == 2, timeout_s=DEADLINE_S)
            deadline = time.monotonic() + DEADLINE_S
            while running.query("SELECT count() FROM alerts")[0][0] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            import datetime as dt

            now = dt.datetime.now(dt.UTC)
            sql = render("alerts", since=now - dt.timedelta(hours=1), until=now + dt.timedelta(minutes=1), tenant="",
                         firing_only=0, limit=100)
            seen = {}
            for key in (acme, globex, admin):
                status, body = http(running.query_endpoint, "/query", f"SELECT tenant FROM ({sql})", key=key.key)
                assert status == 200, body
                seen[key.tenant] = sorted(row[0] for row in json.loads(body)["data"])
            assert seen == {"acme": ["acme"], "globex": ["globex"], "ops": ["acme", "globex"]}
        finally:
            running.collector.stop()


def test_pipeline_alerts_fire_while_the_store_is_down_and_resolve_after(tmp_path: Path) -> None:
    from faults import GatedSink

    from spanhouse.collector.writer import ClickHouseSink

    gates: list[GatedSink] = []

    def gated(store: Any) -> GatedSink:
        gates.append(GatedSink(ClickHouseSink(store)))
        return gates[0]

    def pipeline_alerts(received: list, status: str) -> set[str]:
        return {a["labels"]["problem"] for r in received for a in r.json()["alerts"]
                if a["labels"]["alertname"] == "pipeline" and a["status"] == status}

    with webhook() as hook:
        running = alerting_collector(
            tmp_path / "store", hook, sink_factory=gated,
            alerts={"interval_s": 0.2, "pipeline": {"insert_failing_s": 1.0, "spool_high_water_pct": 1.0}},
            spool={"max_size_mib": 1}, writer={"retry_initial_s": 0.05, "retry_max_s": 0.2})
        try:
            gates[0].closed = True  # the store is unreachable: every insert fails
            for _ in range(5):
                export(running.grpc_endpoint, span_request("busy", 200, attributes={"payload": "x" * 200}))
            hook.wait_for(lambda r: pipeline_alerts(r, "firing") >= {"inserts_failing", "spool_high_water"},
                          timeout_s=20)
            firing = [a for r in hook.received for a in r.json()["alerts"] if a["labels"]["alertname"] == "pipeline"]
            assert all("tenant" not in a["labels"] and a["labels"]["severity"] == "critical" for a in firing)
            gates[0].closed = False  # the store is back: the spool drains, inserts succeed
            running.flush()
            hook.wait_for(lambda r: pipeline_alerts(r, "resolved") >= {"inserts_failing", "spool_high_water"},
                          timeout_s=20)
            assert running.query("SELECT count() FROM spans WHERE ServiceName = 'busy'") == [(1000,)]
        finally:
            running.collector.stop()
