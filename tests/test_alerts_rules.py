"""Each built-in alert rule fires and resolves on crafted rows in a real embedded store, on a fake clock.

Rows go into genai_calls with chosen timestamps; the store's materialized views fill the rollups and
trace_costs the rules read, exactly as ingestion does. `now` is passed to every evaluation.
"""

from __future__ import annotations

import json

import pytest

from spanhouse.collector.alerts.config import AlertsConfig, TraceBudget
from spanhouse.collector.alerts.engine import AlertEngine
from spanhouse.collector.alerts.rules import PipelineWatch, SecretHit
from spanhouse.collector.store import Store

from alerts_helpers import call, insert_calls, recording

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15 08:00 UTC); every row is placed relative to it
HOUR = 3600.0


def config(**sections: dict) -> AlertsConfig:
    cfg = AlertsConfig()
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(cfg, name), key, value)
    cfg.validate()
    return cfg


def history(store: Store) -> list[tuple]:
    return store.query_rows("SELECT AlertName, Event, Status, TenantId, Labels FROM alerts ORDER BY Timestamp, Event, "
                            "Fingerprint")


def steady_spend(store: Store, service: str, per_hour: float, tenant: str = "acme") -> None:
    """`per_hour` USD every hour of the 24 h before the last hour, spread over 4 calls an hour."""
    insert_calls(store, [call(NOW - HOUR - 60 - h * HOUR - q * 900, tenant=tenant, service=service, cost=per_hour / 4)
                         for h in range(24) for q in range(4)])


def test_cost_spike_fires_per_service_and_tenant_and_resolves_when_the_hour_passes(store: Store) -> None:
    steady_spend(store, "chat", per_hour=1.0)
    steady_spend(store, "quiet", per_hour=0.01)
    insert_calls(store, [call(NOW - 600 - i, service="chat", cost=0.5) for i in range(6)])  # $3 in the last hour
    insert_calls(store, [call(NOW - 600, service="quiet", cost=0.2)])  # 20x its average, but under the floor
    engine = AlertEngine(config(cost_spike={"min_cost_usd": 1.0}), store)
    seen = recording(engine)

    engine.evaluate(NOW)
    fired = {tuple(sorted(n.labels.items())): n for e, n in seen.of("cost_spike") if e == "fired"}
    assert set(fired) == {
        (("alertname", "cost_spike"), ("scope", "service"), ("service", "chat"), ("severity", "warning"),
         ("tenant", "acme")),
        (("alertname", "cost_spike"), ("scope", "tenant"), ("severity", "warning"), ("tenant", "acme")),
    }
    service_alert = next(n for n in fired.values() if n.labels["scope"] == "service")
    assert service_alert.annotations["cost_last_hour_usd"] == "3.000000"
    assert service_alert.annotations["baseline_hourly_usd"] == "1.000000"
    assert "3.0x" in service_alert.annotations["summary"]

    seen.clear()
    engine.evaluate(NOW + 60)  # still the same spike: nothing new is sent
    assert seen.events == []
    engine.evaluate(NOW + 2 * HOUR)  # the expensive hour is now baseline
    assert sorted(e for e, _ in seen.of("cost_spike")) == ["resolved", "resolved"]
    assert all(n.status == "resolved" and n.ends_at == NOW + 2 * HOUR for _, n in seen.events)
    assert [(r[1], r[2]) for r in history(store)] == [("fired", "firing")] * 2 + [("resolved", "resolved")] * 2


def test_cost_spike_is_not_fired_by_steady_spend_or_below_the_factor(store: Store) -> None:
    steady_spend(store, "chat", per_hour=2.0)
    insert_calls(store, [call(NOW - 600, service="chat", cost=3.9)])  # 1.95x the average: under factor 2
    engine = AlertEngine(config(), store)
    seen = recording(engine)
    engine.evaluate(NOW)
    assert seen.events == []


def test_error_spike_fires_over_min_calls_and_resolves(store: Store) -> None:
    # Baseline: 2 % errors over the day before.
    insert_calls(store, [call(NOW - HOUR - i * 300, service="chat", error=i % 50 == 0) for i in range(250)])
    # Last 15 min: 10 of 30 calls failed (33 %); another service fails 5 of 5 (under min_calls).
    insert_calls(store, [call(NOW - 30 - i * 20, service="chat", error=i < 10) for i in range(30)])
    insert_calls(store, [call(NOW - 30 - i, service="tiny", error=True) for i in range(5)])
    engine = AlertEngine(config(error_spike={"min_calls": 20}), store)
    seen = recording(engine)
    engine.evaluate(NOW)
    fired = [n for e, n in seen.of("error_spike") if e == "fired"]
    assert {(n.labels["scope"], n.labels.get("service")) for n in fired} == {("service", "chat"), ("tenant", None)}
    chat = next(n for n in fired if n.labels.get("service") == "chat")
    assert chat.annotations["calls"] == "30" and chat.annotations["errors"] == "10"
    assert float(chat.annotations["baseline_error_rate"]) == pytest.approx(0.02, abs=0.001)
    seen.clear()
    engine.evaluate(NOW + 1200)  # the failing window has passed
    assert sorted(e for e, _ in seen.of("error_spike")) == ["resolved", "resolved"]


def test_trace_budget_by_service_duration_and_agent_cost(store: Store) -> None:
    slow, costly, fine = "a" * 32, "b" * 32, "c" * 32
    insert_calls(store, [
        call(NOW - 120, service="support", trace_id=slow, duration_s=5),
        call(NOW - 60, service="support", trace_id=slow, duration_s=50),  # trace spans 110 s
        call(NOW - 100, service="research", trace_id=costly, agent="planner", cost=4.0, operation="chat"),
        call(NOW - 100, service="support", trace_id=fine, duration_s=1, cost=0.1),
    ])
    budgets = [TraceBudget(service="support", max_duration_s=60), TraceBudget(agent="planner", max_cost_usd=2.5)]
    engine = AlertEngine(config(trace_budget={"budgets": budgets, "lookback_s": 900}), store)
    seen = recording(engine)
    engine.evaluate(NOW)
    fired = {n.labels.get("service") or n.labels.get("agent"): n for e, n in seen.of("trace_budget")}
    assert set(fired) == {"support", "planner"}
    assert fired["support"].labels["budget"] == "duration" and fired["support"].annotations["trace_id"] == slow
    assert fired["planner"].labels["budget"] == "cost" and fired["planner"].annotations["trace_id"] == costly
    assert "110.0 s" in fired["support"].annotations["summary"]
    seen.clear()
    engine.evaluate(NOW + 1000)  # both traces left the lookback window
    assert sorted(e for e, _ in seen.of("trace_budget")) == ["resolved", "resolved"]


def test_budgets_are_validated_with_the_entry_named() -> None:
    from spanhouse.collector.config import ConfigError, load

    with pytest.raises(ConfigError, match=r"alerts\.trace_budget\.budgets\[1\]: set max_duration_s or max_cost_usd"):
        load(None, environ={}, overrides={"alerts": {"trace_budget": {"budgets": [
            {"service": "a", "max_cost_usd": 1}, {"agent": "b"}]}}})
    with pytest.raises(ConfigError, match=r"alerts\.webhook_format: expected one of alertmanager, slack"):
        load(None, environ={"SPANHOUSE_ALERTS__WEBHOOK_FORMAT": "teams"})
    with pytest.raises(ConfigError, match=r"alerts\.webhook_url: expected an http:// or https:// URL"):
        load(None, environ={"SPANHOUSE_ALERTS__WEBHOOK_URL": "ftp://example.com/x"})
    with pytest.raises(ConfigError, match=r"alerts\.cost_spike\.factor: must be greater than 0"):
        load(None, environ={}, overrides={"alerts": {"cost_spike": {"factor": 0}}})
    with pytest.raises(ConfigError, match=r"alerts\.cost_spike\.factr: unknown option \(did you mean "
                                          r"alerts\.cost_spike\.factor\?\)"):
        load(None, environ={}, overrides={"alerts": {"cost_spike": {"factr": 3}}})
    assert load(None, environ={"SPANHOUSE_ALERTS__WEBHOOK_URL": "https://hooks.example/x"}).alerts.webhook_url == \
        "https://hooks.example/x"


def test_repeat_interval_renotifies_and_dedup_keeps_one_alert(store: Store) -> None:
    engine = AlertEngine(config(secret_detected={"hold_s": 600}), store)
    engine.config.repeat_interval_s = 300
    seen = recording(engine)
    hit = SecretHit("acme", "chat", "1" * 32, "2" * 16, "llm call", ("openai_api_key",))
    engine.handle_secrets([hit], NOW)
    engine.handle_secrets([hit, hit], NOW + 10)  # the same alert: deduplicated, not sent again
    assert [e for e, _ in seen.events] == ["fired"]
    assert len(engine.states) == 1
    other_trace = SecretHit("acme", "chat", "3" * 32, "4" * 16, "llm call", ("openai_api_key",))
    engine.handle_secrets([other_trace], NOW + 301)  # past repeat_interval_s: sent again, naming the new trace
    assert [e for e, _ in seen.events] == ["fired", "renotified"]
    assert seen.events[-1][1].annotations["trace_id"] == "3" * 32
    assert seen.events[0][1].fingerprint == seen.events[-1][1].fingerprint
    engine.evaluate(NOW + 500)  # 199 s after the last hit: still firing
    assert len(seen.events) == 2
    engine.evaluate(NOW + 301 + 600)
    assert [e for e, _ in seen.events] == ["fired", "renotified", "resolved"]
    assert [r[1] for r in history(store)] == ["fired", "renotified", "resolved"]


def test_secret_alert_names_rule_tenant_service_and_trace_and_one_alert_per_rule(store: Store) -> None:
    engine = AlertEngine(config(), store)
    seen = recording(engine)
    engine.handle_secrets([SecretHit("acme", "chat", "f" * 32, "e" * 16, "call", ("aws_access_key_id", "jwt"))], NOW)
    assert {n.labels["rule"] for _, n in seen.events} == {"aws_access_key_id", "jwt"}
    for _, note in seen.events:
        assert note.labels["tenant"] == "acme" and note.labels["service"] == "chat"
        assert note.annotations["trace_id"] == "f" * 32 and note.labels["severity"] == "critical"


def test_hostile_values_survive_sql_json_and_history_exactly(store: Store) -> None:
    hostile = "x'); DROP TABLE alerts; --\n<script>alert(1)</script> \"q\" \\ \u2028 é"
    insert_calls(store, [call(NOW - 60, service=hostile, tenant="acme", cost=5.0)])
    engine = AlertEngine(config(trace_budget={"budgets": [TraceBudget(service=hostile, max_cost_usd=1)]}), store)
    seen = recording(engine)
    engine.evaluate(NOW)
    engine.handle_secrets([SecretHit("acme", hostile, "a" * 32, "b" * 16, hostile, ("private_key",))], NOW)
    services = {n.labels.get("service") for _, n in seen.events}
    assert hostile in services
    recorded = {row[4].get("service") for row in history(store)}
    assert hostile in recorded  # bound, not pasted: the value comes back byte for byte
    assert store.query_rows("SELECT count() FROM alerts")[0][0] == len(seen.events)
    from spanhouse.collector.alerts.notify import alertmanager_payload, slack_payload

    for _, note in seen.events:
        doc = json.loads(json.dumps(alertmanager_payload(note, "spanhouse", "")))
        assert doc["alerts"][0]["labels"] == note.labels
        text = slack_payload(note)["text"]
        assert "<script>" not in text and "\n<" not in text


def test_restart_keeps_firing_alerts_without_sending_them_again(store: Store) -> None:
    first = AlertEngine(config(), store)
    hit = SecretHit("acme", "chat", "1" * 32, "2" * 16, "s", ("github_token",))
    first.handle_secrets([hit], NOW)
    second = AlertEngine(config(), store)
    seen = recording(second)
    second._restore()
    assert list(second.states) == list(first.states)
    second.handle_secrets([hit], NOW + 60)
    assert seen.events == []  # still the same firing alert, inside repeat_interval_s
    second.evaluate(NOW + 3600 + 60)
    assert [e for e, _ in seen.events] == ["resolved"]


@pytest.mark.parametrize("steps, expected", [
    # (counters, now) per evaluation -> problems active after the last one
    ([({"writer_spool_bytes": 900}, 0)], {"spool_high_water"}),
    ([({"writer_spool_bytes": 700}, 0)], set()),
    ([({"writer_spans_dead_lettered_total": 0}, 0), ({"writer_spans_dead_lettered_total": 3}, 60)], {"dead_letters"}),
    ([({"writer_spans_dead_lettered_total": 0}, 0), ({"writer_spans_dead_lettered_total": 3}, 60),
      ({"writer_spans_dead_lettered_total": 3}, 60 + 3600)], set()),
    ([({"writer_write_errors_total": 0, "writer_spans_written_total": 5}, 0),
      ({"writer_write_errors_total": 4, "writer_spans_written_total": 5}, 60),
      ({"writer_write_errors_total": 9, "writer_spans_written_total": 5}, 120)], {"inserts_failing"}),
    ([({"writer_write_errors_total": 0, "writer_spans_written_total": 5}, 0),
      ({"writer_write_errors_total": 4, "writer_spans_written_total": 5}, 60),
      ({"writer_write_errors_total": 4, "writer_spans_written_total": 9}, 120)], set()),
])
def test_pipeline_rule_from_counters(steps: list, expected: set[str]) -> None:
    watch = PipelineWatch(config(pipeline={"insert_failing_s": 60}), spool_capacity_bytes=1000)
    active: list = []
    for counters, at in steps:
        active = watch.evaluate(counters, NOW + at)
    assert {a.labels["problem"] for a in active} == expected


def test_listing_firing_and_since_select_the_right_episodes(store: Store) -> None:
    """What `spanhouse alerts` shows: --firing whatever their age, otherwise episodes with events in the range."""
    import datetime as dt
    import time as time_mod

    from spanhouse.collector.query import reports
    from spanhouse.collector.query.render import parse_json_compact

    real_now = time_mod.time()
    old = SecretHit("acme", "old-svc", "1" * 32, "2" * 16, "s", ("jwt",))
    recent = SecretHit("globex", "new-svc", "3" * 32, "4" * 16, "s", ("jwt",))
    AlertEngine(config(), store).handle_secrets([old], real_now - 30 * HOUR)  # fired 30 h ago, still firing
    engine = AlertEngine(config(secret_detected={"hold_s": 600}), store)
    engine.handle_secrets([recent], real_now - 3 * HOUR)
    engine.evaluate(real_now - 2 * HOUR)  # resolves `recent`

    def run_sql(sql: str) -> tuple[list[str], list[list]]:
        return parse_json_compact(store.raw_query(sql, "JSONCompact"))

    now = dt.datetime.fromtimestamp(real_now, dt.UTC)
    day_ago = now - dt.timedelta(hours=24)
    names, rows = reports.alerts(run_sql, day_ago, now, firing_only=True)
    firing = [dict(zip(names, r)) for r in rows]
    assert [(r["labels"]["service"], r["status"]) for r in firing] == [("old-svc", "firing")]
    names, rows = reports.alerts(run_sql, day_ago, now)
    listed = [dict(zip(names, r)) for r in rows]
    assert [(r["labels"]["service"], r["status"], r["notifications"]) for r in listed] == [("new-svc", "resolved", 2)]
    names, rows = reports.alerts(run_sql, day_ago, now, tenant="acme")
    assert rows == []
    names, rows = reports.alerts(run_sql, now - dt.timedelta(hours=48), now)
    assert sorted((dict(zip(names, r))["tenant"], dict(zip(names, r))["status"]) for r in rows) == [
        ("acme", "firing"), ("globex", "resolved")]


def test_secret_watch_scans_only_when_the_credential_count_moved_and_misses_nothing() -> None:
    """Two receiving threads share the count: a batch with a hit always raised it after its thread last looked."""
    import threading

    from spanhouse.collector.alerts.secrets import secret_watch
    from spanhouse.collector.batch import SpanBatch
    from spanhouse.collector.processors.redact import RULES_ATTRIBUTE

    def batch(rules: str | None) -> SpanBatch:
        attrs = {"a": "b"} if rules is None else {"a": "<REDACTED>", RULES_ATTRIBUTE: rules}
        return SpanBatch({"SpanAttributes": [{"x": "y"}, attrs], "TenantId": ["t", "t"], "ServiceName": ["s", "s"],
                          "TraceId": ["a" * 32] * 2, "SpanId": ["b" * 16] * 2, "SpanName": ["n", "n"]}, 2)

    count = [0]
    reported: list = []
    inspect = secret_watch({"openai_api_key"}, reported.extend, lambda: count[0])

    def run(b: SpanBatch) -> None:
        found = inspect(b)
        if found is not None:
            found()

    run(batch(None))  # first look on this thread
    count[0] += 1  # redact found a credential in the next batch
    run(batch("email,openai_api_key"))
    assert [h.rules for h in reported] == [("openai_api_key",)]
    run(batch("email"))  # PII only: the count did not move, and it is no credential anyway
    assert len(reported) == 1
    other: list = []
    thread = threading.Thread(target=lambda: other.append(inspect(batch("openai_api_key"))))
    count[0] += 1
    thread.start()
    thread.join()
    assert other[0] is not None  # another thread's own batch is scanned even after this thread's look
